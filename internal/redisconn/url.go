// Package redisconn connects Breakwater to Redis: it parses the store.redis
// URL, builds a rueidis client (auto-pipelining, timeouts on dial and on
// every command) and guards it with a circuit breaker so that an outage
// costs requests nothing but a check of the breaker. The Redis stores
// (ratelimit.Redis, state.Redis) share one Conn.
//
// # store.redis URLs
//
// The text below is meant for the documentation of store.redis.
//
//	redis://[[user]:password@]host[:port][/db][?options]
//	rediss://…                                   same, over TLS
//	redis-sentinel://[[user]:password@]host[:port],host[:port]…/master[?db=N&options]
//	rediss-sentinel://…                          same, over TLS (sentinels and data nodes)
//	redis-cluster://[[user]:password@]host[:port],host[:port]…[?options]
//	rediss-cluster://…                           same, over TLS
//
// The schemes:
//
//   - redis and rediss: one server (a standalone Redis, or the endpoint of a
//     managed service). The port defaults to 6379, the database to 0.
//   - redis-sentinel: the addresses are Sentinels (port default 26379), the
//     path names the master set; the client follows failovers. The database
//     is the db option (default 0). The user and password authenticate to
//     the data nodes; Sentinels are contacted without credentials unless the
//     option sentinel_auth=true is given, which sends the same credentials
//     to them.
//   - redis-cluster: the addresses are seed nodes of a Redis Cluster (port
//     default 6379); the client discovers the others and follows slot moves.
//     A cluster has only database 0, so no path is allowed.
//
// For every scheme:
//
//   - Up to 16 addresses; an IPv6 address is written in brackets
//     ("[::1]:6379").
//   - The credentials are everything before the last '@'. Percent-encode
//     "%" as %25 (and ":" in the user as %3A); write the password as ${ENV}
//     to keep it out of the file. A password without a user
//     ("redis://:secret@host") uses the default user.
//   - Options: dial_timeout (default 2s) bounds each connection attempt,
//     command_timeout (default 500ms) bounds each command, both Go
//     durations from 1ms to 1m ("250ms"). Unknown options are errors.
//   - TLS (the rediss schemes) verifies the server certificate against the
//     system roots and the host name of each address.
//
// Examples:
//
//	redis://127.0.0.1:6379/0
//	rediss://:${REDIS_PASSWORD}@redis.internal:6380/2?command_timeout=200ms
//	redis-sentinel://10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/mymaster?db=0
//	redis-cluster://gw:${REDIS_PASSWORD}@10.0.1.1:6379,10.0.1.2:6379,10.0.1.3:6379
package redisconn

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/breakwater/breakwater/internal/secret"
)

// Mode is how the addresses of an Address are used.
type Mode int

// The modes.
const (
	// Standalone is one Redis server.
	Standalone Mode = iota
	// Sentinel is a set of Sentinels that name the master of a set.
	Sentinel
	// Cluster is a set of seed nodes of a Redis Cluster.
	Cluster
)

// String returns "standalone", "sentinel" or "cluster".
func (m Mode) String() string {
	switch m {
	case Sentinel:
		return "sentinel"
	case Cluster:
		return "cluster"
	default:
		return "standalone"
	}
}

// Address is a parsed store.redis URL.
type Address struct {
	// Mode is standalone, sentinel or cluster.
	Mode Mode
	// TLS is true for the rediss schemes.
	TLS bool
	// Addrs are host:port pairs: the server, the Sentinels or the seeds.
	Addrs []string
	// Username and Password authenticate to the data nodes; both empty
	// means no AUTH.
	Username string
	Password secret.Value
	// DB is the database number (always 0 for a cluster).
	DB int
	// MasterSet is the Sentinel master name.
	MasterSet string
	// SentinelAuth sends Username and Password to the Sentinels too.
	SentinelAuth bool
	// DialTimeout and CommandTimeout are the dial_timeout and
	// command_timeout options; 0 when not given.
	DialTimeout    time.Duration
	CommandTimeout time.Duration
}

// maxAddrs bounds the number of addresses of one URL.
const maxAddrs = 16

// ParseURL parses a store.redis URL (see the package documentation). Its
// errors never contain the user or the password.
func ParseURL(raw string) (Address, error) {
	var a Address
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return a, errors.New(`redis URL: want a scheme such as "redis://"`)
	}
	defPort := "6379"
	switch scheme {
	case "redis":
	case "rediss":
		a.TLS = true
	case "redis-sentinel":
		a.Mode, defPort = Sentinel, "26379"
	case "rediss-sentinel":
		a.Mode, defPort, a.TLS = Sentinel, "26379", true
	case "redis-cluster":
		a.Mode = Cluster
	case "rediss-cluster":
		a.Mode, a.TLS = Cluster, true
	default:
		return a, fmt.Errorf("redis URL: unknown scheme %q; want redis, rediss, redis-sentinel, rediss-sentinel, redis-cluster or rediss-cluster", truncate(scheme))
	}
	// The credentials end at the last '@' (nothing after them may contain
	// one), so a password with an unencoded '/', '?' or '#' is still
	// taken whole and never quoted in an error as if it were a host.
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		if err := a.parseUserinfo(rest[:i]); err != nil {
			return a, err
		}
		rest = rest[i+1:]
	}
	if strings.IndexByte(rest, '#') >= 0 {
		return a, errors.New("redis URL: a fragment (#) is not allowed")
	}
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	if err := a.parseHosts(authority, defPort); err != nil {
		return a, err
	}
	path, query, _ := strings.Cut(tail, "?")
	if err := a.parsePath(path); err != nil {
		return a, err
	}
	if err := a.parseQuery(query); err != nil {
		return a, err
	}
	if a.SentinelAuth && a.Username == "" && a.Password.IsZero() {
		return a, errors.New("redis URL: sentinel_auth=true needs a user or password")
	}
	return a, nil
}

func (a *Address) parseUserinfo(ui string) error {
	user, pass, hasPass := strings.Cut(ui, ":")
	u, err1 := url.PathUnescape(user)
	p, err2 := url.PathUnescape(pass)
	if err1 != nil || err2 != nil {
		return errors.New("redis URL: the user or password has an invalid percent-encoding")
	}
	if strings.ContainsAny(u+p, "\x00\r\n") {
		return errors.New("redis URL: the user or password contains a control character")
	}
	if hasPass && p == "" {
		return errors.New("redis URL: empty password")
	}
	a.Username, a.Password = u, secret.New(p)
	return nil
}

func (a *Address) parseHosts(s, defPort string) error {
	if s == "" {
		return errors.New("redis URL: no host")
	}
	hosts := strings.Split(s, ",")
	if len(hosts) > maxAddrs {
		return fmt.Errorf("redis URL: %d addresses; at most %d", len(hosts), maxAddrs)
	}
	if a.Mode == Standalone && len(hosts) > 1 {
		return errors.New("redis URL: several addresses need redis-sentinel:// or redis-cluster://")
	}
	for _, h := range hosts {
		host, port := h, defPort
		if strings.HasPrefix(h, "[") {
			end := strings.IndexByte(h, ']')
			if end < 0 {
				return fmt.Errorf("redis URL: address %q: missing ']'", truncate(h))
			}
			host = h[1:end]
			if r := h[end+1:]; r != "" {
				if r[0] != ':' {
					return fmt.Errorf("redis URL: address %q: want [ipv6]:port", truncate(h))
				}
				port = r[1:]
			}
			if ip := net.ParseIP(host); ip == nil || ip.To4() != nil {
				return fmt.Errorf("redis URL: address %q: not an IPv6 address", truncate(h))
			}
		} else if i := strings.LastIndexByte(h, ':'); i >= 0 {
			host, port = h[:i], h[i+1:]
		}
		if err := checkHost(host); err != nil {
			return fmt.Errorf("redis URL: address %q: %w", truncate(h), err)
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' || port[0] == '+' {
			return fmt.Errorf("redis URL: address %q: the port must be 1 to 65535", truncate(h))
		}
		a.Addrs = append(a.Addrs, net.JoinHostPort(host, port))
	}
	return nil
}

// checkHost accepts an IP address or a DNS name.
func checkHost(h string) error {
	if h == "" {
		return errors.New("empty host")
	}
	if net.ParseIP(h) != nil {
		return nil
	}
	if len(h) > 253 {
		return errors.New("host name too long")
	}
	for i := range len(h) {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return errors.New("invalid character in host name")
		}
	}
	return nil
}

func (a *Address) parsePath(p string) error {
	p = strings.TrimPrefix(p, "/")
	switch a.Mode {
	case Standalone:
		if p == "" {
			return nil
		}
		db, err := parseDB(p)
		a.DB = db
		return err
	case Sentinel:
		if p == "" || strings.ContainsAny(p, "/ \t\r\n\x00") {
			return errors.New("redis URL: a sentinel URL needs the master name as its path: redis-sentinel://host:26379/mymaster")
		}
		name, err := url.PathUnescape(p)
		if err != nil || name == "" || len(name) > 128 {
			return errors.New("redis URL: invalid master name")
		}
		a.MasterSet = name
		return nil
	default:
		if p != "" {
			return errors.New("redis URL: a cluster URL has no path (a cluster has only database 0)")
		}
		return nil
	}
}

func parseDB(s string) (int, error) {
	db, err := strconv.Atoi(s)
	if err != nil || db < 0 || db > 1<<20 || (len(s) > 1 && s[0] == '0') || s[0] == '+' {
		return 0, fmt.Errorf("redis URL: database %q: want a number from 0", truncate(s))
	}
	return db, nil
}

func (a *Address) parseQuery(q string) error {
	if q == "" {
		return nil
	}
	vals, err := url.ParseQuery(q)
	if err != nil {
		return errors.New("redis URL: invalid query")
	}
	for k, v := range vals {
		if len(v) != 1 {
			return fmt.Errorf("redis URL: option %q given %d times", truncate(k), len(v))
		}
		switch k {
		case "dial_timeout", "command_timeout":
			d, err := time.ParseDuration(v[0])
			if err != nil || d <= 0 || d > time.Minute {
				return fmt.Errorf("redis URL: option %s: want a duration from 1ms to 1m, such as 500ms", k)
			}
			if k == "dial_timeout" {
				a.DialTimeout = d
			} else {
				a.CommandTimeout = d
			}
		case "db":
			if a.Mode != Sentinel {
				return errors.New("redis URL: option db is for redis-sentinel; write the database as the path: redis://host:6379/2")
			}
			if a.DB, err = parseDB(v[0]); err != nil {
				return err
			}
		case "sentinel_auth":
			if a.Mode != Sentinel {
				return errors.New("redis URL: option sentinel_auth is for redis-sentinel")
			}
			b, err := strconv.ParseBool(v[0])
			if err != nil {
				return errors.New("redis URL: option sentinel_auth: want true or false")
			}
			a.SentinelAuth = b
		default:
			return fmt.Errorf("redis URL: unknown option %q; want dial_timeout, command_timeout, db (sentinel) or sentinel_auth (sentinel)", truncate(k))
		}
	}
	return nil
}

// String returns the address as a URL with the password redacted, for logs.
func (a Address) String() string {
	scheme := "redis"
	if a.TLS {
		scheme = "rediss"
	}
	switch a.Mode {
	case Sentinel:
		scheme += "-sentinel"
	case Cluster:
		scheme += "-cluster"
	}
	var b strings.Builder
	b.WriteString(scheme + "://")
	if a.Username != "" || !a.Password.IsZero() {
		b.WriteString(url.PathEscape(a.Username))
		if !a.Password.IsZero() {
			b.WriteString(":" + a.Password.String())
		}
		b.WriteString("@")
	}
	b.WriteString(strings.Join(a.Addrs, ","))
	switch a.Mode {
	case Standalone:
		b.WriteString("/" + strconv.Itoa(a.DB))
	case Sentinel:
		b.WriteString("/" + url.PathEscape(a.MasterSet) + "?db=" + strconv.Itoa(a.DB))
	}
	return b.String()
}

// truncate shortens what an error message quotes.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
