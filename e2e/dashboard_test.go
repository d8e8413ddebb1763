package e2e

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/dashboard/browsertest"
)

// TestDashboard drives the dashboard of the built binary in headless
// Chromium while traffic flows through the gateway: sign-in through the
// form (a wrong token first), the charts and the security event feed
// render and update, no Content-Security-Policy violation, an HttpOnly
// SameSite=Strict session cookie (not Secure: the admin listener is plain
// HTTP on loopback), sign-out. Without Chromium it skips, unless CI=true.
// With BREAKWATER_SCREENSHOTS=DIR it saves the screenshots of
// docs/dashboard.md.
func TestDashboard(t *testing.T) {
	t.Parallel()
	chromium := browsertest.Need(t)
	up := newUpstream(t)
	g := startGateway(t, baseConfig, map[string]string{"Up": up.URL})

	// The dashboard is mounted and needs no bearer token to show its
	// sign-in page.
	resp, err := plainClient.Get("http://" + g.admin + "/dashboard/")
	if err != nil {
		t.Fatalf("GET /dashboard/: %v%s", err, g.output())
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("GET /dashboard/: %d, CSP %q; want 200 and the dashboard's CSP", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := g.client(t)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			send := func(path string, hdr http.Header) {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url(path), nil)
				if err != nil {
					return
				}
				req.Header = hdr
				if resp, err := c.Do(req); err == nil {
					resp.Body.Close()
				}
			}
			send("/public/x", http.Header{})
			send("/private/x", http.Header{"X-Api-Key": {readerKey}})
			if i%10 == 0 {
				send("/private/x", http.Header{"X-Api-Key": {"bw_e2eUnknownKey000000000000000000000000000000"}}) // an auth failure event
			}
		}
	}()

	res, err := browsertest.Run(ctx, browsertest.Options{
		Chromium: chromium, Base: "http://" + g.admin, Token: adminToken,
		Screenshots: os.Getenv("BREAKWATER_SCREENSHOTS"), Logf: t.Logf,
	})
	if err != nil {
		t.Fatalf("browser: %v (result so far: %+v)%s", err, res, g.output())
	}
	browsertest.Check(t, res, false)
}
