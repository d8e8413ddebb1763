package config

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"
)

// authenticatorTypes lists the fields that belong to each authenticator
// type; any other field set on an authenticator is an error.
func authenticatorTypes() map[string][]string {
	return map[string][]string{
		"api_key":        {"header", "query"},
		"jwt":            {"issuer", "audience", "jwks_url", "algorithms", "leeway", "consumer_claim"},
		"introspection":  {"url", "client_id", "client_secret", "cache", "consumer_claim"},
		"mtls":           {"crl_file"},
		"http_signature": {"max_age", "required_components"},
	}
}

// jwtAlgorithms are the asymmetric JWS algorithms an authenticator may allow.
func jwtAlgorithms() []string {
	return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
}

func (v *validator) authenticators() {
	types := authenticatorTypes()
	typeNames := slices.Sorted(maps.Keys(types))
	for _, name := range slices.Sorted(maps.Keys(v.c.Authenticators)) {
		a := v.c.Authenticators[name]
		p := "authenticators." + name
		switch {
		case name == "none":
			v.errf(p, `"none" is reserved for public routes (auth: none); choose another name`)
		case !isIdent(name):
			v.errf(p, `%q is not a valid name; use 1 to 64 lowercase letters, digits, "_" and "-"`, truncate(name))
		}
		own, known := types[a.Type]
		switch {
		case a.Type == "":
			v.errf(p+".type", "required; one of %s", strings.Join(typeNames, ", "))
			continue
		case !known:
			v.errf(p+".type", "unknown type %q; want one of %s", truncate(a.Type), strings.Join(typeNames, ", "))
			continue
		}
		v.foreignFields(p, a, own, types)
		switch a.Type {
		case "api_key":
			if a.Header != "" && !isToken(a.Header) {
				v.errf(p+".header", "%q is not a valid header name", truncate(a.Header))
			}
			if a.Query != "" && !isName(a.Query) {
				v.errf(p+".query", "%q is not a valid query parameter name", truncate(a.Query))
			}
			if a.Header == "" && a.Query == "" {
				v.errf(p+".header", "required; the header that carries the key, such as X-API-Key")
			}
		case "jwt":
			v.jwtAuthenticator(p, a)
		case "introspection":
			if a.URL == "" {
				v.errf(p+".url", "required; the RFC 7662 introspection endpoint")
			} else if err := checkHTTPSURL(a.URL); err != nil {
				v.errf(p+".url", "%s", err)
			}
			if a.ClientID == "" {
				v.errf(p+".client_id", "required")
			}
			if a.ClientSecret.IsZero() {
				v.errf(p+".client_secret", `required; write it as "${ENV_VAR}" or "file:PATH"`)
			}
			if a.Cache < 0 {
				v.errf(p+".cache", "must not be negative")
			}
			v.consumerClaim(p, a)
		case "mtls":
			if v.c.TLS.ClientCAFile == "" {
				v.errf(p+".type", "mtls authenticators need tls.client_ca_file: the CAs that issue client certificates")
			}
			if a.CRLFile != "" {
				v.readable(p+".crl_file", a.CRLFile)
			}
		case "http_signature":
			if v.positive(p+".max_age", int64(a.MaxAge)) && a.MaxAge > Duration(time.Hour) {
				v.errf(p+".max_age", "at most 1h: a signature older than that is a replay risk")
			}
			for i, c := range a.RequiredComponents {
				if !isComponent(c) {
					v.errf(fmt.Sprintf("%s.required_components[%d]", p, i),
						`%q is not a component; use a derived component such as "@method", "@target-uri", "@authority", "@path", "@query", or a lowercase header name such as "content-digest"`, truncate(c))
				}
			}
		}
	}
}

// foreignFields reports the fields of a that are set but belong to another
// authenticator type.
func (v *validator) foreignFields(p string, a Authenticator, own []string, types map[string][]string) {
	rv := reflect.ValueOf(a)
	for i := range rv.NumField() {
		name, _, _ := strings.Cut(rv.Type().Field(i).Tag.Get("yaml"), ",")
		if name == "type" || name == "" || name == "-" || slices.Contains(own, name) {
			continue
		}
		if !v.written(p+"."+name) && rv.Field(i).IsZero() {
			continue
		}
		owner := ""
		for t, fields := range types {
			if slices.Contains(fields, name) {
				owner = t
			}
		}
		v.errf(p+"."+name, "not a field of %s authenticators (it belongs to type %s); remove it", a.Type, owner)
	}
}

func (v *validator) jwtAuthenticator(p string, a Authenticator) {
	switch {
	case a.Issuer == "":
		v.errf(p+".issuer", `required; the "iss" of accepted tokens, or "self" for tokens of Breakwater's own token_endpoint`)
	case a.Issuer == "self":
		if a.JWKSURL != "" {
			v.errf(p+".jwks_url", "tokens of issuer self are checked with Breakwater's own keys; remove jwks_url")
		}
		if len(a.Algorithms) > 0 {
			v.errf(p+".algorithms", "tokens of issuer self are checked with the algorithm of each of Breakwater's own keys; remove algorithms")
		}
		if v.c.TokenEndpoint == nil {
			v.errf(p+".issuer", "issuer self needs token_endpoint to be configured")
		}
	default:
		if a.JWKSURL == "" {
			v.errf(p+".jwks_url", "required; the URL of the issuer's key set")
		} else if err := checkHTTPSURL(a.JWKSURL); err != nil {
			v.errf(p+".jwks_url", "%s", err)
		}
		if len(a.Audience) == 0 {
			v.errf(p+".audience", `required; the "aud" that tokens must carry`)
		}
		if len(a.Algorithms) == 0 {
			v.errf(p+".algorithms", "required; list the algorithms the issuer signs with, such as [RS256, ES256]")
		}
	}
	for i, alg := range a.Algorithms {
		if !slices.Contains(jwtAlgorithms(), alg) {
			v.errf(fmt.Sprintf("%s.algorithms[%d]", p, i), "%q is not allowed; want one of %s", truncate(alg), strings.Join(jwtAlgorithms(), ", "))
		}
	}
	for i, aud := range a.Audience {
		if aud == "" {
			v.errf(v.elemPath(p+".audience", i), "must not be empty")
		}
	}
	if a.Leeway < 0 || a.Leeway > Duration(5*time.Minute) {
		v.errf(p+".leeway", "must be from 0 to 5m")
	}
	v.consumerClaim(p, a)
}

func (v *validator) consumerClaim(p string, a Authenticator) {
	if a.ConsumerClaim != "" && !isIdent(strings.ToLower(a.ConsumerClaim)) {
		v.errf(p+".consumer_claim", "%q is not a claim name; use 1 to 64 letters, digits, \"_\" and \"-\"", truncate(a.ConsumerClaim))
	}
}

// isComponent reports whether c names an RFC 9421 component the gateway can
// cover: a derived component or a lowercase header field name.
func isComponent(c string) bool {
	switch c {
	case "@method", "@target-uri", "@authority", "@scheme", "@request-target", "@path", "@query":
		return true
	}
	return isToken(c) && strings.ToLower(c) == c
}

func (v *validator) tokenEndpoint() {
	t := v.c.TokenEndpoint
	if t == nil {
		return
	}
	if t.Issuer == "" {
		v.errf("token_endpoint.issuer", `required; the public URL of the gateway, such as "https://api.example.com"`)
	} else if err := checkHTTPSURL(t.Issuer); err != nil {
		v.errf("token_endpoint.issuer", "%s", err)
	}
	switch t.Algorithm {
	case "EdDSA", "ES256", "RS256":
	default:
		v.errf("token_endpoint.algorithm", "%q is not one of EdDSA, ES256, RS256", truncate(t.Algorithm))
	}
	if v.positive("token_endpoint.ttl", int64(t.TTL)) && t.TTL > Duration(24*time.Hour) {
		v.errf("token_endpoint.ttl", "at most 24h; access tokens are meant to be short-lived (15m is the default)")
	}
	if v.positive("token_endpoint.rotate_every", int64(t.RotateEvery)) && t.RotateEvery < Duration(time.Hour) {
		v.errf("token_endpoint.rotate_every", "at least 1h")
	}
	if t.RateLimit != nil {
		v.rate("token_endpoint.rate_limit", *t.RateLimit)
	}
}

func (v *validator) consumers() {
	ids := map[string]int{}
	keys := map[[32]byte]string{}  // api key digest → path of its first use
	clients := map[string]string{} // oauth client_id → path
	keyIDs := map[string]string{}  // http signature key_id → path
	for i, c := range v.c.Consumers {
		p := fmt.Sprintf("consumers[%d]", i)
		switch {
		case c.ID == "":
			v.errf(p+".id", "required")
		case !isName(c.ID):
			v.errf(p+".id", `%q is not a valid id; use 1 to 64 letters, digits, ".", "_" and "-"`, truncate(c.ID))
		default:
			if first, dup := ids[c.ID]; dup {
				v.errf(p+".id", "%q is already the id of consumers[%d]", c.ID, first)
			} else {
				ids[c.ID] = i
			}
		}
		v.scopes(p+".scopes", c.Scopes)
		if len(c.Credentials) == 0 {
			v.errf(p+".credentials", "required; a consumer needs at least one credential, such as api_key")
		}
		for j, cr := range c.Credentials {
			cp := fmt.Sprintf("%s.credentials[%d]", p, j)
			v.credential(cp, cr, keys, clients, keyIDs)
		}
		v.rateLimitCount(p+".rate_limits", len(c.RateLimits))
		for j, r := range c.RateLimits {
			v.rate(v.elemPath(p+".rate_limits", j), r)
		}
	}
}

// rateLimitCount bounds a list of rate limits.
func (v *validator) rateLimitCount(path string, n int) {
	if n > MaxRateLimits {
		v.errf(path, "%d limits; at most %d — a request is charged against every one", n, MaxRateLimits)
	}
}

// rate checks what the parser cannot: a burst belongs to rates, not quotas.
func (v *validator) rate(path string, r Rate) {
	if r.IsQuota() && r.Burst > 0 {
		v.errf(path, "%q: a burst applies to rates with a period under an hour; a quota counts requests per window — remove the burst", r.Text)
	}
}

// scopes checks a list of scope tokens.
func (v *validator) scopes(path string, scopes []string) {
	for i, s := range scopes {
		if !isScope(s) {
			v.errf(fmt.Sprintf("%s[%d]", path, i), "%q is not a scope; use printable characters without spaces, quotes or backslashes", truncate(s))
		}
	}
}

func (v *validator) credential(cp string, cr Credential, keys map[[32]byte]string, clients, keyIDs map[string]string) {
	var kinds []string
	if cr.APIKey != nil {
		kinds = append(kinds, "api_key")
	}
	if cr.JWT != nil {
		kinds = append(kinds, "jwt")
	}
	if cr.OAuthClient != nil {
		kinds = append(kinds, "oauth_client")
	}
	if cr.MTLS != nil {
		kinds = append(kinds, "mtls")
	}
	if cr.HTTPSignature != nil {
		kinds = append(kinds, "http_signature")
	}
	switch len(kinds) {
	case 0:
		v.errf(cp, "set one of api_key, jwt, oauth_client, mtls, http_signature")
		return
	case 1:
	default:
		v.errf(cp+"."+kinds[1], "a credential entry sets one kind, but this one also sets %s; write each as its own list entry", kinds[0])
	}
	if k := cr.APIKey; k != nil {
		if k.IsZero() {
			v.errf(cp+".api_key", `required; "sha256:<hex>" from "breakwater keys new"`)
		} else if first, dup := keys[k.Bytes()]; dup {
			v.errf(cp+".api_key", "the same key is already used at %s; every key must be unique", first)
		} else {
			keys[k.Bytes()] = cp + ".api_key"
		}
	}
	if j := cr.JWT; j != nil {
		jp := cp + ".jwt"
		if j.Authenticator == "" {
			v.errf(jp+".authenticator", "required; the jwt authenticator that issues this consumer's tokens")
		} else if a, ok := v.c.Authenticators[j.Authenticator]; !ok || a.Type != "jwt" {
			v.errf(jp+".authenticator", "%q is not a jwt authenticator", truncate(j.Authenticator))
		} else if a.Issuer == "self" {
			v.errf(jp+".authenticator", "tokens of issuer self name their client; give the consumer an oauth_client credential instead")
		}
		if j.Subject == "" {
			v.errf(jp+".subject", `required; the "sub" of this consumer's tokens`)
		}
	}
	if o := cr.OAuthClient; o != nil {
		op := cp + ".oauth_client"
		if !isName(o.ClientID) {
			v.errf(op+".client_id", `required; 1 to 64 letters, digits, ".", "_" and "-"`)
		} else if first, dup := clients[o.ClientID]; dup {
			v.errf(op+".client_id", "%q is already used at %s", o.ClientID, first)
		} else {
			clients[o.ClientID] = op + ".client_id"
		}
		if o.SecretHash.IsZero() {
			v.errf(op+".secret_hash", `required; make one with "breakwater secret hash"`)
		}
		if v.c.TokenEndpoint == nil {
			v.errf(op, "oauth_client credentials need token_endpoint to be configured")
		}
	}
	if m := cr.MTLS; m != nil {
		v.mtlsCredential(cp+".mtls", m)
	}
	if h := cr.HTTPSignature; h != nil {
		v.signatureCredential(cp+".http_signature", h, keyIDs)
	}
}

func (v *validator) mtlsCredential(mp string, m *MTLSCredential) {
	var set []string
	for _, f := range []struct{ name, val string }{{"subject_cn", m.SubjectCN}, {"san_dns", m.SANDNS}, {"san_uri", m.SANURI}, {"sha256", m.SHA256}} {
		if f.val != "" {
			set = append(set, f.name)
		}
	}
	switch {
	case len(set) == 0:
		v.errf(mp, "set one of subject_cn, san_dns, san_uri, sha256")
	case len(set) > 1:
		v.errf(mp+"."+set[1], "conflicts with %s; match a certificate by one of them", set[0])
	}
	if m.SHA256 != "" {
		if b, err := hex.DecodeString(strings.ReplaceAll(m.SHA256, ":", "")); err != nil || len(b) != 32 {
			v.errf(mp+".sha256", "want the certificate's SHA-256 fingerprint as 64 hex digits")
		}
	}
}

func (v *validator) signatureCredential(hp string, h *HTTPSignatureCredential, keyIDs map[string]string) {
	if h.KeyID == "" {
		v.errf(hp+".key_id", "required")
	} else if first, dup := keyIDs[h.KeyID]; dup {
		v.errf(hp+".key_id", "%q is already used at %s", truncate(h.KeyID), first)
	} else {
		keyIDs[h.KeyID] = hp + ".key_id"
	}
	switch h.Alg {
	case "hmac-sha256":
		if h.Secret.IsZero() {
			v.errf(hp+".secret", `required for hmac-sha256; base64 of at least 32 random bytes, as "${ENV_VAR}" or "file:PATH"`)
		} else if b, err := base64.StdEncoding.DecodeString(h.Secret.Reveal()); err != nil || len(b) < 32 {
			v.errf(hp+".secret", "want base64 of at least 32 bytes")
		}
		if h.PublicKey != "" {
			v.errf(hp+".public_key", "not used with hmac-sha256; remove it")
		}
	case "ed25519", "ecdsa-p256-sha256":
		if !strings.Contains(h.PublicKey, "-----BEGIN PUBLIC KEY-----") {
			v.errf(hp+".public_key", "required for %s; the PEM public key (-----BEGIN PUBLIC KEY-----)", h.Alg)
		}
		if !h.Secret.IsZero() {
			v.errf(hp+".secret", "not used with %s; remove it", h.Alg)
		}
	default:
		v.errf(hp+".alg", "%q is not one of hmac-sha256, ed25519, ecdsa-p256-sha256", truncate(h.Alg))
	}
}
