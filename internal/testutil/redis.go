package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Redis is a redis-server started by StartRedis for one test, on a free
// loopback port, with no persistence, in a temporary directory. It is
// stopped when the test ends.
type Redis struct {
	// Addr is "127.0.0.1:port"; it stays the same across Stop and Start.
	Addr string

	t    testing.TB
	dir  string
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// URL returns "redis://Addr/0".
func (r *Redis) URL() string { return "redis://" + r.Addr + "/0" }

// redisBinaries returns the paths of redis-server and redis-cli, or skips
// the test when they are missing (fails it when CI=true).
func redisBinaries(t testing.TB) (server, cli string) {
	t.Helper()
	server, err := exec.LookPath("redis-server")
	if err == nil {
		cli, err = exec.LookPath("redis-cli")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server and redis-cli are required in CI: %v", err)
		}
		t.Skipf("redis-server or redis-cli not installed: %v", err)
	}
	return server, cli
}

// StartRedis starts a standalone redis-server on a free loopback port and
// waits until it answers PING. Extra arguments are passed to redis-server
// (such as "--requirepass", "pw"; a server that needs a password must still
// answer PING without one, so use ACL users for that: "--user", "…").
// When redis-server is not installed the test is skipped, unless the
// environment has CI=true: then it fails.
func StartRedis(t testing.TB, extra ...string) *Redis {
	t.Helper()
	server, _ := redisBinaries(t)
	r := &Redis{t: t, dir: t.TempDir()}
	var err error
	for range 5 { // a free port may be taken between probe and bind
		port := freePort(t)
		r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		r.args = append([]string{"--port", strconv.Itoa(port)}, extra...)
		if err = r.start(server); err == nil {
			t.Cleanup(r.Stop)
			return r
		}
	}
	t.Fatalf("start redis-server: %v", err)
	return nil
}

// serverArgs are the options every test server runs with.
func serverArgs(dir string) []string {
	return []string{
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--protected-mode", "no",
		"--loglevel", "warning",
		"--logfile", filepath.Join(dir, "redis.log"),
	}
}

func (r *Redis) start(server string) error {
	cmd := exec.Command(server, append(serverArgs(r.dir), r.args...)...)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := waitPing(r.Addr, exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("%w (log: %s)", err, tail(filepath.Join(r.dir, "redis.log")))
	}
	done := make(chan struct{})
	go func() { <-exited; close(done) }() // reap the process when it stops
	r.mu.Lock()
	r.cmd, r.done = cmd, done
	r.mu.Unlock()
	return nil
}

// Start restarts a stopped server on the same port (with empty data: the
// server keeps nothing on disk). It fails the test if the server cannot
// start.
func (r *Redis) Start() {
	r.t.Helper()
	server, _ := redisBinaries(r.t)
	var err error
	for range 50 { // the port may still be in TIME_WAIT or held briefly
		if err = r.start(server); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.t.Fatalf("restart redis-server on %s: %v", r.Addr, err)
}

// Stop kills the server (an outage: no clean shutdown) and waits until
// its port refuses connections. Stopping a stopped server does nothing.
func (r *Redis) Stop() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.cmd, r.done = nil, nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill() // SIGKILL works on a paused process too
	<-done
}

// Pause freezes the server (SIGSTOP): connections stay open but nothing is
// answered, like a hung or partitioned server. Resume undoes it.
func (r *Redis) Pause() { r.signal(syscall.SIGSTOP) }

// Resume continues a paused server.
func (r *Redis) Resume() { r.signal(syscall.SIGCONT) }

func (r *Redis) signal(s os.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		_ = r.cmd.Process.Signal(s)
	}
}

// Do sends one command to the server (arguments as given) and returns the
// reply as text: simple strings, errors ("ERR …"), integers and bulk
// strings as their content, nil as "(nil)", arrays as their elements joined
// by newlines (nested arrays flattened). It is for test assertions.
func (r *Redis) Do(args ...string) (string, error) { return do(r.Addr, args...) }

// RedisCluster is a Redis Cluster of three masters (no replicas) on
// loopback, started by StartRedisCluster and stopped when the test ends.
type RedisCluster struct {
	// Nodes are the three servers; their Addr values are the seeds.
	Nodes []*Redis
}

// URL returns "redis-cluster://addr1,addr2,addr3".
func (c *RedisCluster) URL() string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return "redis-cluster://" + strings.Join(addrs, ",")
}

// StartRedisCluster starts three redis-server processes with
// --cluster-enabled yes on free loopback ports (data and bus ports),
// assigns the 16384 slots with redis-cli --cluster create and waits until
// every node reports cluster_state:ok. Skips or fails like StartRedis.
func StartRedisCluster(t testing.TB) *RedisCluster {
	t.Helper()
	server, cli := redisBinaries(t)
	c := &RedisCluster{}
	for i := range 3 {
		r := &Redis{t: t, dir: t.TempDir()}
		var err error
		for range 5 {
			port, bus := freePort(t), freePort(t)
			r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			r.args = []string{
				"--port", strconv.Itoa(port),
				"--cluster-enabled", "yes",
				"--cluster-port", strconv.Itoa(bus),
				"--cluster-config-file", filepath.Join(r.dir, "nodes.conf"),
				"--cluster-node-timeout", "2000",
			}
			if err = r.start(server); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("start cluster node %d: %v", i, err)
		}
		t.Cleanup(r.Stop)
		c.Nodes = append(c.Nodes, r)
	}
	args := []string{"--cluster", "create"}
	for _, n := range c.Nodes {
		args = append(args, n.Addr)
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range c.Nodes {
		for {
			info, err := n.Do("CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster node %s not ready: %q %v", n.Addr, info, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitPing waits up to 10 s for PONG, or until the process exits.
func waitPing(addr string, exited <-chan error) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("redis-server exited: %v", err)
		default:
		}
		if reply, err := do(addr, "PING"); err == nil && reply == "PONG" {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("redis-server did not answer PING within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// do sends one command in RESP and reads one reply.
func do(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	var out []string
	if err := readReply(bufio.NewReader(c), &out); err != nil {
		return "", err
	}
	return strings.Join(out, "\n"), nil
}

func readReply(br *bufio.Reader, out *[]string) error {
	line, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return errors.New("empty reply line")
	}
	switch line[0] {
	case '+', '-', ':':
		*out = append(*out, line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return err
		}
		if n < 0 {
			*out = append(*out, "(nil)")
			return nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return err
		}
		*out = append(*out, string(buf[:n]))
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return err
		}
		for range n {
			if err := readReply(br, out); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}

// tail returns the end of a log file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}
