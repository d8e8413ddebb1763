package router

import (
	"fmt"
)

// Spec describes one route. Its index in the slice given to New is its id.
type Spec struct {
	Host    string   // optional: "api.example.com", "*.example.com", "[::1]"
	Path    string   // template: "/v1/orders/{id}", "/static/**"
	Methods []string // empty: every method but TRACE and CONNECT
}

// Param is one path parameter captured by a template.
type Param struct{ Name, Value string }

// Result is the outcome of Match.
type Result struct {
	// Route is the id of the matched route, or -1 when Status is not 0.
	Route int
	// Params is the params slice given to Match with the route's
	// parameters appended, in template order.
	Params []Param
	// Status is 0 when a route matched, 404 when no route matches the host
	// and path, 405 when routes match them but none accepts the method.
	Status int
	// Allow is the value of the Allow header for a 405, e.g. "GET, HEAD".
	Allow string
}

// SpecError reports an invalid Spec.
type SpecError struct {
	Route int    // index of the Spec
	Field string // "host", "path" or "methods"
	Msg   string // what is wrong and how to fix it
}

func (e *SpecError) Error() string {
	return fmt.Sprintf("route %d: %s: %s", e.Route, e.Field, e.Msg)
}

// ConflictError reports two routes that match the same requests, so that
// the later one could never be reached for them.
type ConflictError struct {
	Route  int    // the later route
	Other  int    // the earlier route it conflicts with
	Host   string // the host they share ("" for none)
	Path   string // the template of Route
	Method string // a method both accept; "*" when both accept every method
}

func (e *ConflictError) Error() string {
	host := e.Host
	if host == "" {
		host = "any host"
	}
	return fmt.Sprintf("route %d conflicts with route %d: both match %s, path %s, method %s; give them different paths or methods",
		e.Route, e.Other, host, e.Path, e.Method)
}
