// Package authn defines how the gateway authenticates a request: an
// Authenticator looks for its kind of credential and, when it finds one,
// decides. Failures carry a reason for logs and metrics; the client only
// ever sees the uniform 401 (see package problem).
package authn

import (
	"errors"
	"net/http"
)

// Authenticator verifies one kind of credential.
type Authenticator interface {
	// Authenticate returns the consumer the request's credential belongs to.
	// It returns ErrNoCredential when the request carries no credential of
	// its kind (so the next authenticator of the route may try), and a
	// *Failure when it carries one that is not valid.
	Authenticate(r *http.Request) (*Consumer, error)
	// Challenge is this authenticator's WWW-Authenticate challenge.
	Challenge() string
}

// Stripper is implemented by authenticators whose credential must not
// reach the upstream: the gateway calls Strip after a success. The upstream
// learns who the caller is from X-Consumer-Id, never from its secret.
type Stripper interface {
	Strip(r *http.Request)
}

// ErrNoCredential means the request carries no credential of that kind.
var ErrNoCredential = errors.New("no credential")

// Failure is a rejected credential. Kind is for metrics (a fixed set),
// Reason for logs; neither ever reaches the client.
type Failure struct {
	Kind   FailureKind
	Reason string
}

// FailureKind classifies a rejected credential.
type FailureKind uint8

const (
	// Invalid: well-formed but not acceptable for another reason.
	Invalid FailureKind = iota
	// Unknown: a well-formed credential that belongs to no consumer.
	Unknown
	// Malformed: empty, too long, repeated, unparsable.
	Malformed
	// Expired: a token past its exp (or not yet valid), a signature past
	// its expires or older than max_age.
	Expired
	// Revoked: a token revoked before its expiry.
	Revoked
	// Replayed: a one-time value (signature nonce) seen before.
	Replayed
	// Unavailable: the credential could not be checked because a service it
	// depends on (JWKS, introspection endpoint, state store) did not answer.
	// The client still gets a 401, never a 5xx.
	Unavailable
)

func (f *Failure) Error() string { return "authentication failed: " + f.Reason }
