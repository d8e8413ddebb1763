package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Limits of Fetch.
const (
	// MaxReportBytes bounds the body Fetch reads.
	MaxReportBytes = 64 << 20
	// FetchTimeout bounds a Fetch when the client has no timeout.
	FetchTimeout = 30 * time.Second
)

// Path is where the admin listener serves the inventory.
const Path = "/admin/inventory"

// Endpoint returns the inventory URL of an admin listener's base URL
// ("http://127.0.0.1:9901" → "http://127.0.0.1:9901/admin/inventory").
func Endpoint(admin string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(admin))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("admin URL %q: want http://HOST:PORT or https://HOST:PORT", admin)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("admin URL %q: no user, query or fragment; pass the token with --token or BREAKWATER_ADMIN_TOKEN", u.Redacted())
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + Path
	u.RawPath = ""
	return u.String(), nil
}

// Fetch reads the inventory from a running gateway's admin listener (admin
// is its base URL). zombieAfter, when not "", is passed as ?zombie_after=.
// A nil client uses one with FetchTimeout. Redirects are not followed, so
// the token goes nowhere else. Errors never contain the token.
func Fetch(ctx context.Context, client *http.Client, admin, token, zombieAfter string) (*Report, error) {
	endpoint, err := Endpoint(admin)
	if err != nil {
		return nil, err
	}
	if zombieAfter != "" {
		endpoint += "?zombie_after=" + url.QueryEscape(zombieAfter)
	}
	if client == nil {
		client = &http.Client{Timeout: FetchTimeout}
	}
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if c.Timeout == 0 {
		c.Timeout = FetchTimeout
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("inventory request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading the inventory from %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxReportBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the inventory from %s: %w", endpoint, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return nil, fmt.Errorf("%s refused the admin token (401): check --token or BREAKWATER_ADMIN_TOKEN", endpoint)
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%s: 404; is this the admin listener (server.admin) of Breakwater with the inventory?", endpoint)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%s answered %s", endpoint, resp.Status)
	case len(body) > MaxReportBytes:
		return nil, fmt.Errorf("%s: the inventory is larger than %d MiB", endpoint, MaxReportBytes>>20)
	}
	var rep Report
	if err := json.Unmarshal(body, &rep); err != nil {
		return nil, fmt.Errorf("%s: not an inventory: %w", endpoint, err)
	}
	if rep.GeneratedAt.IsZero() {
		return nil, errors.New(endpoint + ": not an inventory (no generated_at)")
	}
	return &rep, nil
}
