package dashboard

import (
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// signInLimiter allows SignInAttempts sign-in attempts per client per
// SignInWindow (fixed windows). Clients are IPv4 addresses and IPv6 /64s;
// at most signInClientsKept are tracked, the rest share one window.
type signInLimiter struct {
	mu       sync.Mutex
	m        map[netip.Prefix]*attemptWindow
	overflow attemptWindow
}

type attemptWindow struct {
	start time.Time
	n     int
}

func (l *signInLimiter) init() { l.m = make(map[netip.Prefix]*attemptWindow) }

// limiterKey is the client's address (IPv4) or /64 (IPv6); the zero
// Prefix for an unknown address.
func limiterKey(a netip.Addr) netip.Prefix {
	if !a.IsValid() {
		return netip.Prefix{}
	}
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.WithZone("").Prefix(bits)
	return p
}

// allow counts one attempt of key at now and reports whether it is within
// the allowance.
func (l *signInLimiter) allow(key netip.Prefix, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.m[key]
	if w == nil {
		if len(l.m) >= signInClientsKept {
			for k, v := range l.m {
				if !now.Before(v.start.Add(SignInWindow)) || now.Before(v.start) {
					delete(l.m, k)
				}
			}
		}
		if len(l.m) < signInClientsKept {
			w = &attemptWindow{start: now}
			l.m[key] = w
		} else {
			w = &l.overflow
		}
	}
	if !now.Before(w.start.Add(SignInWindow)) || now.Before(w.start) {
		w.start, w.n = now, 0
	}
	w.n++
	return w.n <= SignInAttempts
}

// page serves GET /dashboard/: the app to a signed-in browser, the sign-in
// page to anyone else.
func (d *Dashboard) page(w http.ResponseWriter, r *http.Request) {
	if se, _, ok := d.sessions.lookup(r, d.now(), d.tokenHash()); ok {
		d.ensureScraping()
		d.render(w, r, http.StatusOK, "app.html", pageData{CSRF: se.csrf})
		return
	}
	d.render(w, r, http.StatusOK, "signin.html", pageData{})
}

// Messages of the sign-in page (fixed texts).
const (
	msgFailed    = "Sign-in failed."
	msgTooMany   = "Too many sign-in attempts. Wait a minute and try again."
	msgRefused   = "Sign-in refused: the form must be sent from this dashboard."
	msgMalformed = "Sign-in refused: send the token in the form, never in the address."
)

// signIn serves POST /dashboard/login (form field "token").
func (d *Dashboard) signIn(w http.ResponseWriter, r *http.Request) {
	now := d.now()
	addr := clientAddr(r)
	if ok, why := sameOrigin(r); !ok {
		d.log.Warn("dashboard sign-in refused", "client_ip", addrText(addr), "reason", why)
		d.render(w, r, http.StatusForbidden, "signin.html", pageData{Message: msgRefused})
		return
	}
	if !d.limiter.allow(limiterKey(addr), now) {
		d.log.Warn("dashboard sign-in refused", "client_ip", addrText(addr), "reason", "too many attempts")
		w.Header().Set("Retry-After", strconv.Itoa(int(SignInWindow/time.Second)))
		d.render(w, r, http.StatusTooManyRequests, "signin.html", pageData{Message: msgTooMany})
		return
	}
	if r.URL.RawQuery != "" {
		// Whatever is there, a URL is logged and kept in histories: refuse,
		// and say so, so that nobody gets used to it working.
		d.log.Warn("dashboard sign-in refused", "client_ip", addrText(addr), "reason", "query string on the sign-in URL")
		d.render(w, r, http.StatusBadRequest, "signin.html", pageData{Message: msgMalformed})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	tokens := []string(nil)
	if err := r.ParseForm(); err == nil {
		tokens = r.PostForm["token"]
	}
	tok := d.tokenHash()
	if len(tokens) != 1 || len(tokens[0]) == 0 || len(tokens[0]) > maxTokenBytes || tok.IsZero() || !tok.Matches([]byte(tokens[0])) {
		d.log.Warn("dashboard sign-in failed", "client_ip", addrText(addr), "reason", "wrong or missing admin token")
		d.render(w, r, http.StatusUnauthorized, "signin.html", pageData{Message: msgFailed})
		return
	}
	if _, k, ok := d.sessions.lookup(r, now, tok); ok {
		d.sessions.remove(k) // a new id at every sign-in
	}
	id, _ := d.sessions.create(now, tok)
	setCookie(w, r, id)
	d.log.Info("dashboard sign-in", "client_ip", addrText(addr))
	d.ensureScraping()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

// signOut serves POST /dashboard/logout (CSRF token in the form field
// "csrf" or the X-CSRF-Token header).
func (d *Dashboard) signOut(w http.ResponseWriter, r *http.Request) {
	se, k, ok := d.sessions.lookup(r, d.now(), d.tokenHash())
	if !ok {
		clearCookie(w, r)
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	_ = r.ParseForm() // a bad body leaves PostForm empty: the CSRF check fails
	if ok, why := sameOrigin(r); !ok {
		d.refuse(w, r, why)
		return
	}
	if !csrfOK(r, se.csrf) {
		d.refuse(w, r, "missing or wrong CSRF token")
		return
	}
	d.sessions.remove(k)
	clearCookie(w, r)
	d.log.Info("dashboard sign-out", "client_ip", addrText(clientAddr(r)))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

// refuse answers 403 to a request that failed a CSRF or origin check.
func (d *Dashboard) refuse(w http.ResponseWriter, r *http.Request, why string) {
	d.log.Warn("dashboard request refused", "client_ip", addrText(clientAddr(r)), "reason", why)
	plain(w, http.StatusForbidden, "refused: cross-site request or missing CSRF token")
}

func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown"
	}
	return a.String()
}
