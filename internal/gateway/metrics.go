package gateway

import (
	"github.com/breakwater/breakwater/internal/authn"
	"github.com/breakwater/breakwater/internal/telemetry"
)

// authReason maps the kind of an authenticator's failure to the fixed label
// set of breakwater_auth_failures_total.
func authReason(k authn.FailureKind) telemetry.AuthReason {
	switch k {
	case authn.Unknown:
		return telemetry.AuthUnknownKey
	case authn.Malformed:
		return telemetry.AuthMalformed
	}
	return telemetry.AuthOther
}
