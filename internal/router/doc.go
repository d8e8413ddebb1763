// Package router selects the route for a request from its host, its
// canonical path and its method.
//
// Routes are given to New as a slice of Spec; a route's id is its index in
// that slice. Match never decodes the path again: it takes the canonical
// path from pathcanon.Canonical.
//
// # Hosts
//
// Spec.Host is optional. It is either an exact host name ("api.example.com"),
// a one-label wildcard ("*.example.com" matches "a.example.com", but neither
// "example.com" nor "a.b.example.com"), or a bracketed IPv6 literal. Host
// names are compared case-insensitively. The request host has its port and
// one trailing dot removed ("API.example.com.:8443" is "api.example.com").
// A route with a host never matches a request for another host; a route
// without a host matches every host.
//
// # Path templates
//
// A template is a canonical, decoded path ("/v1/orders/{id}") made of
// segments:
//
//   - a literal segment matches itself exactly (case-sensitive); write
//     characters, not percent-escapes ("/café", not "/caf%C3%A9");
//   - {name} matches exactly one non-empty segment and captures it as the
//     parameter name (a letter or "_" followed by letters, digits or "_");
//   - a final /** matches the prefix itself and any subtree below it:
//     "/v1/**" matches "/v1", "/v1/", "/v1/a" and "/v1/a/b/", but not "/v1x".
//     "/**" matches every path.
//
// A trailing slash is significant: "/a" and "/a/" are different paths, and
// the template "/a" does not match the path "/a/" (nor "/a/" the path "/a").
// Use "/a/**" to match both.
//
// # Methods
//
// Spec.Methods lists the methods a route accepts (upper-cased by New); an
// empty list accepts every method except TRACE and CONNECT (which reflect or
// tunnel what they receive: a route must list them to get them). A route
// that accepts GET also accepts HEAD. The method is part of the match: a request goes to the most
// specific route that accepts its method. When routes match the host and
// the path but none accepts the method, Match answers 405 and Allow lists
// the union of the methods of those routes (with HEAD wherever GET is), in
// the order GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, CONNECT, TRACE,
// then any other method alphabetically. Note what follows: a broad route
// ("/**" without methods) receives the methods that narrower routes on the
// same paths do not list.
//
// # Precedence
//
// Among the routes that accept a request:
//
//  1. a route with an exact host beats one with a wildcard host, which beats
//     one without a host;
//  2. then the more specific path wins, compared segment by segment from the
//     left: a literal segment beats {param}, which beats /**, and a template
//     that ends where the path ends beats a /** that matches nothing;
//  3. for a HEAD request, among routes with the same host and the same path
//     shape, one that lists HEAD beats one that accepts it through GET;
//  4. otherwise the earlier route in the slice wins.
//
// Two routes with the same host and the same path shape (templates that
// differ only in parameter names are the same shape) whose methods overlap
// would make rule 4 silently hide one of them: New refuses them with a
// *ConflictError. Listing HEAD next to another route's GET is not a
// conflict (rule 3).
//
// A Router is immutable after New and safe for concurrent use. Match does
// not allocate when the params slice it is given has room for the route's
// parameters.
package router
