package authn

import "slices"

// Consumer is an authenticated client of the API.
type Consumer struct {
	ID        string
	Scopes    []string // sorted, unique
	ScopeText string   // Scopes joined by spaces, for X-Consumer-Scopes
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
