package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/secret"
)

// A restart continues the quotas where the previous run left them.
func TestQuotasSurviveRestart(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(up.Close)
	dataDir := t.TempDir()
	vars := map[string]string{"UPSTREAM": up.URL, "KEY_HASH": secret.SumString(testKey).String(), "DATA": dataDir}
	yaml := strings.Replace(baseConfig, `server: { admin: "off", data_dir: "${DATA}" }`,
		`server: { https: "127.0.0.1:0", admin: "off", data_dir: "${DATA}" }`, 1)
	yaml = strings.Replace(yaml, `    credentials: [ { api_key: "${KEY_HASH}" } ]`,
		`    credentials: [ { api_key: "${KEY_HASH}" } ]
    rate_limits: ["2/d"]`, 1)
	start := func() *Runtime {
		cfg, err := config.Parse([]byte(yaml), "", func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
		if err != nil {
			t.Fatal(err)
		}
		rt, err := Start(context.Background(), cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	get := func(rt *Runtime) int {
		r := httptest.NewRequest("GET", "/items/1", nil)
		r.Header.Set("X-API-Key", testKey)
		w := httptest.NewRecorder()
		rt.Gateway().ServeHTTP(w, r)
		return w.Code
	}
	stop := func(rt *Runtime) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}

	rt := start()
	if c := get(rt); c != 200 {
		t.Fatalf("first request: %d", c)
	}
	stop(rt)
	if _, err := os.Stat(limiterFile(dataDir)); err != nil {
		t.Fatalf("no state saved at shutdown: %v", err)
	}

	rt = start()
	if c := get(rt); c != 200 {
		t.Fatalf("second request (after restart): %d", c)
	}
	if c := get(rt); c != 429 {
		t.Fatalf("third request: %d, want 429 — the restart reset the quota", c)
	}
	stop(rt)

	// A corrupt file is moved aside; the gateway starts anyway.
	if err := os.WriteFile(limiterFile(dataDir), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	rt = start()
	defer stop(rt)
	if c := get(rt); c != 200 {
		t.Fatalf("after a corrupt state file: %d", c)
	}
	if _, err := os.Stat(limiterFile(dataDir) + ".bad"); err != nil {
		t.Fatalf("corrupt state not moved aside: %v", err)
	}
}
