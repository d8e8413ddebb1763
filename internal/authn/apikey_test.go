package authn

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/secret"
)

func ring(t *testing.T) *KeyRing {
	t.Helper()
	d1, d2 := secret.SumString("bw_alpha"), secret.SumString("bw_beta")
	r, byID, err := NewKeyRing([]config.Consumer{
		{ID: "acme", Scopes: []string{"orders:write", "orders:read", "orders:read"}, Credentials: []config.Credential{{APIKey: &d1}}},
		{ID: "beta", Credentials: []config.Credential{{APIKey: &d2}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := byID["acme"].Scopes; strings.Join(got, ",") != "orders:read,orders:write" {
		t.Fatalf("scopes not sorted/unique: %v", got)
	}
	return r
}

func TestAPIKey(t *testing.T) {
	a := NewAPIKey(config.Authenticator{Type: "api_key", Header: "x-api-key"}, ring(t))
	q := NewAPIKey(config.Authenticator{Type: "api_key", Query: "api_key"}, ring(t))
	for _, tc := range []struct {
		name     string
		auth     *APIKey
		target   string
		headers  []string
		consumer string
		noCred   bool
		reason   string
	}{
		{name: "valid", auth: a, headers: []string{"bw_alpha"}, consumer: "acme"},
		{name: "other consumer", auth: a, headers: []string{"bw_beta"}, consumer: "beta"},
		{name: "surrounding spaces", auth: a, headers: []string{" bw_alpha "}, consumer: "acme"},
		{name: "no header", auth: a, noCred: true},
		{name: "unknown", auth: a, headers: []string{"bw_gamma"}, reason: "unknown api key"},
		{name: "prefix of a key", auth: a, headers: []string{"bw_alph"}, reason: "unknown api key"},
		{name: "key plus suffix", auth: a, headers: []string{"bw_alphaX"}, reason: "unknown api key"},
		{name: "empty", auth: a, headers: []string{""}, reason: "empty api key"},
		{name: "repeated", auth: a, headers: []string{"bw_alpha", "bw_alpha"}, reason: "api key header repeated"},
		{name: "too long", auth: a, headers: []string{strings.Repeat("k", MaxAPIKeyLen+1)}, reason: "api key too long"},
		{name: "query", auth: q, target: "/x?api_key=bw_beta", consumer: "beta"},
		{name: "query repeated", auth: q, target: "/x?api_key=bw_beta&api_key=bw_alpha", reason: "api key query parameter repeated"},
		{name: "query ignored without config", auth: a, target: "/x?api_key=bw_beta", noCred: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := tc.target
			if target == "" {
				target = "/x"
			}
			r := httptest.NewRequest("GET", target, nil)
			for _, h := range tc.headers {
				r.Header.Add("X-Api-Key", h)
			}
			c, err := tc.auth.Authenticate(r)
			switch {
			case tc.noCred:
				if !errors.Is(err, ErrNoCredential) {
					t.Fatalf("want ErrNoCredential, got %v %v", c, err)
				}
			case tc.reason != "":
				var f *Failure
				if !errors.As(err, &f) || f.Reason != tc.reason {
					t.Fatalf("want failure %q, got %v", tc.reason, err)
				}
			default:
				if err != nil || c == nil || c.ID != tc.consumer {
					t.Fatalf("want consumer %s, got %v %v", tc.consumer, c, err)
				}
			}
		})
	}
}

func TestKeyRingRejectsSharedKey(t *testing.T) {
	d := secret.SumString("same")
	_, _, err := NewKeyRing([]config.Consumer{
		{ID: "a", Credentials: []config.Credential{{APIKey: &d}}},
		{ID: "b", Credentials: []config.Credential{{APIKey: &d}}},
	})
	if err == nil {
		t.Fatal("two consumers with one key must be refused")
	}
}

func TestHasScopes(t *testing.T) {
	c := &Consumer{ID: "x", Scopes: []string{"a", "b"}}
	for _, tc := range []struct {
		want []string
		ok   bool
	}{{nil, true}, {[]string{"a"}, true}, {[]string{"a", "b"}, true}, {[]string{"c"}, false}, {[]string{"a", "c"}, false}} {
		if got := c.HasScopes(tc.want); got != tc.ok {
			t.Errorf("HasScopes(%v) = %v", tc.want, got)
		}
	}
}

func BenchmarkAPIKey(b *testing.B) {
	d := secret.SumString("bw_alpha")
	r, _, _ := NewKeyRing([]config.Consumer{{ID: "acme", Credentials: []config.Credential{{APIKey: &d}}}})
	a := NewAPIKey(config.Authenticator{Type: "api_key", Header: "X-API-Key"}, r)
	req := httptest.NewRequest("GET", "/x", nil)
	req.Header.Set("X-API-Key", "bw_alpha")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(req); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAPIKeyStrip(t *testing.T) {
	a := NewAPIKey(config.Authenticator{Type: "api_key", Header: "X-API-Key", Query: "api_key"}, ring(t))
	r := httptest.NewRequest("GET", "/x?page=2&api_key=bw_beta&sort=asc", nil)
	r.Header.Set("X-API-Key", "bw_alpha")
	r.Header.Set("X-Other", "kept")
	a.Strip(r)
	if r.Header.Get("X-API-Key") != "" || r.Header.Get("X-Other") != "kept" {
		t.Fatalf("headers after Strip: %v", r.Header)
	}
	if strings.Contains(r.URL.RawQuery, "bw_beta") || r.URL.Query().Get("page") != "2" || r.URL.Query().Get("sort") != "asc" {
		t.Fatalf("query after Strip: %q", r.URL.RawQuery)
	}
}
