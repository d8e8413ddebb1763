package audit

import (
	"fmt"
	"strings"
	"time"

	"github.com/breakwater/breakwater/internal/inventory"
)

// invPlace is where an inventory finding is reported: the route in the
// config, the operation in its spec, or the inventory URL.
type invPlace struct {
	c      *configDoc
	specs  []*specDoc
	source string
	routes map[string]cfgRoute
}

// emitAt reports an inventory finding on the operation op ("METHOD
// /template") of route in its spec when it is found there, else on the
// route in the config, else on the inventory itself.
func (a *auditor) emitAt(p *invPlace, id, route, op, format string, args ...any) {
	if r, ok := p.routes[route]; ok {
		if op != "" && r.spec != "" {
			method, path, _ := strings.Cut(op, " ")
			file := cleanPath(p.c.resolve(r.spec))
			for _, s := range p.specs {
				if cleanPath(s.file) != file {
					continue
				}
				for _, o := range s.ops {
					if strings.EqualFold(o.method, method) && o.path == path {
						a.spec(s, id, o.n, o.ptr, format, args...)
						return
					}
				}
			}
		}
		a.emit(id, p.c.file, p.c.root, []string{"routes", fmt.Sprint(r.i)}, r.n.where(), format, args...)
		return
	}
	a.emit(id, p.source, nil, nil, Pos{}, format, args...)
}

func day(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format("2006-01-02")
}

// whoCalls names up to five consumers and how many more there are.
func whoCalls(s inventory.Stats) string {
	if s.DistinctConsumers == 0 {
		return "anonymous clients"
	}
	ids := s.Consumers
	if len(ids) > 5 {
		ids = ids[:5]
	}
	quoted := make([]string, len(ids))
	for i, id := range ids {
		quoted[i] = fmt.Sprintf("%q", id)
	}
	text := strings.Join(quoted, ", ")
	if more := s.DistinctConsumers - int64(len(ids)); more > 0 {
		text += fmt.Sprintf(" and %d more", more)
	}
	return text
}

// inventoryRules runs the BW-INV rules over a running gateway's inventory.
// c may be nil (no config): findings are then located at source.
func (a *auditor) inventoryRules(c *configDoc, specs []*specDoc, inv *inventory.Report, source string) {
	p := &invPlace{c: c, specs: specs, source: source, routes: map[string]cfgRoute{}}
	if c != nil {
		for _, r := range c.routes() {
			if _, dup := p.routes[r.name]; !dup && r.name != "" {
				p.routes[r.name] = r
			}
		}
	}
	since := inv.Since.UTC().Format("2006-01-02")
	for _, z := range inv.Zombies {
		what := fmt.Sprintf("route %q", z.Route)
		if z.Kind == "operation" {
			what = fmt.Sprintf("operation %q of route %q", z.Operation, z.Route)
		}
		last := "last request " + day(z.LastSeen)
		if z.LastSeen == nil {
			last = "no request since counting started on " + since
			if z.Kind == "operation" {
				last = "never called since counting started on " + since
			}
		}
		a.emitAt(p, "BW-INV-001", z.Route, z.Operation, "%s has had no traffic for %d days (%s): remove it if nobody needs it", what, z.IdleDays, last)
	}
	for _, s := range inv.Shadow {
		served := s.Status.S2xx + s.Status.S3xx
		if served == 0 {
			continue // only refused or not found: probing, not an API
		}
		a.emitAt(p, "BW-INV-002", s.Route, "", "%s %s on route %q is not in the route's spec but was served %d times (of %d requests; last %s) to %s: an undocumented (shadow) endpoint",
			s.Method, s.Path, s.Route, served, s.Requests, day(s.LastSeen), whoCalls(s))
	}
	for _, s := range inv.Deprecated {
		a.emitAt(p, "BW-INV-003", s.Route, s.Operation, "deprecated operation %q of route %q is still called: %d requests, last %s, by %s",
			s.Operation, s.Route, s.Requests, day(s.LastSeen), whoCalls(s))
	}
}
