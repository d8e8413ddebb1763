// Package config defines Breakwater's configuration: its types, the strict
// YAML decoder that records where every value came from, defaults, and
// Validate, which reports every problem at once with FILE:LINE:COL.
package config

import (
	"time"

	"github.com/breakwater/breakwater/internal/secret"
)

// Config is one complete, decoded configuration file (SPEC §2). Load and
// Parse fill it, apply Defaults and Validate; docs/configuration.md
// describes every field. Top-level keys starting with "x-" are ignored, so
// that they can hold YAML anchors.
type Config struct {
	Version        int                      `yaml:"version"` // required; must be 1
	Server         Server                   `yaml:"server"`
	TLS            TLS                      `yaml:"tls"`
	Store          Store                    `yaml:"store"`
	Admin          Admin                    `yaml:"admin"`
	Authenticators map[string]Authenticator `yaml:"authenticators"`
	TokenEndpoint  *TokenEndpoint           `yaml:"token_endpoint"`
	Consumers      []Consumer               `yaml:"consumers"`
	Routes         []Route                  `yaml:"routes"`
	Docs           *Docs                    `yaml:"docs"`
	CORS           *CORS                    `yaml:"cors"`
	Monitoring     *Monitoring              `yaml:"monitoring"`
	Bans           *Bans                    `yaml:"bans"` // automatic bans; off unless written

	// File is the path the config was read from ("" for embedded configs).
	File string `yaml:"-"`
	// Dir is the directory relative paths in the config are resolved against.
	Dir string `yaml:"-"`
	// Positions maps a field path to where its value stands in File:
	// "server.limits.max_body", "routes[0].auth", "authenticators.keys.type",
	// "consumers[1].credentials[0].api_key"; "" is the document itself. A map
	// entry ("authenticators.keys") is placed at its key. Filled by the
	// decoder; nil for configs built in code. See Pos.
	Positions map[string]Position `yaml:"-"`
}

// Position is a place in a config file, 1-based.
type Position struct {
	Line, Col int
}

// Server holds the listeners and the edge limits.
type Server struct {
	// HTTPS is the only listener that proxies. Default ":8443".
	HTTPS string `yaml:"https"`
	// HTTP, when set, answers only with a 308 redirect to HTTPS. Default: off.
	HTTP string `yaml:"http"`
	// Admin is the admin listener (health, admin API). Default "127.0.0.1:9901";
	// "off" disables it.
	Admin string `yaml:"admin"`
	// TrustedProxies are CIDRs (or single IPs) whose X-Forwarded-For is kept.
	// Default: none, the socket peer is the client.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// DataDir holds generated certificates and embedded state. Default
	// "data"; a relative path is taken from the config file's directory, and
	// Defaults makes it absolute.
	DataDir string `yaml:"data_dir"`
	// ShutdownTimeout bounds the drain of in-flight requests. Default 30s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	Limits          Limits   `yaml:"limits"`
}

// Limits are enforced on every connection and request of the HTTPS listener.
// A field left out takes its default; a field written as 0 is an error,
// except write_timeout.
type Limits struct {
	MaxHeaderBytes      Size     `yaml:"max_header_bytes"`       // default 16KiB → 431
	MaxURIBytes         Size     `yaml:"max_uri_bytes"`          // default 8KiB → 414
	MaxBody             Size     `yaml:"max_body"`               // default 1MiB → 413
	ReadHeaderTimeout   Duration `yaml:"read_header_timeout"`    // default 5s
	ReadTimeout         Duration `yaml:"read_timeout"`           // default 30s
	WriteTimeout        Duration `yaml:"write_timeout"`          // default 0: bounded by upstream timeouts
	IdleTimeout         Duration `yaml:"idle_timeout"`           // default 60s
	MaxConnections      int      `yaml:"max_connections"`        // default 10000
	MaxConnectionsPerIP int      `yaml:"max_connections_per_ip"` // default 200
	MaxInFlight         int      `yaml:"max_in_flight"`          // default 5000 → 503
}

// TLS configures the HTTPS listener. Exactly one certificate source is
// required: CertFile with KeyFile, SelfSigned, or ACME.
type TLS struct {
	CertFile     string `yaml:"cert_file"`      // PEM; relative to the config's directory
	KeyFile      string `yaml:"key_file"`       // PEM; relative to the config's directory
	SelfSigned   bool   `yaml:"self_signed"`    // development only: a certificate generated into data_dir
	ACME         *ACME  `yaml:"acme"`           // not available yet
	MinVersion   string `yaml:"min_version"`    // "1.2" (default) or "1.3"
	ClientCAFile string `yaml:"client_ca_file"` // PEM CAs of client certificates: asked for, checked by mtls authenticators
	HSTS         HSTS   `yaml:"hsts"`
}

// ACME obtains certificates automatically (not built yet).
type ACME struct {
	Email    string   `yaml:"email"`
	Domains  []string `yaml:"domains"`
	CacheDir string   `yaml:"cache_dir"`
}

// HSTS is the Strict-Transport-Security header. MaxAge 0 disables it.
type HSTS struct {
	MaxAge            *Duration `yaml:"max_age"`            // default 365d when left out
	IncludeSubdomains bool      `yaml:"include_subdomains"` // default false: as written
	Preload           bool      `yaml:"preload"`            // needs include_subdomains and max_age ≥ 365d
}

// Store selects where shared state lives.
type Store struct {
	Redis         string `yaml:"redis"`          // not available yet; default: the embedded store
	OnUnavailable string `yaml:"on_unavailable"` // local (default) | deny | allow
}

// Admin secures the admin listener.
type Admin struct {
	// TokenHash is the digest of the admin bearer token ("sha256:<hex>",
	// from `breakwater secret hash`). Required unless server.admin is "off".
	TokenHash secret.Digest `yaml:"token_hash"`
}

// Authenticator is one named way of authenticating a request. Type selects
// which of the other fields apply; a field of another type is an error.
// Names are 1 to 64 of [a-z0-9_-]; "none" is reserved.
type Authenticator struct {
	Type string `yaml:"type"` // required: api_key | jwt | introspection | mtls | http_signature

	// api_key
	Header string `yaml:"header"` // default X-API-Key, unless query is set
	Query  string `yaml:"query"`  // discouraged: keys in URLs leak into logs

	// jwt
	Issuer     string   `yaml:"issuer"`     // "iss" of accepted tokens; "self" for the gateway's own token_endpoint
	Audience   Strings  `yaml:"audience"`   // one of these must be in "aud"; issuer self: default token_endpoint.issuer
	JWKSURL    string   `yaml:"jwks_url"`   // https (http only on loopback)
	Algorithms []string `yaml:"algorithms"` // allow-list; each bound to its key type
	Leeway     Duration `yaml:"leeway"`     // clock skew allowed on exp, nbf, iat; default 30s
	// ConsumerClaim (jwt, introspection) names the claim whose value is the
	// consumer id. Empty: for jwt, the consumer with a jwt credential for
	// this authenticator and the token's "sub" (issuer self: the consumer of
	// the oauth_client in "client_id"); for introspection, the consumer
	// whose id is the answer's "client_id".
	ConsumerClaim string `yaml:"consumer_claim"`

	// introspection
	URL          string       `yaml:"url"`
	ClientID     string       `yaml:"client_id"`
	ClientSecret secret.Value `yaml:"client_secret"`
	Cache        Duration     `yaml:"cache"` // positive cache, never past the token's exp; default 60s

	// mtls
	CRLFile string `yaml:"crl_file"` // optional: revoked client certificates (PEM or DER)

	// http_signature
	MaxAge             Duration `yaml:"max_age"`             // oldest "created" accepted; default 60s
	RequiredComponents []string `yaml:"required_components"` // default ["@method", "@target-uri"]
}

// TokenEndpoint makes Breakwater an OAuth2 authorization server for the
// client credentials grant (docs/tokens.md).
type TokenEndpoint struct {
	Issuer      string   `yaml:"issuer"`       // required: the gateway's public https URL; "iss" and "aud" of its tokens
	Algorithm   string   `yaml:"algorithm"`    // EdDSA (default) | ES256 | RS256
	TTL         Duration `yaml:"ttl"`          // access token lifetime; default 15m, at most 24h
	RotateEvery Duration `yaml:"rotate_every"` // signing key rotation; default 24h, at least 1h
	RateLimit   *Rate    `yaml:"rate_limit"`   // per client and per IP; default "10/s burst 20"
}

// Consumer is a client of the API.
type Consumer struct {
	ID          string       `yaml:"id"`          // required, unique: 1 to 64 of [A-Za-z0-9._-]
	Scopes      []string     `yaml:"scopes"`      // OAuth scope tokens
	Credentials []Credential `yaml:"credentials"` // at least one
	RateLimits  []Rate       `yaml:"rate_limits"` // this consumer on every route; at most MaxRateLimits
}

// Credential is exactly one way a consumer proves who it is: each list
// entry sets one field. API key digests, oauth client ids and signature key
// ids are unique across consumers.
type Credential struct {
	APIKey        *secret.Digest           `yaml:"api_key"`
	JWT           *JWTCredential           `yaml:"jwt"`
	OAuthClient   *OAuthClientCredential   `yaml:"oauth_client"`
	MTLS          *MTLSCredential          `yaml:"mtls"`
	HTTPSignature *HTTPSignatureCredential `yaml:"http_signature"`
}

// JWTCredential maps the tokens of a jwt authenticator with this "sub" to
// the consumer.
type JWTCredential struct {
	Authenticator string `yaml:"authenticator"`
	Subject       string `yaml:"subject"`
}

// OAuthClientCredential lets the consumer obtain access tokens from the
// token endpoint (client_credentials).
type OAuthClientCredential struct {
	ClientID   string        `yaml:"client_id"`
	SecretHash secret.Digest `yaml:"secret_hash"`
}

// MTLSCredential maps a client certificate to the consumer by one of its
// names or by its SHA-256 fingerprint.
type MTLSCredential struct {
	SubjectCN string `yaml:"subject_cn"`
	SANDNS    string `yaml:"san_dns"`
	SANURI    string `yaml:"san_uri"`
	SHA256    string `yaml:"sha256"`
}

// HTTPSignatureCredential is a key the consumer signs requests with
// (RFC 9421).
type HTTPSignatureCredential struct {
	KeyID     string       `yaml:"key_id"`
	Alg       string       `yaml:"alg"`        // hmac-sha256 | ed25519 | ecdsa-p256-sha256
	Secret    secret.Value `yaml:"secret"`     // hmac-sha256: base64 of at least 32 bytes
	PublicKey string       `yaml:"public_key"` // ed25519, ecdsa-p256-sha256: PEM
}

// Route maps requests to an upstream, with the checks they must pass.
type Route struct {
	Name               string           `yaml:"name"`    // required, unique: 1 to 64 of [A-Za-z0-9._-]
	Host               string           `yaml:"host"`    // optional; "*.example.com" matches subdomains
	Path               string           `yaml:"path"`    // required: "/v1/orders/{id}", "/v1/**"
	Methods            []string         `yaml:"methods"` // empty: every method but TRACE and CONNECT
	Upstream           Upstream         `yaml:"upstream"`
	Auth               Strings          `yaml:"auth"`                 // required; ["none"] for public routes
	Scopes             []string         `yaml:"scopes"`               // all required
	Policy             string           `yaml:"policy"`               // not available yet
	RateLimits         []RouteRateLimit `yaml:"rate_limits"`          // at most MaxRateLimits
	OpenAPI            *OpenAPI         `yaml:"openapi"`              // not available yet
	MaxBody            *Size            `yaml:"max_body"`             // default server.limits.max_body
	MaskUpstreamErrors *bool            `yaml:"mask_upstream_errors"` // default true
	// Identity sends the upstream X-Gateway-Identity, a JWT signed by the
	// gateway naming consumer, scopes, route and request id. Default true
	// on authenticated routes; it costs one signature per request.
	Identity *bool `yaml:"identity"`
}

// Public reports whether the route says `auth: none`.
func (r *Route) Public() bool { return len(r.Auth) == 1 && r.Auth[0] == "none" }

// Upstream is a set of load-balanced, health-checked targets.
type Upstream struct {
	Targets     []string     `yaml:"targets"` // required: absolute http(s) URLs, no userinfo, query or fragment
	Timeout     Duration     `yaml:"timeout"` // default 30s → 504
	Retries     *int         `yaml:"retries"` // idempotent requests only; default 1
	HealthCheck *HealthCheck `yaml:"health_check"`
	MaxFails    int          `yaml:"max_fails"`    // passive: consecutive failures that eject a target; default 3; 0 turns it off
	FailTimeout Duration     `yaml:"fail_timeout"` // passive: how long it stays ejected; default 10s
	TLS         *UpstreamTLS `yaml:"tls"`          // only with https targets
}

// HealthCheck is an active probe of every target; off unless the section
// is written (an empty "health_check: {}" takes all the defaults).
type HealthCheck struct {
	Path               string   `yaml:"path"`                // default "/"
	Interval           Duration `yaml:"interval"`            // default 10s
	Timeout            Duration `yaml:"timeout"`             // default 2s; at most interval
	HealthyThreshold   int      `yaml:"healthy_threshold"`   // default 2
	UnhealthyThreshold int      `yaml:"unhealthy_threshold"` // default 3
}

// UpstreamTLS configures https:// targets. Files are relative to the
// config's directory.
type UpstreamTLS struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"` // client certificate: mTLS to the upstream
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// RouteRateLimit limits a route per key. Key is one of consumer, ip,
// route (everyone together), header:NAME, claim:NAME, or several of them
// joined with "+" ("consumer+ip"); see ParseLimitKey. Exactly one of Limit
// (a rate or quota) and Concurrency (requests in flight at once) is set.
type RouteRateLimit struct {
	Key         string `yaml:"key"`
	Limit       Rate   `yaml:"limit"`       // "10/s burst 20", "1000/d"; zero when Concurrency is set
	Concurrency int    `yaml:"concurrency"` // at most this many requests in flight per key; 0 when Limit is set
}

// Bans turns repeated failures of one client into a temporary ban
// (docs/bans.md). A client is an IP address (IPv6: its /64) or a consumer,
// per Key. At least one of AuthFailures and ClientErrors is required.
type Bans struct {
	// AuthFailures bans a client after this many 401 answers: "10/m".
	// Nil: authentication failures alone do not ban.
	AuthFailures *Rate `yaml:"auth_failures"`
	// ClientErrors bans a client after this many 4xx answers of any kind
	// (401 included): "100/m". Nil: not counted.
	ClientErrors *Rate `yaml:"client_errors"`
	// Duration is how long a ban lasts. Default 15m; at most 30d.
	Duration Duration `yaml:"duration"`
	// Key says who is counted and banned: ip, consumer or both. Default [ip].
	Key Strings `yaml:"key"`
}

// OpenAPI validates a route's traffic against a spec; not available yet.
type OpenAPI struct {
	Spec             string `yaml:"spec"`
	ValidateRequests bool   `yaml:"validate_requests"`
	FilterResponses  bool   `yaml:"filter_responses"`
}

// Docs serves each consumer the documentation of what it may call; not
// available yet.
type Docs struct {
	Path  string   `yaml:"path"`
	Auth  Strings  `yaml:"auth"`
	Specs []string `yaml:"specs"`
}

// CORS answers cross-origin requests; not available yet.
type CORS struct {
	AllowedOrigins   []string `yaml:"allowed_origins"`
	AllowedMethods   []string `yaml:"allowed_methods"`
	AllowedHeaders   []string `yaml:"allowed_headers"`
	AllowCredentials bool     `yaml:"allow_credentials"`
	MaxAge           Duration `yaml:"max_age"`
}

// Duration is a Go duration that also accepts a "d" (24h) unit: "365d",
// "1d12h". Negative durations are refused. See ParseDuration.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Size is a byte count written with an optional unit: 512, 16KiB, 1MiB, 2MB
// (B, KB, MB, GB are powers of 1000; KiB, MiB, GiB of 1024). See ParseSize.
type Size int64

// Rate is "N/unit" with an optional " burst B": "100/s burst 50", "1000000/d", "5/30d".
// See ParseRate.
type Rate struct {
	N     int64
	Per   time.Duration
	Burst int64
	Text  string // as written
}

// QuotaPeriod is the shortest period of a quota: a rate over an hour or more
// counts requests per aligned window (and takes no burst); a shorter one is
// a token bucket. See docs/rate-limits.md.
const QuotaPeriod = time.Hour

// IsQuota reports whether r is a quota rather than a rate.
func (r Rate) IsQuota() bool { return r.Per >= QuotaPeriod }

// MaxRateLimits bounds the rate_limits of one consumer or one route.
const MaxRateLimits = 8

// MaxConcurrency bounds routes[].rate_limits[].concurrency.
const MaxConcurrency = 1_000_000

// Strings is a list that may also be written as a single scalar:
// "auth: none" and "auth: [keys, own]".
type Strings []string
