package httpsig

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"
)

// benchmarkVerify verifies a typical signed GET covering @method,
// @target-uri and date.
func benchmarkVerify(b *testing.B, keyid string, s signer) {
	a, err := New(Options{Keys: rfcKeys(b), MaxAge: time.Minute, Now: testClock, RequiredComponents: DefaultRequiredComponents()})
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/v1/orders/acme-1?expand=items", nil)
	r.Host = "api.example.com"
	r.Header.Set("Date", "Tue, 14 Nov 2023 22:13:20 GMT")
	sign(b, a, r, "sig1", fmt.Sprintf(`("@method" "@target-uri" "date");created=%d;keyid=%q`, testNow, keyid), s)
	b.ReportAllocs()
	for b.Loop() {
		if c, err := a.Authenticate(r); err != nil || c == nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHMAC(b *testing.B)    { benchmarkVerify(b, "test-shared-secret", hmacSigner(b)) }
func BenchmarkEd25519(b *testing.B) { benchmarkVerify(b, "test-key-ed25519", edSigner(b)) }
func BenchmarkECDSA(b *testing.B)   { benchmarkVerify(b, "test-key-ecc-p256", ecSigner(b)) }
