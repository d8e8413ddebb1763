package dashboard

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/breakwater/breakwater/internal/secret"
)

// CookieName is the session cookie.
const CookieName = "bw_session"

// CSRFHeader carries the session's CSRF token on requests that change
// state (the form field is "csrf").
const CSRFHeader = "X-CSRF-Token"

// idLen is the length of a session id or CSRF token: 32 random bytes in
// unpadded base64url.
var idLen = base64.RawURLEncoding.EncodedLen(32)

// session is what the server keeps of a signed-in browser. The id itself
// is not kept: only its SHA-256 is the map key.
type session struct {
	csrf     string        // the CSRF token
	token    secret.Digest // the admin token digest it signed in with
	created  time.Time
	lastSeen time.Time
}

// sessions is the bounded server-side session store.
type sessions struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]*session
}

func (s *sessions) init() { s.m = make(map[[sha256.Size]byte]*session, MaxSessions) }

// randomToken returns 256 random bits in base64url.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// alive reports whether se is still valid at now for the token digest tok.
func (se *session) alive(now time.Time, tok secret.Digest) bool {
	return now.Before(se.created.Add(SessionLifetime)) && now.Before(se.lastSeen.Add(SessionIdle)) &&
		!now.Before(se.created) && se.token.Equal(tok)
}

// create starts a session and returns its id (for the cookie) and a copy
// of it. When MaxSessions are kept, expired ones are dropped first, then
// the least recently seen.
func (s *sessions) create(now time.Time, tok secret.Digest) (string, session) {
	id := randomToken()
	se := &session{csrf: randomToken(), token: tok, created: now, lastSeen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= MaxSessions {
		var oldest [sha256.Size]byte
		var oldestSeen time.Time
		first := true
		for k, v := range s.m {
			if !v.alive(now, tok) {
				delete(s.m, k)
				continue
			}
			if first || v.lastSeen.Before(oldestSeen) {
				oldest, oldestSeen, first = k, v.lastSeen, false
			}
		}
		if len(s.m) >= MaxSessions {
			delete(s.m, oldest)
		}
	}
	s.m[sha256.Sum256([]byte(id))] = se
	return id, *se
}

// key is the map key of a cookie value, or false when the value cannot be
// a session id.
func sessionKey(v string) ([sha256.Size]byte, bool) {
	if len(v) != idLen {
		return [sha256.Size]byte{}, false
	}
	var raw [32]byte
	if n, err := base64.RawURLEncoding.Strict().Decode(raw[:], []byte(v)); err != nil || n != len(raw) {
		return [sha256.Size]byte{}, false
	}
	return sha256.Sum256([]byte(v)), true
}

// lookup returns a copy of the live session of r's cookie and marks it
// seen at now. An expired session, or one of another admin token, is
// dropped.
func (s *sessions) lookup(r *http.Request, now time.Time, tok secret.Digest) (session, [sha256.Size]byte, bool) {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return session{}, [sha256.Size]byte{}, false
	}
	k, ok := sessionKey(c.Value)
	if !ok {
		return session{}, k, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.m[k]
	if se == nil {
		return session{}, k, false
	}
	if !se.alive(now, tok) {
		delete(s.m, k)
		return session{}, k, false
	}
	se.lastSeen = now
	return *se, k, true
}

// remove ends the session with key k.
func (s *sessions) remove(k [sha256.Size]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
}

// active reports whether any session is alive at now, dropping those that
// are not.
func (s *sessions) active(now time.Time, tok secret.Digest) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.m {
		if !v.alive(now, tok) {
			delete(s.m, k)
		}
	}
	return len(s.m) > 0
}

// count is the number of sessions kept (tests).
func (s *sessions) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// setCookie sets the session cookie: HttpOnly, SameSite=Strict, Path
// /dashboard/, Secure when the request came over TLS.
func setCookie(w http.ResponseWriter, r *http.Request, id string) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: id, Path: Prefix, MaxAge: int(SessionLifetime / time.Second),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
}

// clearCookie tells the browser to forget the session cookie.
func clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: "", Path: Prefix, MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
}

// csrfOK compares the CSRF token of r (header, else form field "csrf",
// which the caller has parsed) with want in constant time.
func csrfOK(r *http.Request, want string) bool {
	got := r.Header.Get(CSRFHeader)
	if got == "" && r.PostForm != nil {
		got = r.PostForm.Get("csrf")
	}
	return len(got) == len(want) && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// sameOrigin checks that a state-changing request comes from the
// dashboard's own origin: Sec-Fetch-Site, when sent, must be
// "same-origin"; Origin, when sent, else Referer, when sent, must name an
// http(s) origin whose host:port is the request's Host ("Origin: null" is
// accepted only with Sec-Fetch-Site: same-origin). The scheme is not
// compared, so that a TLS-terminating proxy in front of the admin listener
// works. A request with none of them (not a browser) passes: sign-out then
// still needs the CSRF token. It returns a log-only reason when it fails.
func sameOrigin(r *http.Request) (bool, string) {
	fetchSite := ""
	if v := r.Header.Values("Sec-Fetch-Site"); len(v) > 0 {
		if len(v) > 1 || v[0] != "same-origin" {
			return false, "Sec-Fetch-Site is not same-origin"
		}
		fetchSite = v[0]
	}
	check := func(name, v string) (bool, string) {
		if len(v) > 2048 {
			return false, name + " too long"
		}
		u, err := url.Parse(v)
		if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.User != nil || u.Opaque != "" {
			return false, name + " is not an http(s) origin"
		}
		if r.Host == "" || !strings.EqualFold(u.Host, r.Host) {
			return false, name + " does not match Host"
		}
		return true, ""
	}
	if o := r.Header.Values("Origin"); len(o) > 0 {
		if len(o) > 1 {
			return false, "more than one Origin"
		}
		if o[0] == "null" {
			// Browsers send "Origin: null" with a form POST from a page
			// with Referrer-Policy: no-referrer (ours). Sec-Fetch-Site,
			// which no page can set, then has to vouch for the origin.
			if fetchSite == "same-origin" {
				return true, ""
			}
			return false, "Origin null without Sec-Fetch-Site: same-origin"
		}
		return check("Origin", o[0])
	}
	if ref := r.Header.Values("Referer"); len(ref) > 0 {
		if len(ref) > 1 {
			return false, "more than one Referer"
		}
		return check("Referer", ref[0])
	}
	return true, ""
}
