package tokens

import (
	"encoding/base64"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

const (
	// MaxFormBytes bounds the body of the POST endpoints.
	MaxFormBytes = 16 << 10
	// maxFormParams bounds the number of form parameters.
	maxFormParams = 32
	// maxClientIDLen and maxClientSecretLen bound presented credentials.
	maxClientIDLen     = 256
	maxClientSecretLen = 1024
	// maxTokenLen bounds a token presented for introspection or revocation.
	maxTokenLen = 8 << 10
)

// oauthError is an RFC 6749 §5.2 error response. desc is generic and
// never echoes input; reason is for logs only.
type oauthError struct {
	status    int
	code      string
	desc      string
	challenge bool // add WWW-Authenticate: Basic (the client used Authorization)
	reason    string
}

func invalidRequest(reason string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: "invalid_request", desc: "the request is missing a parameter, repeats one or is otherwise malformed", reason: reason}
}

func invalidClient(reason string, challenge bool) *oauthError {
	return &oauthError{status: http.StatusUnauthorized, code: "invalid_client", desc: "client authentication failed", challenge: challenge, reason: reason}
}

// checkFormRequest checks what can be checked before the body is read: no
// query string (credentials must not travel in URLs) and the content type.
func checkFormRequest(r *http.Request) *oauthError {
	if r.URL.RawQuery != "" || r.URL.ForceQuery {
		return invalidRequest("query string on a POST endpoint")
	}
	ct := r.Header.Values("Content-Type")
	if len(ct) != 1 {
		return invalidRequest("missing or repeated Content-Type")
	}
	mt, params, err := mime.ParseMediaType(ct[0])
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return invalidRequest("content type is not application/x-www-form-urlencoded")
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return invalidRequest("unsupported content type parameter")
		}
	}
	return nil
}

// parseForm parses an application/x-www-form-urlencoded body. A repeated
// parameter is an error (RFC 6749 §3.2); a parameter without a value is
// treated as omitted (same section).
func parseForm(body []byte) (url.Values, *oauthError) {
	if !utf8.Valid(body) {
		return nil, invalidRequest("form body is not UTF-8")
	}
	if n := strings.Count(string(body), "&") + 1; n > maxFormParams {
		return nil, invalidRequest("too many form parameters")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, invalidRequest("form body does not parse")
	}
	for k, v := range form {
		if len(v) > 1 {
			return nil, invalidRequest("repeated form parameter")
		}
		if !utf8.ValidString(k) || !utf8.ValidString(v[0]) {
			return nil, invalidRequest("form parameter is not UTF-8")
		}
		if v[0] == "" {
			delete(form, k)
		}
	}
	return form, nil
}

// clientCreds are the credentials a client presented.
type clientCreds struct {
	id, secret string
	basic      bool // by the Authorization header (client_secret_basic)
}

// parseClientAuth finds the client credentials in the Authorization header
// values (client_secret_basic, RFC 6749 §2.3.1: id and secret each
// form-urlencoded, then joined by ":" and base64-encoded) or in the form
// (client_secret_post). Using both is an error; so is none.
func parseClientAuth(authz []string, form url.Values) (clientCreds, *oauthError) {
	switch len(authz) {
	case 0:
		id, secret := form.Get("client_id"), form.Get("client_secret")
		if id == "" || secret == "" {
			return clientCreds{}, invalidClient("no client authentication", false)
		}
		return checkCreds(clientCreds{id: id, secret: secret})
	case 1:
	default:
		return clientCreds{}, invalidRequest("repeated Authorization header")
	}
	scheme, rest, _ := strings.Cut(authz[0], " ")
	if !strings.EqualFold(scheme, "Basic") {
		return clientCreds{}, invalidClient("unsupported authentication scheme", true)
	}
	if _, ok := form["client_secret"]; ok {
		return clientCreds{}, invalidRequest("client_secret_basic and client_secret_post both used")
	}
	rest = strings.TrimSpace(rest)
	if len(rest) > 2*(maxClientIDLen+maxClientSecretLen)*3 {
		return clientCreds{}, invalidClient("basic credentials too long", true)
	}
	raw, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return clientCreds{}, invalidClient("basic credentials are not base64", true)
	}
	rawID, rawSecret, ok := strings.Cut(string(raw), ":")
	if !ok {
		return clientCreds{}, invalidClient("basic credentials without a colon", true)
	}
	id, err1 := url.QueryUnescape(rawID)
	secret, err2 := url.QueryUnescape(rawSecret)
	if err1 != nil || err2 != nil {
		return clientCreds{}, invalidClient("basic credentials are not form-urlencoded", true)
	}
	if id == "" || secret == "" {
		return clientCreds{}, invalidClient("empty client id or secret", true)
	}
	if fid, ok := form["client_id"]; ok && fid[0] != id {
		return clientCreds{}, invalidRequest("client_id in the form differs from the Authorization header")
	}
	return checkCreds(clientCreds{id: id, secret: secret, basic: true})
}

func checkCreds(c clientCreds) (clientCreds, *oauthError) {
	switch {
	case len(c.id) > maxClientIDLen || len(c.secret) > maxClientSecretLen:
		return clientCreds{}, invalidClient("client id or secret too long", c.basic)
	case !utf8.ValidString(c.id) || strings.ContainsFunc(c.id, isControl):
		return clientCreds{}, invalidClient("client id with invalid characters", c.basic)
	}
	return c, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
