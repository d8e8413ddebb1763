// Package pathcanon turns the request path received on the wire into the one
// canonical form that every layer of the gateway uses: the router, the
// authenticators, the rate limiter, the logs and the request sent upstream.
// A path is decoded and normalised exactly once, here; nothing downstream
// decodes it again.
//
// Canonical returns two strings: the decoded path, used for matching, and the
// same path re-escaped for the wire, so the upstream sees exactly what the
// gateway matched on. Inputs that different servers could read in different
// ways are refused with an *Error, which the caller answers with 400.
//
// The rules, in the order they are applied:
//
//   - The input must be origin-form: it starts with "/" (so "*", "http://x/y"
//     and "" are refused) and is at most MaxLen bytes long.
//   - Raw control characters (below 0x20, and 0x7F), raw "\" and malformed
//     percent-escapes anywhere in the input are refused. Other raw bytes that
//     RFC 3986 wants escaped (a space, '"', UTF-8 bytes, ...) are taken as
//     themselves and escaped on the wire.
//   - The input is split into segments at raw "/". In each segment, a raw ";"
//     and everything after it (Tomcat-style path parameters,
//     "/admin;jsessionid=x/y") is removed before decoding. An encoded "%3B"
//     is data: it stays a literal ";" in the path and is escaped on the wire.
//   - Each segment is percent-decoded once. Decoding to "/" (%2F), "\" (%5C)
//     or a control character is refused.
//   - Empty segments ("//") are dropped; a trailing slash is kept.
//   - Dot segments ("." and "..", in any encoding: "%2e", ".%2E", ...) are
//     removed; ".." that would climb above the root is refused, not clamped.
//     Segments made only of dots other than "." and "..", and "." or ".."
//     followed by an encoded ";" ("..%3B"), are refused: some servers read
//     them as dot segments.
//   - The decoded path must be valid UTF-8: overlong forms ("%C0%AE"),
//     surrogates and truncated sequences are refused, as are C1 control
//     characters (U+0080 to U+009F).
//   - Double encoding is refused when a second decode would yield ".", "/",
//     "\", "%", ";", a control character, or a byte that only occurs in
//     overlong or otherwise invalid UTF-8 ("%252e", "%252F", "%2500",
//     "%2525", "%25C0%25AE"). Other decoded "%" characters ("100%25" gives
//     "100%") are kept and escaped again on the wire.
//   - The wire form escapes every byte except the RFC 3986 unreserved
//     characters, "/", ":", "@" and the sub-delims other than ";"
//     ("!$&'()*+,="); hex digits are upper case. If the wire form would be
//     longer than MaxLen the path is refused, so that the wire form is itself
//     always a valid input: Canonical(wire) returns the same path and wire.
//
// A path that is already canonical (only characters that need no escaping,
// no "//" and no dot segment) is returned as is, for both results, without
// allocating.
package pathcanon
