package authn

import "slices"

// Consumer is an authenticated client of the API.
type Consumer struct {
	ID        string
	Scopes    []string // sorted, unique
	ScopeText string   // Scopes joined by spaces, for X-Consumer-Scopes
	// Claims are the verified claims of the token the consumer presented
	// (jwt, introspection); nil for other credentials. Read-only.
	Claims map[string]any
}

// HasScopes reports whether the consumer holds every scope in want.
func (c *Consumer) HasScopes(want []string) bool {
	for _, s := range want {
		if _, ok := slices.BinarySearch(c.Scopes, s); !ok {
			return false
		}
	}
	return true
}
