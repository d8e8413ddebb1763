package tokens

import (
	"fmt"

	"github.com/breakwater/breakwater/internal/authn"
	"github.com/breakwater/breakwater/internal/config"
)

// ClientsFromConfig returns the oauth_client credentials of the consumers,
// each bound to its *authn.Consumer in byID (as returned by
// authn.NewKeyRing, so every authenticator shares the same values).
func ClientsFromConfig(consumers []config.Consumer, byID map[string]*authn.Consumer) ([]Client, error) {
	var out []Client
	for _, cc := range consumers {
		for _, cred := range cc.Credentials {
			if cred.OAuthClient == nil {
				continue
			}
			c, ok := byID[cc.ID]
			if !ok {
				return nil, fmt.Errorf("consumer %q: not among the built consumers", cc.ID)
			}
			out = append(out, Client{ID: cred.OAuthClient.ClientID, SecretHash: cred.OAuthClient.SecretHash, Consumer: c})
		}
	}
	return out, nil
}
