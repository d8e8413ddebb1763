// Package authz evaluates route policies: CEL expressions (github.com/google/cel-go)
// that must be true for an authenticated request to reach the upstream.
//
// A policy is compiled and type-checked once, when the config is loaded
// (Compile), and evaluated per request with a cost limit (Policy.Eval). The
// expression must have type bool. It sees these variables:
//
//	request.method          string                 HTTP method, e.g. "GET"
//	request.path            map(string, string)    path parameters of the route template ({id} → request.path.id)
//	request.canonical_path  string                 the canonical, decoded path the router matched
//	request.query           map(string, string)    first value of each query parameter
//	request.query_all       map(string, list(string)) every value of each query parameter, in order
//	request.headers         map(string, string)    lowercase header names; repeated values joined with ", ";
//	                                               authorization, cookie, x-api-key and proxy-authorization are never present
//	consumer.id             string                 the authenticated consumer
//	consumer.scopes         list(string)           its scopes, sorted
//	token                   map(string, dyn)       the verified token claims; {} for credentials without a token
//
// The CEL standard library, its macros (all, exists, exists_one, map,
// filter, has) and the strings extension (ext.Strings) are available.
//
// Reading a key that is absent — request.path.nope, request.headers['x-missing'],
// token.tenant without a tenant claim — is an evaluation error, and an error
// denies. Guard optional keys with has(request.query.page) or
// 'page' in request.query. A query string that does not parse (bad percent
// escapes, semicolons) makes request.query and request.query_all errors too,
// so the policy cannot be fooled by a parameter the upstream reads
// differently.
//
// Evaluation is lazy: only the variables an expression reads are built, the
// query string is parsed only when request.query or request.query_all is
// read, and headers are looked up one by one.
package authz

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"

	"github.com/breakwater/breakwater/internal/router"
)

const (
	// MaxExpressionSize is the largest policy accepted by Compile, in
	// Unicode code points.
	MaxExpressionSize = 4096
	// CostLimit bounds the work of one evaluation, in CEL cost units
	// (roughly one per operation, plus the size of strings and lists
	// handled). An evaluation that exceeds it fails, and so denies.
	CostLimit = 10000
	// maxRecursion bounds the nesting depth of the parsed expression.
	maxRecursion = 100
	// maxNodes bounds the number of nodes of the parsed expression.
	maxNodes = 1000
	// maxComprehensionNesting bounds nested macros (all, exists, map...).
	maxComprehensionNesting = 3
	// interruptEvery is how many comprehension iterations run between checks
	// of the context.
	interruptEvery = 100
)

// Variable names, as declared to the checker and resolved by the activation.
const (
	varMethod        = "request.method"
	varPath          = "request.path"
	varCanonicalPath = "request.canonical_path"
	varQuery         = "request.query"
	varQueryAll      = "request.query_all"
	varHeaders       = "request.headers"
	varConsumerID    = "consumer.id"
	varScopes        = "consumer.scopes"
	varToken         = "token"
)

// Input is what a policy evaluates. It is read, never modified.
type Input struct {
	Method        string
	CanonicalPath string
	// Params are the path parameters captured by the route template.
	Params []router.Param
	// RawQuery is the query string without '?'; it is parsed only when the
	// expression reads request.query or request.query_all.
	RawQuery string
	// Header is read only when the expression reads request.headers.
	Header http.Header
	// Consumer is the authenticated consumer. Policies run only on routes
	// with authentication, so it is never nil; Eval fails when it is.
	Consumer *Consumer
}

// Consumer is who a policy judges: the authenticated consumer's id, its
// scopes (sorted) and the claims of its token (nil without one). It mirrors
// authn.Consumer, so that config can compile policies without depending on
// the authenticators.
type Consumer struct {
	ID     string
	Scopes []string
	Claims map[string]any
}

// Policy is a compiled, type-checked policy. It is safe for concurrent use.
type Policy struct {
	src         string
	prg         cel.Program
	usesRequest bool
	// loops is set when the expression has comprehensions, the only
	// construct whose running time is not bounded by the expression's
	// length and the size of its inputs: only then is ctx watched during
	// the evaluation.
	loops bool
	pool  sync.Pool // *activation
}

// CompileError is one problem found in a policy. Line and Col are 1-based
// and relative to the expression text; Col counts Unicode code points.
type CompileError struct {
	Line, Col int
	Msg       string
}

// Error implements error.
func (e *CompileError) Error() string {
	return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg)
}

// newEnv declares the variables and libraries policies may use. The Env is
// built per Compile (a few hundred microseconds) so that no state is
// shared between configs.
func newEnv() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable(varMethod, cel.StringType),
		cel.Variable(varPath, cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable(varCanonicalPath, cel.StringType),
		cel.Variable(varQuery, cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable(varQueryAll, cel.MapType(cel.StringType, cel.ListType(cel.StringType))),
		cel.Variable(varHeaders, cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable(varConsumerID, cel.StringType),
		cel.Variable(varScopes, cel.ListType(cel.StringType)),
		cel.Variable(varToken, cel.MapType(cel.StringType, cel.DynType)),
		ext.Strings(),
		cel.ParserExpressionSizeLimit(MaxExpressionSize),
		cel.ParserRecursionLimit(maxRecursion),
		cel.ExpressionNodeLimit(maxNodes),
		cel.ASTValidators(cel.ValidateComprehensionNestingLimit(maxComprehensionNesting)),
	)
}

// Compile parses and type-checks expr. Every problem is reported: the error
// is an errors.Join of *CompileError values. An expression whose type is not
// bool is refused.
func Compile(expr string) (*Policy, error) {
	if n := utf8.RuneCountInString(expr); n > MaxExpressionSize {
		return nil, errors.Join(&CompileError{Line: 1, Col: 1,
			Msg: fmt.Sprintf("policy is %d characters long, more than the limit of %d", n, MaxExpressionSize)})
	}
	if !utf8.ValidString(expr) {
		return nil, errors.Join(&CompileError{Line: 1, Col: 1, Msg: "policy is not valid UTF-8"})
	}
	if strings.TrimSpace(expr) == "" {
		return nil, errors.Join(&CompileError{Line: 1, Col: 1, Msg: "policy is empty"})
	}
	env, err := newEnv()
	if err != nil {
		return nil, fmt.Errorf("build CEL environment: %w", err)
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		errs := make([]error, 0, len(iss.Errors()))
		for _, e := range iss.Errors() {
			line, col := e.Location.Line(), e.Location.Column()+1
			// Some errors (an error recovery at the end of the text, a
			// limit) have no position or a column of -1.
			if line < 1 {
				line, col = 1, 1
			}
			col = max(col, 1)
			errs = append(errs, &CompileError{Line: line, Col: col, Msg: explain(e.Message)})
		}
		return nil, errors.Join(errs...)
	}
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) {
		line, col := firstNonSpace(expr)
		return nil, errors.Join(&CompileError{Line: line, Col: col,
			Msg: fmt.Sprintf("policy must be a bool expression, but its type is %s", t)})
	}
	prg, err := env.Program(ast,
		cel.CostLimit(CostLimit),
		cel.InterruptCheckFrequency(interruptEvery),
		cel.EvalOptions(cel.OptOptimize),
	)
	if err != nil {
		// Program fails on constant regular expressions that do not
		// compile, among others: still a problem of the expression.
		line, col := firstNonSpace(expr)
		return nil, errors.Join(&CompileError{Line: line, Col: col, Msg: err.Error()})
	}
	p := &Policy{src: expr, prg: prg}
	for _, r := range ast.NativeRep().ReferenceMap() {
		if strings.HasPrefix(r.Name, "request.") {
			p.usesRequest = true
		}
	}
	celast.PreOrderVisit(ast.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() == celast.ComprehensionKind {
			p.loops = true
		}
	}))
	p.pool.New = func() any { return new(activation) }
	return p, nil
}

// explain makes the checker's messages about the policy variables say what
// exists.
func explain(msg string) string {
	msg = strings.TrimSuffix(msg, " (in container '')")
	switch msg {
	case "undeclared reference to 'request'":
		return msg + ": request has method, path, canonical_path, query, query_all and headers"
	case "undeclared reference to 'consumer'":
		return msg + ": consumer has id and scopes"
	}
	return msg
}

// firstNonSpace returns the 1-based position of the first character of s
// that is not white space.
func firstNonSpace(s string) (line, col int) {
	line, col = 1, 1
	for _, r := range s {
		switch {
		case r == '\n':
			line, col = line+1, 1
		case unicode.IsSpace(r):
			col++
		default:
			return line, col
		}
	}
	return 1, 1
}

// Eval evaluates the policy for one request. It returns the policy's
// verdict, or an error when evaluation failed: a missing key, a type error at
// run time, the cost limit, a cancelled ctx, a malformed query string the
// expression reads, or a nil consumer. An error must deny (403) and be
// logged; its text may contain parts of the request (never the hidden
// credential headers) and is not for clients.
func (p *Policy) Eval(ctx context.Context, in *Input) (bool, error) {
	if in == nil || in.Consumer == nil {
		return false, errors.New("evaluate policy: no authenticated consumer")
	}
	a := p.pool.Get().(*activation)
	a.in = in
	var err error
	var out ref.Val
	if p.loops {
		out, _, err = p.prg.ContextEval(ctx, a)
	} else if err = ctx.Err(); err == nil {
		out, _, err = p.prg.Eval(a)
	}
	a.reset()
	p.pool.Put(a)
	if err != nil {
		return false, fmt.Errorf("evaluate policy: %w", err)
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("evaluate policy: result is %s, not bool", out.Type().TypeName())
	}
	return bool(b), nil
}

// UsesRequest reports whether the expression reads any request.* variable.
// A policy that does not depends only on the consumer and its token, so it
// can be decided without a request — for example to show a consumer only the
// operations it may call in the docs portal.
func (p *Policy) UsesRequest() bool { return p.usesRequest }

// String returns the source of the policy.
func (p *Policy) String() string { return p.src }
