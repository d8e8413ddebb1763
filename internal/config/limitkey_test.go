package config

import (
	"strings"
	"testing"
)

func TestParseLimitKey(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // parts as kind/name, joined with " "; "" for an error
	}{
		{"consumer", "consumer/"},
		{"ip", "ip/"},
		{"route", "route/"},
		{"header:x-tenant", "header/X-Tenant"},
		{"claim:https://example.com/org", "claim/https://example.com/org"},
		{"consumer+ip", "consumer/ ip/"},
		{"header:X-Tenant+ip+claim:a+consumer", "header/X-Tenant ip/ claim/a consumer/"},
		{"", ""},
		{"+", ""},
		{"ip+", ""},
		{"route+ip", ""},
		{"ip+ip", ""},
		{"header:A+header:a", ""},
		{"header:", ""},
		{"header:a b", ""},
		{"header:a\x00", ""},
		{"claim:a\"b", ""},
		{"claim:a\\b", ""},
		{"claim:" + strings.Repeat("c", 65), ""},
		{"Consumer", ""},
		{"ip+consumer+header:a+header:b+claim:c", ""},
	} {
		parts, err := ParseLimitKey(tc.in)
		var got []string
		for _, p := range parts {
			got = append(got, p.Kind+"/"+p.Name)
		}
		if (err == nil) != (tc.want != "") || strings.Join(got, " ") != tc.want {
			t.Errorf("ParseLimitKey(%q) = %v, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// FuzzParseLimitKey: never panics; what it accepts is within the bounds.
func FuzzParseLimitKey(f *testing.F) {
	for _, s := range []string{"consumer", "ip+consumer", "header:X-Tenant+ip", "claim:org", "route", "++", "header:\xff", "claim:" + strings.Repeat("a", 70)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		parts, err := ParseLimitKey(s)
		if err != nil {
			return
		}
		if len(parts) == 0 || len(parts) > MaxLimitKeyParts {
			t.Fatalf("%q: %d parts", s, len(parts))
		}
		for _, p := range parts {
			if len(p.Name) > maxLimitKeyName || strings.ContainsAny(p.Name, "+ \"\\") {
				t.Fatalf("%q: part %+v", s, p)
			}
		}
	})
}
