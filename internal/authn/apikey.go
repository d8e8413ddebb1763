package authn

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/secret"
)

// MaxAPIKeyLen bounds the credential the gateway is willing to hash.
const MaxAPIKeyLen = 256

// KeyRing maps API key digests to consumers. It is shared by every api_key
// authenticator of one config.
type KeyRing struct {
	byDigest map[[sha256.Size]byte]*Consumer
}

// NewKeyRing indexes the api_key credentials of the consumers. Consumers are
// returned by id so other authenticators can share the same values.
func NewKeyRing(consumers []config.Consumer) (*KeyRing, map[string]*Consumer, error) {
	ring := &KeyRing{byDigest: make(map[[sha256.Size]byte]*Consumer)}
	byID := make(map[string]*Consumer, len(consumers))
	for _, cc := range consumers {
		scopes := normalizeScopes(cc.Scopes)
		c := &Consumer{ID: cc.ID, Scopes: scopes, ScopeText: strings.Join(scopes, " ")}
		byID[cc.ID] = c
		for _, cred := range cc.Credentials {
			if cred.APIKey == nil {
				continue
			}
			d := cred.APIKey.Bytes()
			if other, dup := ring.byDigest[d]; dup {
				return nil, nil, fmt.Errorf("consumers %q and %q share an api_key", other.ID, c.ID)
			}
			ring.byDigest[d] = c
		}
	}
	return ring, byID, nil
}

func normalizeScopes(in []string) []string {
	out := append([]string(nil), in...)
	sort.Strings(out)
	j := 0
	for i, s := range out {
		if i == 0 || s != out[j-1] {
			out[j] = s
			j++
		}
	}
	return out[:j]
}

// lookup finds the consumer of key with the same work for known and unknown
// keys: one SHA-256 and one map probe. The probe is keyed by the digest of a
// key of at least 256 bits, so its timing tells a client nothing about any
// stored key; there is no stored secret left to compare byte by byte.
func (k *KeyRing) lookup(key string) *Consumer {
	return k.byDigest[secret.SumString(key).Bytes()]
}

// APIKey authenticates requests by an API key in a header (or, discouraged,
// a query parameter).
type APIKey struct {
	header    string
	query     string
	ring      *KeyRing
	challenge string
}

// NewAPIKey builds an api_key authenticator from its config (with its
// defaults applied: the header is X-API-Key unless only a query parameter
// is configured).
func NewAPIKey(a config.Authenticator, ring *KeyRing) *APIKey {
	k := &APIKey{query: a.Query, ring: ring}
	if a.Header != "" {
		k.header = http.CanonicalHeaderKey(a.Header)
		k.challenge = fmt.Sprintf(`APIKey realm="breakwater", header="%s"`, a.Header)
	} else {
		k.challenge = fmt.Sprintf(`APIKey realm="breakwater", query="%s"`, a.Query)
	}
	return k
}

// Challenge implements Authenticator.
func (a *APIKey) Challenge() string { return a.challenge }

// Authenticate implements Authenticator.
func (a *APIKey) Authenticate(r *http.Request) (*Consumer, error) {
	var vals []string
	if a.header != "" {
		vals = r.Header.Values(a.header)
	}
	var key string
	switch {
	case len(vals) > 1:
		return nil, &Failure{Kind: Malformed, Reason: "api key header repeated"}
	case len(vals) == 1:
		key = vals[0]
	case a.query != "":
		q := r.URL.Query()[a.query]
		if len(q) > 1 {
			return nil, &Failure{Kind: Malformed, Reason: "api key query parameter repeated"}
		}
		if len(q) == 1 {
			key = q[0]
		}
	}
	key = strings.TrimSpace(key)
	if key == "" {
		if len(vals) == 1 {
			return nil, &Failure{Kind: Malformed, Reason: "empty api key"}
		}
		return nil, ErrNoCredential
	}
	if len(key) > MaxAPIKeyLen {
		return nil, &Failure{Kind: Malformed, Reason: "api key too long"}
	}
	c := a.ring.lookup(key)
	if c == nil {
		return nil, &Failure{Kind: Unknown, Reason: "unknown api key"}
	}
	return c, nil
}

// Strip implements Stripper: the key header and query parameter are removed.
func (a *APIKey) Strip(r *http.Request) {
	r.Header.Del(a.header)
	if a.query == "" || r.URL.RawQuery == "" {
		return
	}
	q := r.URL.Query()
	if _, ok := q[a.query]; ok {
		q.Del(a.query)
		r.URL.RawQuery = q.Encode()
	}
}
