// Package browsertest drives the dashboard in headless Chromium (chromedp)
// for tests: the in-process test of package dashboard and the end-to-end
// test against the binary share it. Only tests import it, so chromedp is
// never linked into breakwater.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// Chromium returns the path of a Chromium or Chrome binary, or "".
func Chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Need returns the browser's path; without one it skips the test, or fails
// it when CI=true (CI installs chromium: .ci/run).
func Need(t testing.TB) string {
	t.Helper()
	p := Chromium()
	if p == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (CI=true): .ci/run installs it")
		}
		t.Skip("chromium is not installed (apt-get install chromium); skipping the browser test")
	}
	return p
}

// Options say what to drive.
type Options struct {
	Chromium string // the browser binary (Need)
	Base     string // scheme://host:port of the listener serving /dashboard/
	Token    string // the admin token
	// Screenshots, when not "", is a directory where signin.png and
	// dashboard.png are written (docs/dashboard.md shows them).
	Screenshots string
	Logf        func(format string, args ...any) // progress (t.Logf)
}

// Result is what the run saw.
type Result struct {
	CSPViolations  []string // securitypolicyviolation events and "security" log entries
	Exceptions     []string // uncaught JS exceptions
	Cookie         *network.Cookie
	DocumentCookie string // what page script can read
	Points         [2]int // chart points at the first render and after more updates
	EventRows      int
	DetectorWorks  bool // a deliberate inline script was reported as a violation
	SignedOut      bool // the sign-out button led back to the sign-in page
	WrongTokenPage bool // a wrong token showed the sign-in page with an error
}

// cspCollector records securitypolicyviolation events; scripts added
// through the DevTools protocol are not subject to the page's CSP.
const cspCollector = `window.__bwCSP = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__bwCSP.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile + ':' + e.lineNumber);
});`

// Run signs in through the form (once with a wrong token first), waits for
// the charts and the event feed to render and the charts to update, reads
// the session cookie, provokes one CSP violation to prove the detector
// works, and signs out. Traffic must flow meanwhile (the caller's job).
func Run(ctx context.Context, o Options) (Result, error) {
	var res Result
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(o.Chromium),
		chromedp.NoSandbox, // tests run as root in CI containers
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.WindowSize(1440, 1000),
	)
	actx, cancelA := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx, chromedp.WithErrorf(func(f string, a ...any) { logf("chromedp: "+f, a...) }))
	defer cancelB()

	var mu sync.Mutex
	provoked := false                                              // after the deliberate violation, console reports of violations are expected
	if err := chromedp.Listen(bctx, func(ev any) {}); err != nil { // starts the browser
		return res, fmt.Errorf("starting chromium: %w", err)
	}
	messages := chromedp.Console(bctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			mu.Lock()
			switch {
			case m.IsException():
				res.Exceptions = append(res.Exceptions, m.Text)
			case !provoked && (m.Source == "security" || strings.Contains(m.Text, "Content Security Policy")):
				res.CSPViolations = append(res.CSPViolations, m.Text)
			}
			mu.Unlock()
			logf("console %s", m)
		}
	}()

	step := func(name string, a chromedp.Action[chromedp.Void]) error {
		logf("browser: %s", name)
		sctx, cancel := context.WithTimeout(bctx, 45*time.Second)
		defer cancel()
		if _, err := chromedp.Run(sctx, a); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	evalInt := func(expr string) (int, error) {
		return chromedp.Run(bctx, chromedp.Evaluate[int](expr))
	}
	shot := func(name string) error {
		if o.Screenshots == "" {
			return nil
		}
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			return fmt.Errorf("screenshot %s: %w", name, err)
		}
		if err := os.MkdirAll(o.Screenshots, 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(o.Screenshots, name), png, 0o644)
	}

	err := step("install the CSP listener", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspCollector})
		return err
	}))
	if err == nil {
		err = step("open the sign-in page", chromedp.Steps(
			chromedp.Navigate(o.Base+"/dashboard/"),
			chromedp.WaitVisible(chromedp.ID("#token")),
		))
	}
	if err == nil {
		err = shot("signin.png")
	}
	if err == nil {
		err = step("sign in with a wrong token", chromedp.Steps(
			chromedp.SendKeys(chromedp.ID("#token"), "bwadm_not-the-token"),
			chromedp.Click(chromedp.ID("#signin")),
			chromedp.WaitVisible(chromedp.ID("#signin-error")),
		))
		res.WrongTokenPage = err == nil
	}
	if err == nil {
		err = step("sign in", chromedp.Steps(
			chromedp.SendKeys(chromedp.ID("#token"), o.Token),
			chromedp.Click(chromedp.ID("#signin")),
			chromedp.WaitVisible(chromedp.ID("#chart-rps")),
		))
	}
	if err == nil {
		err = step("wait for the charts and the event feed", chromedp.Steps(
			chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
				_, err := chromedp.Poll[chromedp.Void](`Number(document.body.dataset.summaryPoints || 0) >= 1 &&
					document.querySelectorAll('#chart-rps canvas, #chart-p95 canvas, #chart-errors canvas, #chart-latency canvas').length >= 4 &&
					document.querySelector('#event-feed tbody td:not(.empty)') !== null`,
					chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(40*time.Second))(ctx, t)
				return err
			}),
		))
	}
	if err == nil {
		res.Points[0], err = evalInt(`Number(document.body.dataset.summaryPoints)`)
	}
	if err == nil {
		err = step("wait for the charts to update", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Poll[chromedp.Void](fmt.Sprintf(`Number(document.body.dataset.summaryPoints || 0) > %d &&
				document.querySelector('#routes tbody td:not(.empty)') !== null`, res.Points[0]),
				chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(40*time.Second))(ctx, t)
			return err
		}))
	}
	if err == nil {
		res.Points[1], err = evalInt(`Number(document.body.dataset.summaryPoints)`)
	}
	if err == nil {
		res.EventRows, err = evalInt(`document.querySelectorAll('#event-feed tbody td:not(.empty)').length`)
	}
	if err == nil {
		err = step("read the cookies", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			r, err := cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{URLs: []string{o.Base + "/dashboard/"}})
			if err != nil {
				return err
			}
			for _, c := range r.Cookies {
				if c.Name == "bw_session" {
					res.Cookie = c
				}
			}
			res.DocumentCookie, err = chromedp.Evaluate[string](`document.cookie`)(ctx, t)
			return err
		}))
	}
	if err == nil {
		err = shot("dashboard.png")
	}
	if err == nil {
		var v []string
		v, err = chromedp.Run(bctx, chromedp.Evaluate[[]string](`window.__bwCSP`))
		mu.Lock()
		res.CSPViolations = append(res.CSPViolations, v...)
		mu.Unlock()
	}
	if err == nil {
		// Prove the detector: an inline script must be refused and reported.
		mu.Lock()
		provoked = true
		mu.Unlock()
		err = step("provoke a CSP violation", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			if _, err := chromedp.Evaluate[chromedp.Void](`(function () { var s = document.createElement('script'); s.textContent = 'window.__bwInline = 1'; document.body.appendChild(s); })()`)(ctx, t); err != nil && !errors.Is(err, chromedp.ErrJSUndefined) {
				return err
			}
			_, err := chromedp.Poll[chromedp.Void](`window.__bwCSP.length > 0 && window.__bwInline === undefined`,
				chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second))(ctx, t)
			return err
		}))
		res.DetectorWorks = err == nil
	}
	if err == nil {
		err = step("sign out", chromedp.Steps(
			chromedp.Click(chromedp.ID("#signout")),
			chromedp.WaitVisible(chromedp.ID("#token")),
		))
		res.SignedOut = err == nil
	}
	cancelB()
	<-done
	mu.Lock()
	defer mu.Unlock()
	return res, err
}

// Check fails t on what a good run must not show.
func Check(t testing.TB, res Result, wantSecure bool) {
	t.Helper()
	if len(res.CSPViolations) > 0 {
		t.Errorf("CSP violations: %q", res.CSPViolations)
	}
	if len(res.Exceptions) > 0 {
		t.Errorf("JavaScript exceptions: %q", res.Exceptions)
	}
	if !res.WrongTokenPage {
		t.Error("a wrong token did not show the sign-in page with an error")
	}
	if res.Cookie == nil {
		t.Fatal("no bw_session cookie in the browser")
	}
	if !res.Cookie.HTTPOnly || res.Cookie.SameSite != network.CookieSameSiteStrict || res.Cookie.Path != "/dashboard/" || res.Cookie.Secure != wantSecure {
		t.Errorf("cookie: HttpOnly=%v SameSite=%v Path=%q Secure=%v (want Secure=%v)", res.Cookie.HTTPOnly, res.Cookie.SameSite, res.Cookie.Path, res.Cookie.Secure, wantSecure)
	}
	if strings.Contains(res.DocumentCookie, "bw_session") {
		t.Error("page script can read the session cookie")
	}
	if res.Points[0] < 1 || res.Points[1] <= res.Points[0] {
		t.Errorf("chart points %v: the charts did not update", res.Points)
	}
	if res.EventRows == 0 {
		t.Error("the event feed is empty")
	}
	if !res.DetectorWorks {
		t.Error("the CSP violation detector did not report a deliberate inline script")
	}
	if !res.SignedOut {
		t.Error("sign-out did not lead back to the sign-in page")
	}
}
