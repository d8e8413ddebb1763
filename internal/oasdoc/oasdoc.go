// Package oasdoc reads an OpenAPI document decoded into generic values
// (map[string]any from JSON or YAML), for the packages that transform one
// rather than validate against it: the documentation portal and the import.
package oasdoc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/goccy/go-yaml"
)

// BasePath is the path of the first server URL ("https://x/v1" → "/v1"),
// or "" when there is none or it holds a variable. The gateway forwards
// paths unchanged, so a route's path is this prefix and the spec's path.
func BasePath(doc map[string]any) string {
	servers, _ := doc["servers"].([]any)
	if len(servers) == 0 {
		return ""
	}
	s, _ := servers[0].(map[string]any)
	u, _ := s["url"].(string)
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
		j := strings.IndexByte(u, '/')
		if j < 0 {
			return ""
		}
		u = u[j:]
	}
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	if !strings.HasPrefix(u, "/") || strings.ContainsAny(u, "{}") {
		return ""
	}
	return strings.TrimRight(u, "/")
}

// ResolvePathItem returns the path item a "#/components/pathItems/NAME"
// reference names; false for any other reference or a missing item.
func ResolvePathItem(comps map[string]any, ref string) (map[string]any, bool) {
	name, ok := strings.CutPrefix(ref, "#/components/pathItems/")
	if !ok {
		return nil, false
	}
	items, _ := comps["pathItems"].(map[string]any)
	item, ok := items[name].(map[string]any)
	return item, ok
}

// Decode turns a YAML or JSON OpenAPI document into generic values; JSON
// numbers stay json.Number. The top level must be a mapping.
func Decode(data []byte) (map[string]any, error) {
	if t := bytes.TrimLeft(data, " \t\r\n\ufeff"); len(t) > 0 && t[0] == '{' {
		d := json.NewDecoder(bytes.NewReader(t))
		d.UseNumber()
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			return nil, fmt.Errorf("parsing JSON: %w", err)
		}
		return m, nil
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("parsing YAML: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("not an OpenAPI document: the top level is not a mapping")
	}
	return m, nil
}
