package dashboard

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/audit"
	"github.com/breakwater/breakwater/internal/dashboard/browsertest"
	"github.com/breakwater/breakwater/internal/telemetry"
)

// TestBrowser drives the dashboard in headless Chromium against an
// httptest TLS server while synthetic traffic flows: sign-in through the
// form, charts and event feed rendered and updating, no CSP violation, an
// HttpOnly Secure SameSite=Strict cookie, sign-out. With
// BREAKWATER_SCREENSHOTS=DIR it saves the screenshots docs/dashboard.md
// shows.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test in -short mode")
	}
	chromium := browsertest.Need(t)
	f := newFixture(t, func(o *Options) {
		o.Now = time.Now
		o.Inventory = func() any {
			return map[string]any{"operations": []map[string]any{
				{"method": "GET", "path": "/orders/{id}", "route": "orders", "status": "documented"},
				{"method": "GET", "path": "/v1/legacy", "route": "legacy", "status": "zombie"},
				{"method": "POST", "path": "/internal/debug", "route": "(none)", "status": "shadow"},
			}}
		}
		o.Audit = func(context.Context) (*audit.Report, error) {
			return &audit.Report{Score: 86, Files: []string{"breakwater.yaml"}, Findings: []audit.Finding{
				{Rule: "BW-CFG-007", Severity: audit.High, Category: "API4:2023", File: "breakwater.yaml", Line: 31, Col: 5,
					Message: "route legacy has no rate limit", Fix: "add limits.rate to the route"},
				{Rule: "BW-SPEC-012", Severity: audit.Low, Category: "API9:2023", File: "orders.yaml", Line: 12, Col: 3,
					Message: "operation without a description", Fix: "describe the operation"},
			}}, nil
		}
		o.Config = func() any {
			return map[string]any{"version": 1, "admin": map[string]any{"token_hash": "sha256:1a2b3c4d…"},
				"routes": []map[string]any{{"name": "orders", "path": "/orders/{id}"}, {"name": "users", "path": "/users"}}}
		}
	})
	f.events = telemetry.NewEvents(telemetry.EventsOptions{Capacity: 100}) // real time: the feed shows it
	f.d.interval = time.Second                                             // charts get points sooner; the page still polls every 5 s

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	go traffic(ctx, f)

	srv := newTLSServer(t, f.d)
	shots := os.Getenv("BREAKWATER_SCREENSHOTS")
	res, err := browsertest.Run(ctx, browsertest.Options{Chromium: chromium, Base: srv, Token: testToken, Screenshots: shots, Logf: t.Logf})
	if err != nil {
		t.Fatalf("browser: %v (result so far: %+v)", err, res)
	}
	browsertest.Check(t, res, true)
}

// traffic records synthetic requests, consumers and security events until
// ctx ends.
func traffic(ctx context.Context, f *fixture) {
	routes := []*telemetry.Route{f.metrics.Route("orders"), f.metrics.Route("users"), f.metrics.Route("legacy")}
	consumers := []string{"billing-service", "mobile-app", "partner-acme", "reporting"}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for j, r := range routes {
			status := 200
			switch {
			case (i+j)%37 == 0:
				status = 502
			case (i+j)%11 == 0:
				status = 404
			}
			d := time.Duration(1+(i*7+j*13)%40) * time.Millisecond
			if (i+j)%50 == 0 {
				d = 400 * time.Millisecond
			}
			r.Request("GET", status, d, 0, 512)
			f.d.Observe(consumers[(i+j)%len(consumers)], status)
		}
		if i%25 == 0 {
			routes[0].AuthFailures("api_keys").Inc(telemetry.AuthUnknownKey)
			f.events.Emit(telemetry.Event{Kind: telemetry.EventAuthFailure, ClientIP: "203.0.113." + strconv.Itoa(i%200), Route: "orders",
				Authenticator: "api_keys", Reason: "unknown key"})
		}
		if i%60 == 0 {
			f.metrics.Rejected(telemetry.RejectRateLimited)
			f.events.Emit(telemetry.Event{Kind: telemetry.EventRateLimited, ClientIP: "198.51.100.7", Route: "users", Consumer: "partner-acme", Reason: "limit per_consumer"})
		}
	}
}
