// Package validate checks requests against a route's OpenAPI document and
// filters responses by it (issue 4, items 2 and 3).
//
// Load parses a spec (YAML or JSON, OpenAPI 3.0.x or 3.1.x) and compiles
// every schema once; New binds it to limits; Validator.Operation finds the
// operation of a request (servers[] base paths honoured); ValidateRequest
// checks parameters, content type and body, and FilterResponse — for
// httputil.ReverseProxy.ModifyResponse — masks undeclared statuses and
// removes undeclared properties from JSON bodies.
//
// # Library
//
// The document is read by github.com/pb33f/libopenapi and schemas are
// compiled by libopenapi-validator's schema compiler (on
// github.com/pb33f/jsonschema/v6, a JSON Schema 2020-12 implementation):
// 3.1 schemas are JSON Schema 2020-12 as they are (type arrays, "null",
// const, examples, prefixItems), and 3.0 schemas are translated first
// (nullable → a "null" type, boolean exclusiveMinimum/Maximum → numeric);
// readOnly properties are not required in requests. Both versions are
// tested here. github.com/getkin/kin-openapi was rejected: its default
// validator implements 3.0 only, its 3.1 mode (EnableJSONSchema2020)
// re-marshals and recompiles the schema on every VisitJSON call, and it
// needs modules (santhosh-tekuri/jsonschema, go.yaml.in/yaml/v4) that are
// not in go.sum.
//
// The parts that see client input are written here, not taken from the
// libraries: a byte scan bounds nesting before anything is parsed; a strict
// JSON parser refuses duplicate keys, invalid UTF-8, unpaired surrogates
// and numbers beyond float64 range or with exponents past 400 (the schema
// library's big.Rat arithmetic would otherwise be a CPU sink); problems are
// worded from the schema, never from the value, so they can be sent to the
// client. The response filter is a hand-written single-pass rewriter over
// a tree compiled from the response schemas.
//
// Loading never fetches a URL: every $ref reachable from the document is
// checked first, remote ones are refused, and local file references must
// stay inside the spec's directory (os.Root).
package validate
