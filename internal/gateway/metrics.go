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
	case authn.Invalid:
		return telemetry.AuthInvalid
	case authn.Expired:
		return telemetry.AuthExpired
	case authn.Revoked:
		return telemetry.AuthRevoked
	case authn.Replayed:
		return telemetry.AuthReplayed
	case authn.Unavailable:
		return telemetry.AuthUnavailable
	}
	return telemetry.AuthOther
}

// rejectEvent is the security event of a refusal ("" for none). Unrouted
// requests (404, 405) are not events one by one: scanning shows in the
// metrics and, later, in anomaly detection.
func rejectEvent(why telemetry.Reject) telemetry.EventKind {
	switch why {
	case telemetry.RejectAmbiguousPath:
		return telemetry.EventAmbiguousPath
	case telemetry.RejectMalformedTarget, telemetry.RejectURITooLong:
		return telemetry.EventMalformedRequest
	case telemetry.RejectBodyTooLarge:
		return telemetry.EventBodyTooLarge
	case telemetry.RejectOverloaded:
		return telemetry.EventOverloaded
	case telemetry.RejectForbiddenScope, telemetry.RejectForbiddenPolicy:
		return telemetry.EventForbidden
	case telemetry.RejectRateLimited:
		return telemetry.EventRateLimited
	case telemetry.RejectInvalidRequest:
		return telemetry.EventValidationFailed
	}
	return ""
}
