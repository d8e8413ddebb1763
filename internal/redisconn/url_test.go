package redisconn

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/secret"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		in   string
		want Address
	}{
		{"redis://127.0.0.1:6379/0", Address{Addrs: []string{"127.0.0.1:6379"}}},
		{"redis://localhost", Address{Addrs: []string{"localhost:6379"}}},
		{"redis://localhost/", Address{Addrs: []string{"localhost:6379"}}},
		{"redis://h:1/15", Address{Addrs: []string{"h:1"}, DB: 15}},
		{"rediss://u:p%40ss@redis.internal:6380/2?command_timeout=200ms&dial_timeout=1s",
			Address{TLS: true, Addrs: []string{"redis.internal:6380"}, Username: "u", Password: secret.New("p@ss"), DB: 2,
				CommandTimeout: 200 * time.Millisecond, DialTimeout: time.Second}},
		{"redis://:secret@h", Address{Addrs: []string{"h:6379"}, Password: secret.New("secret")}},
		{"redis://user@h", Address{Addrs: []string{"h:6379"}, Username: "user"}},
		{"redis://u:pa/ss?w#rd@h:7/1", Address{Addrs: []string{"h:7"}, Username: "u", Password: secret.New("pa/ss?w#rd"), DB: 1}},
		{"redis://[::1]:6379/3", Address{Addrs: []string{"[::1]:6379"}, DB: 3}},
		{"redis://[::1]", Address{Addrs: []string{"[::1]:6379"}}},
		{"redis-sentinel://10.0.0.1,10.0.0.2:26380/mymaster?db=4",
			Address{Mode: Sentinel, Addrs: []string{"10.0.0.1:26379", "10.0.0.2:26380"}, MasterSet: "mymaster", DB: 4}},
		{"rediss-sentinel://u:p@s1/m?sentinel_auth=true",
			Address{Mode: Sentinel, TLS: true, Addrs: []string{"s1:26379"}, MasterSet: "m", Username: "u", Password: secret.New("p"), SentinelAuth: true}},
		{"redis-cluster://h1:7000,h2:7001,[::1]:7002", Address{Mode: Cluster, Addrs: []string{"h1:7000", "h2:7001", "[::1]:7002"}}},
		{"rediss-cluster://h1", Address{Mode: Cluster, TLS: true, Addrs: []string{"h1:6379"}}},
	}
	for _, tt := range tests {
		got, err := ParseURL(tt.in)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseURL(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseURLErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "want a scheme"},
		{"127.0.0.1:6379", "want a scheme"},
		{"http://h", "unknown scheme"},
		{"redis://", "no host"},
		{"redis:///0", "no host"},
		{"redis://h:0", "port must be"},
		{"redis://h:65536", "port must be"},
		{"redis://h:+1", "port must be"},
		{"redis://h:06379", "port must be"},
		{"redis://h:x", "port must be"},
		{"redis://h:", "port must be"},
		{"redis://:6379", "empty host"},
		{"redis://h/x", "database"},
		{"redis://h/-1", "database"},
		{"redis://h/01", "database"},
		{"redis://h/0/1", "database"},
		{"redis://h1,h2", "several addresses"},
		{"redis://h?db=1", "option db is for redis-sentinel"},
		{"redis://h?timeout=1s", "unknown option"},
		{"redis://h?command_timeout=0s", "command_timeout"},
		{"redis://h?command_timeout=2m", "command_timeout"},
		{"redis://h?dial_timeout=1s&dial_timeout=2s", "given 2 times"},
		{"redis://h?%zz", "invalid query"},
		{"redis://h#frag", "fragment"},
		{"redis://h\x00:1", "invalid character"},
		{"redis://h\r\n:1", "invalid character"},
		{"redis://ho st", "invalid character"},
		{"redis://[::1", "missing ']'"},
		{"redis://[1.2.3.4]:1", "not an IPv6"},
		{"redis://[::1]x", "want [ipv6]:port"},
		{"redis://u:%zz@h", "invalid percent-encoding"},
		{"redis://u:@h", "empty password"},
		{"redis://u:p%00@h", "control character"},
		{"redis-sentinel://s1", "master name"},
		{"redis-sentinel://s1/", "master name"},
		{"redis-sentinel://s1/a/b", "master name"},
		{"redis-sentinel://s1/m?sentinel_auth=yes", "sentinel_auth"},
		{"redis-sentinel://s1/m?sentinel_auth=true", "needs a user or password"},
		{"redis://h?sentinel_auth=true", "is for redis-sentinel"},
		{"redis-cluster://h1,h2/0", "no path"},
		{"redis-cluster://" + strings.Repeat("h,", 16) + "h", "at most 16"},
		{"redis://" + strings.Repeat("a", 254), "too long"},
	}
	for _, tt := range tests {
		_, err := ParseURL(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseURL(%q) = %v, want an error containing %q", tt.in, err, tt.want)
		}
	}
}

// TestParseURLHidesSecrets: no error message and no String shows the
// credentials, however malformed the rest of the URL is.
func TestParseURLHidesSecrets(t *testing.T) {
	for _, in := range []string{
		"redis://user:hunter2@h:badport",
		"redis://user:hunter2/x@h:1/zz",
		"redis://user:hunter2@",
		"redis://user:hunter2?@h/1?bogus=1",
		"redis-sentinel://user:hunter2@s1",
		"redis://user:hun%zzter2@h",
		"redis://hunter2:x@h:1/abc",
	} {
		_, err := ParseURL(in)
		if err == nil {
			t.Errorf("ParseURL(%q) succeeded", in)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "hun") {
			t.Errorf("ParseURL(%q) error shows the credentials: %v", in, err)
		}
	}
	a, err := ParseURL("redis-sentinel://gw:hunter2@s1:26379,s2/mymaster?db=3")
	if err != nil {
		t.Fatal(err)
	}
	if s := a.String(); strings.Contains(s, "hunter2") || s != "redis-sentinel://gw:[REDACTED]@s1:26379,s2:26379/mymaster?db=3" {
		t.Errorf("String() = %q", s)
	}
}

// TestParseURLRoundTrip: String of a parsed address (password aside)
// parses to the same address.
func TestParseURLRoundTrip(t *testing.T) {
	for _, in := range []string{
		"redis://h:1/2", "rediss://u@[::1]:5/0", "redis-cluster://a:1,b:2", "rediss-sentinel://s:1,t/m%2Fx?db=7",
	} {
		a, err := ParseURL(in)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ParseURL(a.String())
		if err != nil {
			t.Fatalf("%s → %s: %v", in, a.String(), err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s → %+v → %s → %+v", in, a, a.String(), b)
		}
	}
}

// FuzzParseURL: ParseURL never panics, never shows the password in an
// error, and what it accepts has 1 to 16 addresses that are host:port.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"redis://127.0.0.1:6379/0", "rediss://u:p@h:1/2?command_timeout=1s", "redis-sentinel://a,b:2/m?db=1&sentinel_auth=1",
		"redis-cluster://[::1]:1,h:2", "redis://[::1", "redis://u:p@@h", "redis://\x00", "redis://h:99999", "redis://%",
	} {
		f.Add(s, "s3cr3t")
	}
	f.Fuzz(func(t *testing.T, rest, password string) {
		// The password is the fuzzer's bytes between two markers that
		// no fixed message contains; the error must not show a marker.
		if strings.ContainsAny(password, "@:%") || strings.Contains(strconv.Quote(rest), "Zq") {
			return
		}
		password = "Zq" + password + "Zq"
		in := "redis://u:" + password + "@" + rest
		if i := strings.Index(rest, "://"); i >= 0 { // let the fuzzer pick the scheme too
			in = rest[:i] + "://u:" + password + "@" + rest[i+3:]
		}
		a, err := ParseURL(in)
		if err != nil {
			if strings.Contains(err.Error(), "Zq") {
				t.Fatalf("error shows the password: %v", err)
			}
			return
		}
		if len(a.Addrs) < 1 || len(a.Addrs) > maxAddrs {
			t.Fatalf("%d addresses", len(a.Addrs))
		}
		if strings.Contains(a.String(), "Zq") {
			t.Fatalf("String shows the password: %s", a.String())
		}
	})
}
