package testutil

import (
	"net"
	"strings"
	"testing"
	"time"
)

func TestStartRedis(t *testing.T) {
	r := StartRedis(t)
	if got, err := r.Do("SET", "k", "v"); err != nil || got != "OK" {
		t.Fatalf("SET = %q, %v", got, err)
	}
	if got, err := r.Do("GET", "k"); err != nil || got != "v" {
		t.Fatalf("GET = %q, %v", got, err)
	}
	if got, _ := r.Do("GET", "missing"); got != "(nil)" {
		t.Fatalf("GET missing = %q", got)
	}
	if got, _ := r.Do("CONFIG", "GET", "save"); got != "save\n" {
		t.Fatalf("CONFIG GET save = %q, want persistence off", got)
	}

	r.Stop()
	if c, err := net.DialTimeout("tcp", r.Addr, time.Second); err == nil {
		c.Close()
		t.Fatal("port still open after Stop")
	}
	r.Stop() // idempotent
	r.Start()
	if got, err := r.Do("PING"); err != nil || got != "PONG" {
		t.Fatalf("PING after restart = %q, %v", got, err)
	}
	if got, _ := r.Do("GET", "k"); got != "(nil)" {
		t.Fatalf("data survived a restart: %q", got)
	}

	r.Pause()
	c, err := net.DialTimeout("tcp", r.Addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	_, _ = c.Write([]byte("PING\r\n"))
	if _, err := c.Read(make([]byte, 16)); err == nil {
		t.Fatal("a paused server answered")
	}
	c.Close()
	r.Resume()
	if got, err := r.Do("PING"); err != nil || got != "PONG" {
		t.Fatalf("PING after resume = %q, %v", got, err)
	}
}

func TestStartRedisCluster(t *testing.T) {
	c := StartRedisCluster(t)
	if len(c.Nodes) != 3 {
		t.Fatalf("%d nodes", len(c.Nodes))
	}
	if !strings.HasPrefix(c.URL(), "redis-cluster://127.0.0.1:") || strings.Count(c.URL(), ",") != 2 {
		t.Fatalf("URL = %q", c.URL())
	}
	masters := 0
	nodes, err := c.Nodes[0].Do("CLUSTER", "NODES")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(strings.TrimSpace(nodes), "\n") {
		if strings.Contains(line, "master") {
			masters++
		}
	}
	if masters != 3 {
		t.Fatalf("%d masters:\n%s", masters, nodes)
	}
}
