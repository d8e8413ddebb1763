// Package introspect is the "introspection" authenticator: opaque bearer
// tokens checked with an OAuth 2.0 token introspection endpoint (RFC 7662).
//
// Answers are cached by the SHA-256 of the token: an active token until
// min(now+Cache, exp), an inactive (or otherwise rejected) one for
// NegativeCache. Failures to reach the endpoint are never cached and become
// authn.Unavailable (the client still gets a 401). Concurrent requests with
// the same uncached token share one call to the endpoint.
//
// Decisions: a response needs "active": true; "exp" is optional (without
// it the answer is trusted for Cache only) and, when present and past, gives
// authn.Expired. "nbf" and "iat" are the endpoint's business (it said
// active). A "token_type" of refresh_token is refused (authn.Invalid). A
// response without "scope" grants no scope. The consumer is found
// by "client_id" (or "sub"); a response without it is authn.Unknown.
package introspect

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/breakwater/breakwater/internal/authn/authcache"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/breakwater/breakwater/internal/authn"
	"github.com/breakwater/breakwater/internal/secret"
)

// Defaults for the zero values of Options, and fixed limits.
const (
	DefaultTimeout          = 3 * time.Second
	DefaultCache            = 60 * time.Second
	DefaultNegativeCache    = 5 * time.Second
	DefaultCacheSize        = 10000
	DefaultMaxResponseBytes = 64 << 10
	// MaxTokenLen bounds the bearer token: longer ones are authn.Malformed.
	MaxTokenLen = 4096
	// MaxInFlight bounds concurrent calls to the endpoint per authenticator;
	// a request that would exceed it fails with authn.Unavailable at once
	// instead of queueing.
	MaxInFlight = 256
)

// Options configure an introspection authenticator.
type Options struct {
	Name string // authenticator name, for logs; required
	// URL of the introspection endpoint: https, or http on a loopback
	// address (127.0.0.0/8, ::1, localhost). Required.
	URL string
	// ClientID and ClientSecret authenticate the gateway to the endpoint
	// (client_secret_basic, each form-urlencoded first as RFC 6749 §2.3.1
	// requires). Both required.
	ClientID     string
	ClientSecret secret.Value
	// Client makes the calls; nil: a client with TLS 1.2+ and its own
	// transport. Redirects are never followed (a copy of Client is used).
	Client *http.Client
	// Timeout bounds one call, body included; 0: DefaultTimeout.
	Timeout time.Duration
	// Cache is how long an active answer is reused; an entry never outlives
	// the token's exp. 0: DefaultCache.
	Cache time.Duration
	// NegativeCache is how long an answer that rejects the token (inactive,
	// expired, wrong audience, unknown consumer) is reused; 0:
	// DefaultNegativeCache.
	NegativeCache time.Duration
	// CacheSize bounds the number of cached answers; 0: DefaultCacheSize.
	CacheSize int
	// MaxResponseBytes bounds the response body; 0: DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// Audience, when not empty: the response's "aud" must contain one of them.
	Audience []string
	// Consumers by the value of ConsumerClaim in the response. Shared and
	// never modified: each token gets its own *authn.Consumer.
	Consumers map[string]*authn.Consumer
	// ConsumerClaim is the response member naming the consumer: "" or
	// "client_id" (the default), or "sub".
	ConsumerClaim string
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Logger receives endpoint failures; nil: discarded.
	Logger *slog.Logger
}

// Authenticator is an introspection authenticator. It is safe for
// concurrent use.
type Authenticator struct {
	name      string
	url       string
	basic     secret.Value // the whole Authorization header value
	client    *http.Client
	timeout   time.Duration
	posTTL    time.Duration
	negTTL    time.Duration
	maxBody   int64
	audience  []string
	consumers map[string]*authn.Consumer
	bySub     bool
	now       func() time.Time
	log       *slog.Logger

	cache *authcache.LRU[result]
	sem   chan struct{}

	mu    sync.Mutex
	calls map[[sha256.Size]byte]*call
}

// result is a decided answer: exactly one of consumer and fail is set.
type result struct {
	consumer *authn.Consumer
	fail     *authn.Failure
}

// call is one request to the endpoint that concurrent identical requests
// wait for.
type call struct {
	done chan struct{}
	res  result
}

// New validates o and builds the authenticator.
func New(o Options) (*Authenticator, error) {
	var errs []error
	if o.Name == "" {
		errs = append(errs, errors.New("name is required"))
	}
	if err := checkURL(o.URL); err != nil {
		errs = append(errs, err)
	}
	if o.ClientID == "" {
		errs = append(errs, errors.New("client_id is required"))
	}
	if o.ClientSecret.IsZero() {
		errs = append(errs, errors.New("client_secret is required"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"timeout", o.Timeout}, {"cache", o.Cache}, {"negative cache", o.NegativeCache}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v is negative", d.name, d.v))
		}
	}
	if o.CacheSize < 0 {
		errs = append(errs, fmt.Errorf("cache size %d is negative", o.CacheSize))
	}
	if o.MaxResponseBytes < 0 {
		errs = append(errs, fmt.Errorf("max response bytes %d is negative", o.MaxResponseBytes))
	}
	for i, aud := range o.Audience {
		if aud == "" {
			errs = append(errs, fmt.Errorf("audience[%d] is empty", i))
		}
	}
	if o.ConsumerClaim != "" && o.ConsumerClaim != "client_id" && o.ConsumerClaim != "sub" {
		errs = append(errs, fmt.Errorf("consumer claim %q: want client_id or sub", o.ConsumerClaim))
	}
	for k, c := range o.Consumers {
		if c == nil {
			errs = append(errs, fmt.Errorf("consumer %q is nil", k))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("introspection authenticator %q: %w", o.Name, errors.Join(errs...))
	}

	a := &Authenticator{
		name:      o.Name,
		url:       o.URL,
		timeout:   cmp(o.Timeout, DefaultTimeout),
		posTTL:    cmp(o.Cache, DefaultCache),
		negTTL:    cmp(o.NegativeCache, DefaultNegativeCache),
		maxBody:   cmp(o.MaxResponseBytes, DefaultMaxResponseBytes),
		audience:  append([]string(nil), o.Audience...),
		consumers: o.Consumers,
		bySub:     o.ConsumerClaim == "sub",
		now:       o.Now,
		log:       o.Logger,
		cache:     authcache.New[result](cmp(o.CacheSize, DefaultCacheSize)),
		sem:       make(chan struct{}, MaxInFlight),
		calls:     make(map[[sha256.Size]byte]*call),
	}
	cred := url.QueryEscape(o.ClientID) + ":" + url.QueryEscape(o.ClientSecret.Reveal())
	a.basic = secret.New("Basic " + base64.StdEncoding.EncodeToString([]byte(cred)))
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if o.Client != nil {
		c := *o.Client
		a.client = &c
	} else {
		a.client = &http.Client{Transport: defaultTransport(a.timeout)}
	}
	a.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return a, nil
}

func cmp[T int | int64 | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

func defaultTransport(timeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    timeout,
		ResponseHeaderTimeout:  timeout,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           64,
		MaxIdleConnsPerHost:    64,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 16 << 10,
	}
}

// checkURL enforces https, except http on loopback.
func checkURL(raw string) error {
	if raw == "" {
		return errors.New("url is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("url: %w", err)
	}
	switch {
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("url %q has no host", raw)
	case u.User != nil:
		return errors.New("url must not carry credentials: use client_id and client_secret")
	case u.Fragment != "":
		return fmt.Errorf("url %q has a fragment", raw)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return fmt.Errorf("url %q: http is allowed only on loopback addresses; use https", raw)
	default:
		return fmt.Errorf("url %q: scheme must be https", raw)
	}
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Challenge implements authn.Authenticator.
func (a *Authenticator) Challenge() string { return `Bearer realm="breakwater"` }

// Strip implements authn.Stripper: the token never reaches the upstream.
func (a *Authenticator) Strip(r *http.Request) { r.Header.Del("Authorization") }

// Authenticate implements authn.Authenticator.
func (a *Authenticator) Authenticate(r *http.Request) (*authn.Consumer, error) {
	tok, err := bearer(r.Header)
	if err != nil {
		return nil, err
	}
	key := sha256.Sum256([]byte(tok))
	if res, ok := a.cache.Get(key, a.now()); ok {
		return res.out()
	}
	return a.lookup(r.Context(), key, tok).out()
}

func (r result) out() (*authn.Consumer, error) {
	if r.fail != nil {
		return nil, r.fail
	}
	return r.consumer, nil
}

// lookup asks the endpoint, once for all concurrent requests with key.
func (a *Authenticator) lookup(ctx context.Context, key [sha256.Size]byte, tok string) result {
	a.mu.Lock()
	if c, ok := a.calls[key]; ok {
		a.mu.Unlock()
		select {
		case <-c.done:
			return c.res
		case <-ctx.Done():
			return unavailable("request ended while waiting for the introspection endpoint")
		}
	}
	// The leader stores its answer in the cache before leaving calls, so a
	// request that missed the cache either finds the call or the answer.
	if res, ok := a.cache.Get(key, a.now()); ok {
		a.mu.Unlock()
		return res
	}
	c := &call{done: make(chan struct{})}
	a.calls[key] = c
	a.mu.Unlock()

	c.res = a.introspect(ctx, key, tok)

	a.mu.Lock()
	delete(a.calls, key)
	a.mu.Unlock()
	close(c.done)
	return c.res
}

// introspect makes the call and decides; it caches what it decides.
func (a *Authenticator) introspect(ctx context.Context, key [sha256.Size]byte, tok string) result {
	select {
	case a.sem <- struct{}{}:
		defer func() { <-a.sem }()
	default:
		return a.fail(key, "too many introspection calls in flight", nil)
	}
	// The call serves every waiter: it must not end with the leader's request.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.timeout)
	defer cancel()
	body, err := a.post(ctx, tok)
	if err != nil {
		return a.fail(key, "introspection endpoint unavailable", err)
	}
	resp, err := parseResponse(body)
	if err != nil {
		return a.fail(key, "invalid introspection response", err)
	}
	now := a.now()
	res := a.decide(resp, now)
	exp := now.Add(a.posTTL)
	if res.fail != nil {
		exp = now.Add(a.negTTL)
	} else if !resp.exp.IsZero() && resp.exp.Before(exp) {
		exp = resp.exp
	}
	a.cache.Put(key, res, exp)
	return res
}

// fail logs and returns an Unavailable result (never cached).
func (a *Authenticator) fail(key [sha256.Size]byte, msg string, err error) result {
	reason := msg
	if err != nil {
		reason = msg + ": " + err.Error()
	}
	a.log.Warn("introspection failed", "authenticator", a.name, "token_sha256", hex.EncodeToString(key[:4]), "reason", reason)
	return unavailable(reason)
}

func unavailable(reason string) result {
	return result{fail: &authn.Failure{Kind: authn.Unavailable, Reason: reason}}
}

func (a *Authenticator) post(ctx context.Context, tok string) ([]byte, error) {
	form := "token=" + url.QueryEscape(tok) + "&token_type_hint=access_token"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url, strings.NewReader(form))
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", a.basic.Reveal())
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, err // *url.Error: method, URL (no token, no secret) and cause
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // lets the connection be reused
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, a.maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading response: %w", err)
	}
	if int64(len(body)) > a.maxBody {
		return nil, fmt.Errorf("response larger than %d bytes", a.maxBody)
	}
	return body, nil
}

// decide turns a well-formed response into a consumer or a failure.
func (a *Authenticator) decide(r *response, now time.Time) result {
	switch {
	case !r.active:
		return result{fail: &authn.Failure{Kind: authn.Invalid, Reason: "token not active"}}
	case strings.EqualFold(r.typ, "refresh_token"):
		return result{fail: &authn.Failure{Kind: authn.Invalid, Reason: "refresh token presented as a bearer token"}}
	case !r.exp.IsZero() && !now.Before(r.exp):
		return result{fail: &authn.Failure{Kind: authn.Expired, Reason: "token expired (exp " + r.exp.UTC().Format(time.RFC3339) + ")"}}
	case len(a.audience) > 0 && !anyIn(r.aud, a.audience):
		return result{fail: &authn.Failure{Kind: authn.Invalid, Reason: "token audience not accepted"}}
	}
	claim, id := "client_id", r.clientID
	if a.bySub {
		claim, id = "sub", r.sub
	}
	if id == "" {
		return result{fail: &authn.Failure{Kind: authn.Unknown, Reason: "introspection response has no " + claim}}
	}
	base := a.consumers[id]
	if base == nil {
		return result{fail: &authn.Failure{Kind: authn.Unknown, Reason: fmt.Sprintf("no consumer for %s %q", claim, truncate(id, 64))}}
	}
	scopes := intersectScopes(r.scope, base.Scopes)
	return result{consumer: &authn.Consumer{
		ID:        base.ID,
		Scopes:    scopes,
		ScopeText: strings.Join(scopes, " "),
		Claims:    r.claims,
	}}
}

func anyIn(have, want []string) bool {
	for _, h := range have {
		if contains(want, h) {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
