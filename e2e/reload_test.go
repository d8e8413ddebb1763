package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func extraRoute(name string) string {
	return fmt.Sprintf(`  - name: %[1]s
    path: /%[1]s/**
    upstream: { targets: ["{{.Up}}"], timeout: 5s }
    auth: none
`, name)
}

// status returns the status of GET path (0 on a transport error).
func (g *gateway) status(t *testing.T, c *http.Client, path string) int {
	resp, err := c.Get(g.url(path))
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitStatus(t *testing.T, g *gateway, c *http.Client, path string, want int, d time.Duration, why string) {
	t.Helper()
	eventually(t, d, func() string {
		if got := g.status(t, c, path); got != want {
			return fmt.Sprintf("%s: GET %s is %d, want %d%s", why, path, got, want, g.output())
		}
		return ""
	})
}

func TestReload(t *testing.T) {
	t.Parallel()

	t.Run("SIGHUP", func(t *testing.T) {
		t.Parallel()
		up := newUpstream(t)
		// The config path is a symlink into another directory: the file
		// watcher (which watches the symlink's directory) sees no event
		// when the target is edited, so only SIGHUP can reload it.
		realPath := filepath.Join(t.TempDir(), "real.yaml")
		write := func(t *testing.T, content string) { writeFile(t, realPath, content) }
		g := startGateway(t, baseConfig, map[string]string{"Up": up.URL}, func(o *gwOptions) {
			o.write = func(t *testing.T, path, content string) {
				write(t, content)
				os.Remove(path)
				if err := os.Symlink(realPath, path); err != nil {
					t.Fatal(err)
				}
			}
		})
		c := g.client(t)
		if s := g.status(t, c, "/extra/x"); s != 404 {
			t.Fatalf("GET /extra/x before the reload: %d, want 404", s)
		}

		write(t, render(t, baseConfig+extraRoute("extra"), g.vars))
		g.signal(syscall.SIGHUP)
		waitStatus(t, g, c, "/extra/x", 200, 10*time.Second, "after SIGHUP with a new route")

		// An invalid config: the running one stays, the error is logged, /readyz stays 200.
		before := len(g.stderr.String())
		write(t, render(t, strings.Replace(baseConfig+extraRoute("extra"), "version: 1\n", "version: 1\nbogus_field_e2e: 1\n", 1), g.vars))
		g.signal(syscall.SIGHUP)
		eventually(t, 10*time.Second, func() string {
			if !strings.Contains(g.stderr.String()[before:], "bogus_field_e2e") {
				return "after SIGHUP with an invalid config, stderr does not name the problem (bogus_field_e2e)" + g.output()
			}
			return ""
		})
		if g.exited() {
			t.Fatalf("the gateway exited after an invalid reload%s", g.output())
		}
		if s := g.status(t, c, "/extra/x"); s != 200 {
			t.Errorf("after an invalid reload, GET /extra/x: %d, want 200 (old config still in force)", s)
		}
		if s := g.status(t, c, "/public/x"); s != 200 {
			t.Errorf("after an invalid reload, GET /public/x: %d, want 200", s)
		}
		resp, body := adminRequest(t, g, "GET", "/readyz", "")
		if resp.StatusCode != 200 {
			t.Errorf("after an invalid reload, /readyz: %d %q, want 200", resp.StatusCode, body)
		}
		// The admin API says why too.
		resp, body = adminRequest(t, g, "POST", "/admin/reload", adminToken)
		if resp.StatusCode == 200 || !strings.Contains(string(body), "bogus_field_e2e") {
			t.Errorf("POST /admin/reload with an invalid config: %d %q, want an error naming bogus_field_e2e", resp.StatusCode, body)
		}
	})

	t.Run("file change", func(t *testing.T) {
		t.Parallel()
		up := newUpstream(t)
		g := startGateway(t, baseConfig, map[string]string{"Up": up.URL})
		c := g.client(t)
		if s := g.status(t, c, "/extra/x"); s != 404 {
			t.Fatalf("GET /extra/x before the edit: %d, want 404", s)
		}
		// In-place write.
		writeFile(t, g.cfgPath, render(t, baseConfig+extraRoute("extra"), g.vars))
		waitStatus(t, g, c, "/extra/x", 200, 10*time.Second, "after writing the config file (no signal)")

		// Editor-style save: write a temporary file, rename it over the config.
		tmp := g.cfgPath + ".tmp"
		writeFile(t, tmp, render(t, baseConfig+extraRoute("extra")+extraRoute("another"), g.vars))
		if err := os.Rename(tmp, g.cfgPath); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, g, c, "/another/x", 200, 10*time.Second, "after renaming a new config over the file")
	})

	t.Run("file change through a swapped symlink (Kubernetes ConfigMap)", func(t *testing.T) {
		t.Parallel()
		// The layout of a mounted ConfigMap: DIR/breakwater.yaml ->
		// ..data/breakwater.yaml, ..data -> ..v1. An update writes ..v2 and
		// atomically renames a new ..data symlink over the old one: the
		// file's content changes without any event naming breakwater.yaml.
		up := newUpstream(t)
		var dir string
		g := startGateway(t, baseConfig, map[string]string{"Up": up.URL}, func(o *gwOptions) {
			o.write = func(t *testing.T, path, content string) {
				dir = filepath.Dir(path)
				os.RemoveAll(filepath.Join(dir, "..v1"))
				os.Remove(filepath.Join(dir, "..data"))
				os.Remove(path)
				if err := os.Mkdir(filepath.Join(dir, "..v1"), 0o700); err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(dir, "..v1", "breakwater.yaml"), content)
				if err := os.Symlink("..v1", filepath.Join(dir, "..data")); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(filepath.Join("..data", "breakwater.yaml"), path); err != nil {
					t.Fatal(err)
				}
			}
		})
		c := g.client(t)
		if err := os.Mkdir(filepath.Join(dir, "..v2"), 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "..v2", "breakwater.yaml"), render(t, baseConfig+extraRoute("extra"), g.vars))
		if err := os.Symlink("..v2", filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, g, c, "/extra/x", 200, 10*time.Second, "after a ConfigMap-style update of the config (no signal)")
	})
}
