package introspect

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/authn"
)

// FuzzParseResponse feeds arbitrary endpoint answers through parsing and the
// decision: no panic, and an accepted token always maps to a configured
// consumer with scopes it was configured with.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		`{"active":true,"client_id":"acme","scope":"orders:read x","exp":1900000000,"aud":["orders-api"]}`,
		`{"active":false}`,
		`{"active":true,"exp":1e400}`,
		`{"active":true,"exp":-1,"client_id":"acme"}`,
		`{"active":true,"exp":null,"aud":null,"client_id":"acme","scope":"  orders:read   orders:read "}`,
		`{"active":"true"}`,
		`{"active":true,"aud":[1]}`,
		`[]`, `null`, `""`, `{`, "\x00", `{"active":true,"client_id":"acme","active":false}`,
	} {
		f.Add([]byte(s))
	}
	a := &Authenticator{consumers: consumers, audience: nil}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := parseResponse(body)
		if err != nil {
			return
		}
		res := a.decide(r, time.Unix(1_800_000_000, 0))
		if (res.consumer == nil) == (res.fail == nil) {
			t.Fatalf("decide gave %+v", res)
		}
		if c := res.consumer; c != nil {
			base := consumers[r.clientID]
			if base == nil || c.ID != base.ID || !r.active {
				t.Fatalf("accepted %+v for %+v", c, r)
			}
			for i, s := range c.Scopes {
				if !contains(base.Scopes, s) || i > 0 && c.Scopes[i-1] >= s {
					t.Fatalf("scopes %v not a sorted unique subset of %v", c.Scopes, base.Scopes)
				}
			}
			if c.ScopeText != strings.Join(c.Scopes, " ") {
				t.Fatalf("ScopeText %q", c.ScopeText)
			}
		}
	})
}

// FuzzBearer: the Authorization header parser never panics, and whatever
// it accepts is a bounded RFC 6750 b64token.
func FuzzBearer(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer a.b.c", "Bearer", "Bearer ", "Basic x", "", "Bearer a=b", "Bearer ab==", "Bearer \x00", "Bearer  a", "BEARER a\tb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		tok, err := bearer(http.Header{"Authorization": {v}})
		if err != nil {
			var fail *authn.Failure
			if !errors.Is(err, authn.ErrNoCredential) && !errors.As(err, &fail) {
				t.Fatalf("unexpected error type %T", err)
			}
			return
		}
		if tok == "" || len(tok) > MaxTokenLen || !isB64Token(tok) || strings.ContainsAny(tok, " &\x00") {
			t.Fatalf("accepted %q", tok)
		}
	})
}
