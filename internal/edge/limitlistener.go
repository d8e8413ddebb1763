package edge

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Reasons passed to LimitListener's onReject.
const (
	RejectMaxConnections      = "max_connections"
	RejectMaxConnectionsPerIP = "max_connections_per_ip"
)

// LimitedListener is a net.Listener that caps the connections open at once,
// in total and per client IP. See LimitListener.
type LimitedListener struct {
	net.Listener
	max, perIP int
	onReject   func(reason string, ip netip.Addr)

	mu   sync.Mutex
	open int
	byIP map[netip.Addr]int // only IPs with open connections: len ≤ open
}

// LimitListener wraps l so that at most max connections are open at once,
// and at most perIP from one client address (IPv4-mapped IPv6 addresses
// count as their IPv4 address); zero or negative disables a cap. A
// connection over a cap is closed as soon as it is accepted (with a reset,
// leaving no TIME_WAIT behind) and never queued; onReject (may be nil) is
// then called, synchronously in the accept loop, with
// RejectMaxConnectionsPerIP or RejectMaxConnections and the client address,
// so it must be quick and must not block. A connection's slot is released
// when it is first closed.
func LimitListener(l net.Listener, max, perIP int, onReject func(reason string, ip netip.Addr)) *LimitedListener {
	return &LimitedListener{
		Listener: l,
		max:      max,
		perIP:    perIP,
		onReject: onReject,
		byIP:     make(map[netip.Addr]int),
	}
}

// Accept returns the next connection within the caps, closing those over
// them in the meantime.
func (l *LimitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := peerIP(c.RemoteAddr())
		if reason := l.acquire(ip); reason != "" {
			if tc, ok := c.(interface{ SetLinger(int) error }); ok {
				_ = tc.SetLinger(0)
			}
			_ = c.Close()
			if l.onReject != nil {
				l.onReject(reason, ip)
			}
			continue
		}
		return &limitedConn{Conn: c, l: l, ip: ip}, nil
	}
}

// Open returns the number of connections open now (for metrics).
func (l *LimitedListener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// SetLimits changes the caps (on a config reload). Connections already open
// are kept even when they exceed the new caps; new ones wait for room.
func (l *LimitedListener) SetLimits(max, perIP int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.max, l.perIP = max, perIP
}

// acquire takes a slot for ip, or returns why it cannot. The per-IP cap is
// checked first: when both are reached, the client at its own cap is the
// one to name.
func (l *LimitedListener) acquire(ip netip.Addr) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.byIP[ip]
	if l.perIP > 0 && n >= l.perIP {
		return RejectMaxConnectionsPerIP
	}
	if l.max > 0 && l.open >= l.max {
		return RejectMaxConnections
	}
	l.byIP[ip] = n + 1
	l.open++
	return ""
}

func (l *LimitedListener) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.byIP[ip]; n > 1 {
		l.byIP[ip] = n - 1
	} else {
		delete(l.byIP, ip)
	}
	l.open--
}

// peerIP is the key of the per-IP cap. Addresses that are not IP (unix
// sockets, pipes in tests) share the zero Addr.
func peerIP(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap().WithZone("")
	case nil:
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap().WithZone("")
}

// limitedConn releases its listener slot on its first Close.
type limitedConn struct {
	net.Conn
	l      *LimitedListener
	ip     netip.Addr
	closed atomic.Bool
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.l.release(c.ip)
	}
	return err
}

// CloseWrite half-closes a TCP connection; net/http uses it to end a plain
// HTTP/1 response cleanly before closing.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
