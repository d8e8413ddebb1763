package pathcanon

import "strconv"

// Error is the error Canonical returns for a path it refuses. The caller
// answers 400 and logs Reason; the client is never told the reason.
//
// Use errors.Is with the Err* values to test for a kind of error.
type Error struct {
	// Reason is a short fixed phrase, one per kind of error. It never
	// contains bytes of the input, so it is safe to log and to use as a
	// metrics label.
	Reason string
	// Offset is the byte offset in the escaped input at which the problem
	// was found: the offending byte for problems in the raw input, the start
	// of the segment for problems found after decoding.
	Offset int
}

// Error implements error.
func (e *Error) Error() string {
	return "pathcanon: " + e.Reason + " at byte " + strconv.Itoa(e.Offset)
}

// Is reports whether target is an *Error of the same kind, so that
// errors.Is(err, ErrEncodedSlash) works whatever the Offset.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t != nil && e != nil && t.Reason == e.Reason
}

// Sentinel errors, for errors.Is. Canonical never returns them directly
// (its errors carry an Offset); do not modify them.
var (
	ErrNotOrigin           = &Error{Reason: "not an origin-form path", Offset: -1}
	ErrTooLong             = &Error{Reason: "path too long", Offset: -1}
	ErrBadEscape           = &Error{Reason: "malformed percent-escape", Offset: -1}
	ErrEncodedSlash        = &Error{Reason: "encoded slash", Offset: -1}
	ErrEncodedBackslash    = &Error{Reason: "encoded backslash", Offset: -1}
	ErrBackslash           = &Error{Reason: "backslash", Offset: -1}
	ErrControlChar         = &Error{Reason: "control character", Offset: -1}
	ErrInvalidUTF8         = &Error{Reason: "invalid UTF-8", Offset: -1}
	ErrDoubleEncoding      = &Error{Reason: "double encoding", Offset: -1}
	ErrDotAboveRoot        = &Error{Reason: "dot segment above root", Offset: -1}
	ErrAmbiguousDotSegment = &Error{Reason: "ambiguous dot segment", Offset: -1}
)

func fail(kind *Error, offset int) *Error {
	return &Error{Reason: kind.Reason, Offset: offset}
}
