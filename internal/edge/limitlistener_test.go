package edge

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeConn is a connection from a chosen peer address that counts Closes.
type fakeConn struct {
	net.Conn // nil: only RemoteAddr and Close are used
	remote   net.Addr
	closes   atomic.Int32
}

func (c *fakeConn) RemoteAddr() net.Addr { return c.remote }
func (c *fakeConn) Close() error {
	if c.closes.Add(1) > 1 {
		return net.ErrClosed
	}
	return nil
}

func peer(s string) *fakeConn {
	return &fakeConn{remote: net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s))}
}

// fakeListener hands out the conns sent on its channel.
type fakeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newFakeListener() *fakeListener {
	return &fakeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *fakeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *fakeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *fakeListener) Addr() net.Addr { return &net.TCPAddr{} }

// harness runs an Accept loop and reports each connection's fate.
type harness struct {
	t        *testing.T
	fake     *fakeListener
	l        *LimitedListener
	accepted chan net.Conn
	rejected chan string
}

func newHarness(t *testing.T, max, perIP int) *harness {
	h := &harness{t: t, fake: newFakeListener(), accepted: make(chan net.Conn, 1), rejected: make(chan string, 1)}
	h.l = LimitListener(h.fake, max, perIP, func(reason string, _ netip.Addr) { h.rejected <- reason })
	go func() {
		for {
			c, err := h.l.Accept()
			if err != nil {
				return
			}
			h.accepted <- c
		}
	}()
	t.Cleanup(func() { h.l.Close() })
	return h
}

// offer hands c to the listener and returns the accepted conn, or the
// rejection reason.
func (h *harness) offer(c *fakeConn) (net.Conn, string) {
	h.t.Helper()
	h.fake.conns <- c
	select {
	case a := <-h.accepted:
		return a, ""
	case r := <-h.rejected:
		if c.closes.Load() != 1 {
			h.t.Errorf("rejected conn closed %d times", c.closes.Load())
		}
		return nil, r
	case <-time.After(5 * time.Second):
		h.t.Fatal("neither accepted nor rejected")
		return nil, ""
	}
}

func TestLimitListenerCaps(t *testing.T) {
	h := newHarness(t, 3, 2)
	a1, r := h.offer(peer("10.0.0.1:1"))
	if r != "" {
		t.Fatal(r)
	}
	if _, r := h.offer(peer("10.0.0.1:2")); r != "" {
		t.Fatal(r)
	}
	if _, r := h.offer(peer("10.0.0.1:3")); r != RejectMaxConnectionsPerIP {
		t.Fatalf("third from one IP: %q", r)
	}
	if _, r := h.offer(peer("10.0.0.2:1")); r != "" {
		t.Fatal(r)
	}
	if _, r := h.offer(peer("10.0.0.3:1")); r != RejectMaxConnections {
		t.Fatalf("fourth overall: %q", r)
	}
	if n := h.l.Open(); n != 3 {
		t.Fatalf("Open() = %d", n)
	}

	// Closing twice releases one slot.
	if err := a1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a1.Close(); err == nil {
		t.Error("second Close did not report the conn closed")
	}
	if n := h.l.Open(); n != 2 {
		t.Fatalf("Open() after double Close = %d, want 2", n)
	}
	if _, r := h.offer(peer("10.0.0.3:2")); r != "" {
		t.Fatalf("after release: %q", r)
	}
	if _, r := h.offer(peer("10.0.0.3:3")); r != RejectMaxConnections {
		t.Fatalf("full again: %q", r)
	}
}

func TestLimitListenerSetLimits(t *testing.T) {
	h := newHarness(t, 0, 0)
	for range 3 {
		if _, r := h.offer(peer("10.0.0.1:1")); r != "" {
			t.Fatal(r)
		}
	}
	h.l.SetLimits(10, 2)
	if _, r := h.offer(peer("10.0.0.1:1")); r != RejectMaxConnectionsPerIP {
		t.Fatalf("after SetLimits: %q", r)
	}
	h.l.SetLimits(3, 0)
	if _, r := h.offer(peer("10.0.0.2:1")); r != RejectMaxConnections {
		t.Fatalf("after SetLimits: %q", r)
	}
	if n := h.l.Open(); n != 3 {
		t.Fatalf("Open() = %d, open connections must survive a reload", n)
	}
}

func TestLimitListenerUnmapsIPv4(t *testing.T) {
	h := newHarness(t, 0, 1)
	if _, r := h.offer(peer("[::ffff:192.0.2.1]:1")); r != "" {
		t.Fatal(r)
	}
	if _, r := h.offer(peer("192.0.2.1:2")); r != RejectMaxConnectionsPerIP {
		t.Fatalf("IPv4 and IPv4-mapped IPv6 counted apart: %q", r)
	}
	if _, r := h.offer(peer("[2001:db8::1]:1")); r != "" {
		t.Fatal(r)
	}
	if _, r := h.offer(peer("[2001:db8::2]:1")); r != "" {
		t.Fatal(r)
	}
}

func TestLimitListenerNoCaps(t *testing.T) {
	h := newHarness(t, 0, 0)
	for i := range 50 {
		if _, r := h.offer(peer("10.0.0.1:1")); r != "" {
			t.Fatalf("conn %d: %q", i, r)
		}
	}
}

// TestLimitListenerConcurrent accepts from several goroutines while others
// close connections (twice, concurrently), checking the caps at every step.
func TestLimitListenerConcurrent(t *testing.T) {
	const (
		max, perIP = 40, 8
		ips        = 10
		total      = 3000
	)
	fake := newFakeListener()
	var rejected atomic.Int64
	l := LimitListener(fake, max, perIP, func(string, netip.Addr) { rejected.Add(1) })

	check := func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		sum := 0
		for ip, n := range l.byIP {
			if n <= 0 || n > perIP {
				t.Errorf("%v has %d open", ip, n)
			}
			sum += n
		}
		if l.open > max || l.open != sum || len(l.byIP) > l.open {
			t.Errorf("open %d, sum %d, ips %d", l.open, sum, len(l.byIP))
		}
	}

	var accepted atomic.Int64
	var workers sync.WaitGroup
	var acceptors sync.WaitGroup
	for range 4 {
		acceptors.Add(1)
		go func() {
			defer acceptors.Done()
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				accepted.Add(1)
				check()
				workers.Add(1)
				go func() {
					defer workers.Done()
					time.Sleep(time.Duration(accepted.Load()%3) * time.Millisecond)
					var both sync.WaitGroup
					for range 2 {
						both.Add(1)
						go func() { defer both.Done(); _ = c.Close() }()
					}
					both.Wait()
				}()
			}
		}()
	}
	conns := make([]*fakeConn, total)
	for i := range conns {
		conns[i] = peer(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i % ips)}), 1000).String())
		fake.conns <- conns[i]
	}
	fake.Close()
	acceptors.Wait()
	workers.Wait()

	if accepted.Load()+rejected.Load() != total {
		t.Errorf("accepted %d + rejected %d != %d", accepted.Load(), rejected.Load(), total)
	}
	if n := l.Open(); n != 0 {
		t.Errorf("Open() = %d after all closed", n)
	}
	if len(l.byIP) != 0 {
		t.Errorf("per-IP map keeps %d entries", len(l.byIP))
	}
	for i, c := range conns {
		if c.closes.Load() == 0 {
			t.Fatalf("conn %d never closed", i)
		}
	}
	t.Logf("accepted %d, rejected %d", accepted.Load(), rejected.Load())
}

// TestLimitListenerTCP runs the caps over real loopback sockets.
func TestLimitListenerTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reasons := make(chan string, 10)
	l := LimitListener(ln, 2, 100, func(r string, _ netip.Addr) { reasons <- r })
	defer l.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		t.Helper()
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	dial()
	dial()
	s1, s2 := <-accepted, <-accepted
	defer s2.Close()

	// The reset may even reach the client before its connect returns.
	over, dialErr := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	select {
	case r := <-reasons:
		if r != RejectMaxConnections {
			t.Fatalf("reason %q", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("third connection not rejected")
	}
	if dialErr == nil {
		defer over.Close()
		assertClosedByPeer(t, over, 5*time.Second)
	}

	s1.Close()
	dial()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("slot not released")
	}
}

func TestLimitListenerPerIPTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reasons := make(chan string, 10)
	l := LimitListener(ln, 100, 1, func(r string, _ netip.Addr) { reasons <- r })
	accepted := make(chan net.Conn, 10)
	go func() {
		defer close(accepted)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	defer func() {
		l.Close()
		for c := range accepted {
			c.Close()
		}
	}()
	from := func(ip string) (net.Conn, error) {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		return d.Dial("tcp", ln.Addr().String())
	}
	c1, err := from("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	waitFor(t, func() bool { return l.Open() == 1 }, "first conn accepted")

	c2, err := from("127.0.0.2") // another loopback address (Linux)
	if err != nil {
		t.Skipf("no 127.0.0.2 here: %v", err)
	}
	defer c2.Close()
	waitFor(t, func() bool { return l.Open() == 2 }, "second IP accepted")

	c3, err := from("127.0.0.1") // may fail with a reset already
	if r := <-reasons; r != RejectMaxConnectionsPerIP {
		t.Fatalf("reason %q", r)
	}
	if err == nil {
		defer c3.Close()
		assertClosedByPeer(t, c3, 5*time.Second)
	}
}

// assertClosedByPeer waits until a read on c fails with EOF or a reset.
func assertClosedByPeer(t *testing.T, c net.Conn, within time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	_, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v", within)
	}
}

func TestLimitListenerAcquireAllocs(t *testing.T) {
	l := LimitListener(newFakeListener(), 10, 10, nil)
	ip := netip.MustParseAddr("2001:db8::1")
	allocs := testing.AllocsPerRun(1000, func() {
		if l.acquire(ip) != "" {
			t.Fatal("refused")
		}
		l.release(ip)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per acquire/release", allocs)
	}
}

func BenchmarkLimitListenerAcquireRelease(b *testing.B) {
	l := LimitListener(newFakeListener(), 10000, 200, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ip := netip.MustParseAddr("192.0.2.1")
		for pb.Next() {
			l.acquire(ip)
			l.release(ip)
		}
	})
}
