// Package e2e drives the real breakwater binary from the outside: real
// configs, real TLS, real processes, real signals. TestMain builds the
// binary once (with -race when the tests run with -race, so data races in
// the gateway fail the test through its exit code).
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/breakwater/breakwater/internal/edge"
)

// bin is the path of the breakwater binary built by TestMain.
var bin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		fmt.Fprintln(os.Stderr, "e2e: cannot locate the test file")
		return 1
	}
	root := filepath.Dir(filepath.Dir(file)) // e2e/.. is the module root
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: module root not found from %s: %v\n", file, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "breakwater-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin = filepath.Join(dir, "breakwater")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/breakwater")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go %s: %v\n%s", strings.Join(args, " "), err, out)
		return 1
	}
	// These tests mostly wait on processes and sockets: run more of them at
	// once than the default -parallel (GOMAXPROCS), unless asked otherwise.
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", fmt.Sprint(max(4, runtime.GOMAXPROCS(0))))
	}
	return m.Run()
}

// ---------------------------------------------------------------------------
// Processes

// lockedBuffer is a bytes.Buffer safe for the exec copier goroutine and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proc is a running breakwater process.
type proc struct {
	args           []string
	cmd            *exec.Cmd
	stdout, stderr lockedBuffer
	done           chan struct{}
	code           int // valid once done is closed
	stopOnce       sync.Once
}

// startProc starts the binary with args. env entries are added to the
// test's environment (NAME=VALUE); a NAME without "=" is removed from it.
func startProc(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{args: args, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.SysProcAttr = procAttr()
	p.cmd.Env = mergeEnv(os.Environ(), append([]string{goraceEnv(100)}, env...))
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting breakwater %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		err := p.cmd.Wait()
		p.code = exitCode(err)
		close(p.done)
	}()
	return p
}

// goraceEnv shortens the race runtime's sleep at exit (1s by default),
// which would otherwise add a second to every command the tests run.
func goraceEnv(ms int) string {
	v := strings.TrimSpace(os.Getenv("GORACE") + fmt.Sprintf(" atexit_sleep_ms=%d", ms))
	return "GORACE=" + v
}

func mergeEnv(base, extra []string) []string {
	out := make([]string, 0, len(base)+len(extra))
	drop := map[string]bool{}
	for _, e := range extra {
		name, _, _ := strings.Cut(e, "=")
		drop[name] = true
	}
	for _, e := range base {
		name, _, _ := strings.Cut(e, "=")
		if !drop[name] {
			out = append(out, e)
		}
	}
	for _, e := range extra {
		if strings.Contains(e, "=") {
			out = append(out, e)
		}
	}
	return out
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return -1
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to d for the process to exit and returns its exit code.
func (p *proc) wait(d time.Duration) (int, bool) {
	select {
	case <-p.done:
		return p.code, true
	case <-time.After(d):
		return 0, false
	}
}

func (p *proc) signal(sig os.Signal) {
	if !p.exited() {
		_ = p.cmd.Process.Signal(sig)
	}
}

// output is the process's output for failure messages (tails of long logs).
func (p *proc) output() string {
	return fmt.Sprintf("\n--- breakwater %s ---\n--- stderr ---\n%s\n--- stdout ---\n%s\n--- end ---",
		strings.Join(p.args, " "), tail(p.stderr.String(), 8000), tail(p.stdout.String(), 4000))
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…(" + fmt.Sprint(len(s)-n) + " bytes cut)…" + s[len(s)-n:]
}

// stop sends SIGTERM and requires a clean exit (code 0, no data race).
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.stopOnce.Do(func() { p.stopNow(t) })
}

func (p *proc) stopNow(t *testing.T) {
	t.Helper()
	p.signal(syscall.SIGTERM)
	code, ok := p.wait(20 * time.Second)
	if !ok {
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("breakwater did not exit within 20s of SIGTERM%s", p.output())
		return
	}
	p.checkExit(t, code)
}

func (p *proc) checkExit(t *testing.T, code int) {
	t.Helper()
	if strings.Contains(p.stderr.String(), "WARNING: DATA RACE") {
		t.Errorf("the race detector found a data race in breakwater%s", p.output())
		return
	}
	if code != 0 {
		t.Errorf("breakwater exited with code %d, want 0%s", code, p.output())
	}
}

// runCmd runs the binary to completion (bounded) and returns its output.
func runCmd(t *testing.T, stdin string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = mergeEnv(os.Environ(), append([]string{goraceEnv(0)}, env...))
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("breakwater %s: did not finish within 30s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), o.String(), e.String())
	}
	code = exitCode(err)
	if code == -1 {
		t.Fatalf("breakwater %s: %v", strings.Join(args, " "), err)
	}
	if strings.Contains(e.String(), "WARNING: DATA RACE") {
		t.Errorf("the race detector found a data race in breakwater %s:\n%s", strings.Join(args, " "), e.String())
	}
	return o.String(), e.String(), code
}

// ---------------------------------------------------------------------------
// Ports, keys, configs

// freeAddr returns a loopback address that was free a moment ago (the binary
// cannot report ports it chose itself, so the tests choose them).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// deadAddr is a loopback address where connections are refused for the
// whole test: a socket is bound to it but never listens, so no other
// process can take the port meanwhile.
func deadAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("getsockname: %v", err)
	}
	return fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func digest(s string) string { return "sha256:" + sha256Hex(s) }

// Test credentials (bw_ + 43 base62 characters, like `keys new`).
const (
	readerKey  = "bw_e2eReaderKey0000000000000000000000000000000"
	writerKey  = "bw_e2eWriterKey0000000000000000000000000000000"
	adminToken = "bwadm_e2eAdminToken00000000000000000000000000"
)

// gateway is a running `breakwater serve`.
type gateway struct {
	*proc
	dir, cfgPath, dataDir string
	https, admin, http    string
	vars                  map[string]string

	poolOnce sync.Once
	pool     *x509.CertPool
}

// configVars are the values a config template may use.
func configVars(dir string) map[string]string {
	return map[string]string{
		"Data":       filepath.Join(dir, "data"),
		"ReaderHash": digest(readerKey),
		"WriterHash": digest(writerKey),
		"AdminHash":  digest(adminToken),
	}
}

func render(t *testing.T, tmpl string, vars map[string]string) string {
	t.Helper()
	tp, err := template.New("config").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		t.Fatalf("config template: %v", err)
	}
	var b strings.Builder
	if err := tp.Execute(&b, vars); err != nil {
		t.Fatalf("config template: %v", err)
	}
	return b.String()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

type gwOption func(*gwOptions)

type gwOptions struct {
	env   []string                                 // extra environment of the process
	write func(t *testing.T, path, content string) // how the config is written (default: a plain file)
}

// startGateway writes the config template (vars: HTTPS, HTTP, Admin, Data,
// ReaderHash, WriterHash, AdminHash, plus extra) into a temporary directory,
// starts `breakwater serve -c FILE`, waits until /readyz answers 200, and
// stops the process with SIGTERM (requiring exit 0) when the test ends.
func startGateway(t *testing.T, tmpl string, extra map[string]string, opts ...gwOption) *gateway {
	t.Helper()
	var o gwOptions
	for _, f := range opts {
		f(&o)
	}
	dir := t.TempDir()
	var lastOutput string
	for attempt := 0; attempt < 3; attempt++ {
		g := &gateway{dir: dir, https: freeAddr(t), http: freeAddr(t), admin: freeAddr(t)}
		g.dataDir = filepath.Join(dir, "data")
		g.vars = configVars(dir)
		g.vars["HTTPS"], g.vars["HTTP"], g.vars["Admin"] = g.https, g.http, g.admin
		for k, v := range extra {
			g.vars[k] = v
		}
		g.cfgPath = filepath.Join(dir, "breakwater.yaml")
		content := render(t, tmpl, g.vars)
		if o.write != nil {
			o.write(t, g.cfgPath, content)
		} else {
			writeFile(t, g.cfgPath, content)
		}
		g.proc = startProc(t, o.env, "serve", "-c", g.cfgPath)
		err := g.waitReady(30 * time.Second)
		if err == nil {
			t.Cleanup(func() { g.stop(t) })
			return g
		}
		if !g.exited() {
			g.signal(syscall.SIGKILL)
			<-g.done
		}
		lastOutput = g.output()
		if !strings.Contains(g.stderr.String(), "address already in use") {
			t.Fatalf("gateway did not become ready: %v\nconfig:\n%s%s", err, numbered(content), lastOutput)
		}
	}
	t.Fatalf("gateway did not start: ports kept being taken%s", lastOutput)
	return nil
}

func numbered(s string) string {
	var b strings.Builder
	for i, l := range strings.Split(s, "\n") {
		fmt.Fprintf(&b, "%3d  %s\n", i+1, l)
	}
	return b.String()
}

var plainClient = &http.Client{
	Timeout:       10 * time.Second,
	Transport:     &http.Transport{DisableKeepAlives: true, Proxy: nil},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// servingLog is what `serve` logs once every listener is bound. Waiting
// for it makes sure that the /readyz answering is this process's, not that
// of another process which took the port the test had chosen.
const servingLog = `"msg":"breakwater serving"`

// waitReady waits for the serving log line, then polls GET
// http://ADMIN/readyz until 200.
func (g *gateway) waitReady(d time.Duration) error {
	deadline := time.Now().Add(d)
	last := "no " + servingLog + " log line on stderr yet"
	for time.Now().Before(deadline) {
		if g.exited() {
			return fmt.Errorf("breakwater exited with code %d before it was ready", g.code)
		}
		if !strings.Contains(g.stderr.String(), servingLog) {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		resp, err := plainClient.Get("http://" + g.admin + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("GET /readyz not 200 within %v (last: %s)", d, last)
}

// caPool trusts only the gateway's self-signed CA.
func (g *gateway) caPool(t *testing.T) *x509.CertPool {
	t.Helper()
	g.poolOnce.Do(func() {
		pem, err := os.ReadFile(edge.CAFile(g.dataDir))
		if err != nil {
			return
		}
		p := x509.NewCertPool()
		if p.AppendCertsFromPEM(pem) {
			g.pool = p
		}
	})
	if g.pool == nil {
		t.Fatalf("cannot read the self-signed CA at %s%s", edge.CAFile(g.dataDir), g.output())
	}
	return g.pool
}

func (g *gateway) tlsConfig(t *testing.T) *tls.Config {
	return &tls.Config{RootCAs: g.caPool(t), MinVersion: tls.VersionTLS12}
}

// client is an HTTP/1.1 client that trusts only the gateway's CA and
// does not follow redirects.
func (g *gateway) client(t *testing.T) *http.Client {
	tr := &http.Transport{TLSClientConfig: g.tlsConfig(t), Proxy: nil, MaxIdleConnsPerHost: 4}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// h2client negotiates HTTP/2 with ALPN.
func (g *gateway) h2client(t *testing.T) *http.Client {
	tr := &http.Transport{TLSClientConfig: g.tlsConfig(t), Proxy: nil, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func (g *gateway) url(path string) string { return "https://" + g.https + path }

// do sends a request and reads the whole response; a transport error fails
// the test with the gateway's output.
func (g *gateway) do(t *testing.T, c *http.Client, method, path string, body io.Reader, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, g.url(path), body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v%s", method, path, err, g.output())
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v%s", method, path, err, g.output())
	}
	return resp, b
}

func (g *gateway) get(t *testing.T, c *http.Client, path string, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	return g.do(t, c, http.MethodGet, path, nil, hdr)
}

// dialTLS opens a TLS connection speaking HTTP/1.1 to the HTTPS listener.
func (g *gateway) dialTLS(t *testing.T) (*tls.Conn, error) {
	cfg := g.tlsConfig(t)
	cfg.NextProtos = []string{"http/1.1"}
	d := &net.Dialer{Timeout: 10 * time.Second}
	return tls.DialWithDialer(d, "tcp", g.https, cfg)
}

// raw writes req byte for byte over a fresh TLS connection, so that nothing
// on the client side normalises it, and reads one response.
func (g *gateway) raw(t *testing.T, req string) (*http.Response, []byte) {
	t.Helper()
	conn, err := g.dialTLS(t)
	if err != nil {
		t.Fatalf("TLS dial: %v%s", err, g.output())
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	go func() { _, _ = io.WriteString(conn, req) }() // the gateway may answer before reading it all
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("raw request %q: reading response: %v%s", firstLine(req), err, g.output())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\r\n")
	return l
}

// ---------------------------------------------------------------------------
// Upstream

// echo is what the upstream answers for an ordinary request.
type echo struct {
	Method  string      `json:"method"`
	Path    string      `json:"path"`     // r.URL.Path
	RawPath string      `json:"raw_path"` // path of the request target as received
	Query   string      `json:"query"`
	Host    string      `json:"host"`
	Header  http.Header `json:"header"`
	BodyLen int         `json:"body_len"`
}

// The stack trace a careless backend leaks on /…?crash=1.
const stackTrace = "panic: runtime error: invalid memory address\n\ngoroutine 7 [running]:\nmain.handler(0xc000012345)\n\t/srv/app/internal/db.go:42 +0x1d\nconnecting to 10.0.3.7:5432 as app_rw\n"

// upstream is an httptest server behind the gateway. Query parameters select
// its behaviour on any path:
//
//	sleep=DUR     answer 200 after DUR (or when the gateway gives up)
//	sleep=hold    answer 200 once the test calls release() (at most 20s)
//	crash=1       500 with a stack trace body
//	stream=BYTES  stream BYTES bytes of a known pattern in flushed chunks
//	ticks=N&gap=DUR  N lines "tick", flushed, DUR apart
//	ticks=N&hold=1   the same, but each line after the first waits for release()
//	cc=VALUE      set Cache-Control: VALUE
//
// Every response carries Server: Apache/2.4.1 and X-Powered-By: PHP/5.6.
// Requests carrying X-E2E-Marker are counted per marker.
type upstream struct {
	*httptest.Server
	mu       sync.Mutex
	markers  map[string]int
	started  chan string   // markers of requests as they arrive (non-blocking)
	hold     chan struct{} // closed by a test to release ?hold=1 streams
	holdOnce sync.Once
}

// release lets ?ticks=…&hold=1 streams finish.
func (u *upstream) release() { u.holdOnce.Do(func() { close(u.hold) }) }

func newUpstream(t *testing.T) *upstream {
	u := &upstream{markers: map[string]int{}, started: make(chan string, 64), hold: make(chan struct{})}
	u.Server = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.Close)
	t.Cleanup(u.release)
	return u
}

func (u *upstream) hits(marker string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.markers[marker]
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	if m := r.Header.Get("X-E2E-Marker"); m != "" {
		u.mu.Lock()
		u.markers[m]++
		u.mu.Unlock()
		select {
		case u.started <- m:
		default:
		}
	}
	w.Header().Set("Server", "Apache/2.4.1 (Unix)")
	w.Header().Set("X-Powered-By", "PHP/5.6.40")
	q := r.URL.Query()
	if v := q.Get("cc"); v != "" {
		w.Header().Set("Cache-Control", v)
	}
	switch {
	case q.Get("crash") != "":
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, stackTrace)
		return
	case q.Get("sleep") == "hold":
		select {
		case <-u.hold:
		case <-time.After(20 * time.Second):
		case <-r.Context().Done():
			return
		}
	case q.Get("sleep") != "":
		d, _ := time.ParseDuration(q.Get("sleep"))
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	case q.Get("stream") != "":
		var n int
		fmt.Sscan(q.Get("stream"), &n)
		w.Header().Set("Content-Type", "application/octet-stream")
		buf := make([]byte, 32<<10)
		rc := http.NewResponseController(w)
		for off := 0; off < n; {
			c := min(len(buf), n-off)
			for i := 0; i < c; i++ {
				buf[i] = patternByte(off + i)
			}
			if _, err := w.Write(buf[:c]); err != nil {
				return
			}
			_ = rc.Flush()
			off += c
		}
		return
	case q.Get("ticks") != "":
		var n int
		fmt.Sscan(q.Get("ticks"), &n)
		gap, _ := time.ParseDuration(q.Get("gap"))
		hold := q.Get("hold") != ""
		w.Header().Set("Content-Type", "text/plain")
		rc := http.NewResponseController(w)
		for i := 0; i < n; i++ {
			if i > 0 && hold {
				select {
				case <-u.hold:
				case <-time.After(10 * time.Second):
				case <-r.Context().Done():
					return
				}
			} else if i > 0 {
				select {
				case <-time.After(gap):
				case <-r.Context().Done():
					return
				}
			}
			fmt.Fprintf(w, "tick %d\n", i)
			_ = rc.Flush()
		}
		return
	}
	body, _ := io.ReadAll(r.Body)
	path, _, _ := strings.Cut(r.RequestURI, "?")
	e := echo{Method: r.Method, Path: r.URL.Path, RawPath: path, Query: r.URL.RawQuery, Host: r.Host, Header: r.Header, BodyLen: len(body)}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(e)
}

func patternByte(i int) byte { return byte(i % 251) }

func decodeEcho(t *testing.T, g *gateway, body []byte) echo {
	t.Helper()
	var e echo
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("response is not the upstream's echo: %v\nbody: %q%s", err, body, g.output())
	}
	return e
}

// eventually polls f until it returns "" (success) or d passes; the last
// message fails the test.
func eventually(t *testing.T, d time.Duration, f func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		msg := f()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
