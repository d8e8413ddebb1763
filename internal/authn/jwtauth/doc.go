// Package jwtauth is the jwt authenticator: bearer JWTs verified against a
// key set (a remote JWKS, or the gateway's own token service).
//
// A token is accepted only when all of these hold:
//
//   - it is a compact JWS of at most MaxTokenBytes, sent once as
//     "Authorization: Bearer <token>";
//   - its alg is in the authenticator's allow-list (never none or HS*), and
//     the key is bound to it: RSA (2048 to 8192 bits) for RS* and PS*, P-256,
//     P-384 and P-521 for ES256, ES384 and ES512, Ed25519 for EdDSA, and a
//     key that names an alg is used for that alg only;
//   - the key comes from the configured KeySet, looked up by "kid" as an
//     opaque string. Tokens whose header carries jku, jwk, x5u, x5c or crit
//     are rejected (never ignored). A token without kid is verified only
//     when the set can list its keys (KeyLister) and exactly one of them is
//     usable for the alg;
//   - typ, if present, is JWT or at+jwt (any case, optional "application/");
//   - iss equals Issuer, aud (string or array) contains one of Audience,
//     exp is present and not past, nbf and iat are not in the future, each
//     with Leeway;
//   - the consumer named by "sub" (or ConsumerClaim) exists, and, when a
//     revocation check is configured, the token has a jti that is not
//     revoked.
//
// Scopes: the consumer a token yields holds the intersection of the scopes
// the token carries ("scope", a space-separated string, or else "scp", a
// string or an array of strings) and the scopes configured for the
// consumer. A token never grants more than the config; a token without a
// scope claim grants no scope. Each verified token gets its own
// *authn.Consumer (the configured one is never modified) whose Claims are
// the verified claims; both are shared by later requests that present the
// same token and must be treated as read-only.
//
// Verified tokens are cached by SHA-256 of the token, bounded by CacheSize,
// until exp (without leeway) and at most five minutes; revocation is still
// checked on every use.
package jwtauth
