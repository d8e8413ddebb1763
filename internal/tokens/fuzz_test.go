package tokens

import (
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzClientAuth feeds the form parser and the client authentication
// parser (Authorization header and form fields) with arbitrary input.
func FuzzClientAuth(f *testing.F) {
	f.Add("", "grant_type=client_credentials&client_id=acme&client_secret=s")
	f.Add(basic("acme", "s"), "grant_type=client_credentials")
	f.Add(basic("odd:id é+", "p@ss:w+rd/=%"), "scope=a+b")
	f.Fuzz(func(t *testing.T, authorization, body string) {
		form, e := parseForm([]byte(body))
		if e != nil {
			checkOAuthError(t, e)
			return
		}
		for k, v := range form {
			if len(v) != 1 || v[0] == "" || !utf8.ValidString(k) || !utf8.ValidString(v[0]) {
				t.Fatalf("form kept %q=%q", k, v)
			}
		}
		var authz []string
		if authorization != "" {
			authz = []string{authorization}
		}
		creds, e := parseClientAuth(authz, form)
		if e != nil {
			checkOAuthError(t, e)
			return
		}
		switch {
		case creds.id == "" || len(creds.id) > maxClientIDLen || !utf8.ValidString(creds.id) || strings.ContainsFunc(creds.id, isControl):
			t.Fatalf("accepted client id %q", creds.id)
		case creds.secret == "" || len(creds.secret) > maxClientSecretLen:
			t.Fatalf("accepted secret of %d bytes", len(creds.secret))
		case creds.basic != (authorization != ""):
			t.Fatalf("basic=%v with Authorization %q", creds.basic, authorization)
		case creds.basic && form.Has("client_secret"):
			t.Fatal("both methods accepted")
		}
	})
}

// checkOAuthError checks that an error is one of the fixed, generic
// responses: nothing the client sent can reach the description.
func checkOAuthError(t *testing.T, e *oauthError) {
	t.Helper()
	switch {
	case e.code == "invalid_request" && e.status == 400 && e.desc == invalidRequest("").desc:
	case e.code == "invalid_client" && e.status == 401 && e.desc == invalidClient("", false).desc:
	default:
		t.Fatalf("unexpected error %+v", e)
	}
}

// FuzzAppendJSONString checks the hand-written JSON string encoder used by
// Identity (request ids and routes reach it).
func FuzzAppendJSONString(f *testing.F) {
	f.Add("req-1")
	f.Add("\"\\\x00\xff\u2028")
	f.Fuzz(func(t *testing.T, s string) { checkJSONString(t, s) })
}

// FuzzGrantScope checks that a granted scope is always a subset of the
// consumer's scopes, sorted and unique.
func FuzzGrantScope(f *testing.F) {
	f.Add("orders:read")
	f.Add("orders:write orders:read orders:read")
	f.Add("admin")
	c := consumer("acme", "a", "orders:read", "orders:write")
	f.Fuzz(func(t *testing.T, requested string) {
		got, e := grantScope(c, requested)
		if e != nil {
			if e.code != "invalid_scope" || strings.Contains(e.desc, requested) && requested != "" && len(requested) > 3 {
				t.Fatalf("error %+v", e)
			}
			return
		}
		granted := strings.Split(got, " ")
		if !c.HasScopes(granted) {
			t.Fatalf("granted %q beyond the consumer's scopes", got)
		}
		for i := 1; i < len(granted); i++ {
			if granted[i-1] >= granted[i] {
				t.Fatalf("granted %q not sorted and unique", got)
			}
		}
	})
}

// FuzzIntrospectToken checks that no token but one this server issued to
// the client is ever accepted, and that parsing never panics.
func FuzzIntrospectToken(f *testing.F) {
	fx := newFixture(f)
	valid := fx.issueToken(f, "acme", acmeSecret)
	f.Add(valid)
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Add(valid[:len(valid)-2] + "AA")
	f.Fuzz(func(t *testing.T, tok string) {
		claims, _ := fx.srv.ownToken(tok, "acme")
		if claims != nil && tok != valid {
			// Only re-encodings of the same signed token can pass.
			if claims.ClientID != "acme" || claims.Issuer != testIssuer {
				t.Fatalf("accepted %q", tok)
			}
		}
	})
}

// FuzzDecodeKeyFile feeds the reader of the key file and of the KeyStore
// content (a Redis value anyone with write access to Redis controls) with
// arbitrary bytes, and merges what it accepts into a ring.
func FuzzDecodeKeyFile(f *testing.F) {
	f.Add([]byte(`{"version":1,"keys":[]}`))
	f.Add([]byte(`{"version":1,"keys":[{"kid":"x","alg":"EdDSA","created_at":"2030-01-02T03:04:05Z","max_token_ttl_seconds":60,"private_key_pkcs8":"MC4CAQAwBQYDK2VwBCIEIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":1,"keys":"x"}`))
	f.Add([]byte("\x00\xff{"))
	clk := newClock()
	template := openRing(f, f.TempDir(), EdDSA, clk)
	fixed := regexp.MustCompile(`^(is larger than \d+ bytes|is not valid JSON \(offset \d+\)|does not have the expected structure|has version -?\d+, want 1)$`)
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := decodeKeyFile(data)
		if err != nil {
			if !fixed.MatchString(err.Error()) {
				t.Fatalf("unexpected error text (may quote content): %v", err)
			}
			return
		}
		ring := &KeyRing{alg: EdDSA, rotateEvery: time.Hour, maxTTL: 15 * time.Minute, now: clk.Now, log: slog.New(slog.DiscardHandler)}
		template.mu.Lock()
		for _, e := range template.entries {
			c := *e
			ring.entries = append(ring.entries, &c)
		}
		template.mu.Unlock()
		ring.mu.Lock()
		defer ring.mu.Unlock()
		_ = ring.mergeLocked(recs, "fuzz")
		if len(ring.entries) > maxKeys {
			t.Fatalf("ring holds %d keys", len(ring.entries))
		}
		if _, err := ring.normalize(clk.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := decodeKeyFile(ring.encodeLocked()); err != nil {
			t.Fatalf("the ring's own encoding does not decode: %v", err)
		}
	})
}
