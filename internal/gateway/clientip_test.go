package gateway

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func TestClientIP(t *testing.T) {
	trusted, err := parseTrusted([]string{"10.0.0.0/8", "192.168.1.1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, peer string
		xff        []string
		trusted    trustedProxies
		want       string
	}{
		{"no trusted proxies: XFF ignored", "203.0.113.9", []string{"1.2.3.4"}, nil, "203.0.113.9"},
		{"untrusted peer spoofing", "203.0.113.9", []string{"1.2.3.4"}, trusted, "203.0.113.9"},
		{"trusted peer, one hop", "10.1.2.3", []string{"198.51.100.7"}, trusted, "198.51.100.7"},
		{"client-controlled left entries ignored", "10.1.2.3", []string{"6.6.6.6, 198.51.100.7"}, trusted, "198.51.100.7"},
		{"chain of trusted proxies", "10.1.2.3", []string{"198.51.100.7, 192.168.1.1, 10.9.9.9"}, trusted, "198.51.100.7"},
		{"several header lines", "10.1.2.3", []string{"6.6.6.6", "198.51.100.7"}, trusted, "198.51.100.7"},
		{"garbage stops the walk", "10.1.2.3", []string{"198.51.100.7, not-an-ip"}, trusted, "10.1.2.3"},
		{"all trusted", "10.1.2.3", []string{"10.2.2.2"}, trusted, "10.2.2.2"},
		{"no header", "10.1.2.3", nil, trusted, "10.1.2.3"},
		{"ipv4-mapped", "10.1.2.3", []string{"::ffff:198.51.100.7"}, trusted, "198.51.100.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.xff {
				h.Add("X-Forwarded-For", v)
			}
			got := tc.trusted.clientIP(netip.MustParseAddr(tc.peer), h)
			if got.String() != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
	if _, err := parseTrusted([]string{"nope"}); err == nil {
		t.Fatal("bad trusted proxy accepted")
	}
}

func TestPeerAddr(t *testing.T) {
	for in, want := range map[string]string{"1.2.3.4:5": "1.2.3.4", "[::1]:80": "::1", "[::ffff:1.2.3.4]:1": "1.2.3.4", "junk": "invalid IP"} {
		if got := peerAddr(in).String(); got != want {
			t.Errorf("peerAddr(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestRedactQuery(t *testing.T) {
	for in, want := range map[string]string{
		"":                              "",
		"page=2&sort=asc":               "page=2&sort=asc",
		"api_key=bw_123&page=2":         "api_key=REDACTED&page=2",
		"access_token=ey.x.y":           "access_token=REDACTED",
		"X-API-KEY=abc":                 "X-API-KEY=REDACTED",
		"client_secret=s&flag":          "client_secret=REDACTED&flag",
		"%61pi_key=bw_123":              "%61pi_key=REDACTED",
		"%zz=oops":                      "%zz=REDACTED",
		"k=bw_123&kk=2":                 "k=REDACTED&kk=2", // a configured api_key query name
		"password=a=b":                  "password=REDACTED",
		"q=hello%20world&signature=abc": "q=hello%20world&signature=REDACTED",
	} {
		if got := redactQuery(in, []string{"k"}); got != want {
			t.Errorf("redactQuery(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(redactQuery(in, []string{"k"}), "bw_123") {
			t.Errorf("key leaked from %q", in)
		}
	}
}

func TestRequestID(t *testing.T) {
	a, b := requestID(false, ""), requestID(false, "")
	if a == b || len(a) != 24 || !validRequestID(a) {
		t.Fatalf("generated ids %q %q", a, b)
	}
	if requestID(false, "abc") == "abc" {
		t.Fatal("untrusted peer's request id kept")
	}
	if requestID(true, "abc-123") != "abc-123" {
		t.Fatal("trusted proxy's request id dropped")
	}
	for _, bad := range []string{"a b", "x\ny", strings.Repeat("a", 65), "<script>"} {
		if requestID(true, bad) == bad {
			t.Errorf("malformed id %q kept", bad)
		}
	}
}
