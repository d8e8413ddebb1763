package inventory

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/goccy/go-yaml"
)

// clean makes a value from the admin API safe to print on a terminal:
// control and other non-printable characters become '?'.
func clean(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}

func when(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

func consumersText(s Stats) string {
	n := strconv.FormatInt(s.DistinctConsumers, 10)
	if s.ConsumersSaturated {
		n += "+"
	}
	return n
}

// consumerNames lists up to 10 consumer ids and how many more there are.
func consumerNames(s Stats) string {
	if s.DistinctConsumers == 0 {
		return "-"
	}
	ids := s.Consumers
	more := s.DistinctConsumers - int64(len(ids))
	if len(ids) > 10 {
		more += int64(len(ids) - 10)
		ids = ids[:10]
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = clean(id)
	}
	text := strings.Join(out, ", ")
	if more > 0 {
		text += fmt.Sprintf(" and %d more", more)
	}
	return text
}

// WriteText writes the report as tables for people.
func WriteText(w io.Writer, rep *Report) error {
	bw := bufio.NewWriter(w)
	days := int(rep.GeneratedAt.Sub(rep.Since) / (24 * time.Hour))
	fmt.Fprintf(bw, "Breakwater API inventory (%s view), generated %s; counting since %s (%d days); zombie after %s\n",
		clean(rep.Source), when(&rep.GeneratedAt), when(&rep.Since), days, clean(rep.ZombieAfter))
	tw := tabwriter.NewWriter(bw, 2, 8, 2, ' ', 0)
	section := func(title string, n int, header string) bool {
		fmt.Fprintf(tw, "\n%s (%d)\n", title, n)
		if n == 0 {
			return false
		}
		fmt.Fprintln(tw, header)
		return true
	}
	if section("ROUTES", len(rep.Routes), "ROUTE\tREQUESTS\t2XX\t3XX\t4XX\t5XX\tCONSUMERS\tFIRST SEEN\tLAST SEEN") {
		for _, s := range rep.Routes {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", clean(s.Route), s.Requests,
				s.Status.S2xx, s.Status.S3xx, s.Status.S4xx, s.Status.S5xx, consumersText(s), when(s.FirstSeen), when(s.LastSeen))
		}
	}
	if section("OPERATIONS", len(rep.Operations), "ROUTE\tOPERATION\tREQUESTS\t2XX\t3XX\t4XX\t5XX\tCONSUMERS\tLAST SEEN\tDEPRECATED") {
		for _, s := range rep.Operations {
			dep := ""
			if s.Deprecated {
				dep = "yes"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", clean(s.Route), clean(s.Operation), s.Requests,
				s.Status.S2xx, s.Status.S3xx, s.Status.S4xx, s.Status.S5xx, consumersText(s), when(s.LastSeen), dep)
		}
	}
	title := "SHADOW ENDPOINTS: called, but not in the route's spec"
	if rep.ShadowEvicted > 0 {
		title += fmt.Sprintf("; %d more evicted", rep.ShadowEvicted)
	}
	if section(title, len(rep.Shadow), "ROUTE\tMETHOD\tPATH\tREQUESTS\t2XX\t4XX\t5XX\tCONSUMERS\tFIRST SEEN\tLAST SEEN") {
		for _, s := range rep.Shadow {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", clean(s.Route), clean(s.Method), clean(s.Path), s.Requests,
				s.Status.S2xx, s.Status.S4xx, s.Status.S5xx, consumersText(s), when(s.FirstSeen), when(s.LastSeen))
		}
	}
	if section("ZOMBIES: no traffic for "+clean(rep.ZombieAfter), len(rep.Zombies), "KIND\tROUTE\tOPERATION\tIDLE DAYS\tLAST SEEN") {
		for _, z := range rep.Zombies {
			op := z.Operation
			if op == "" {
				op = "-"
			}
			idle := strconv.Itoa(z.IdleDays)
			if z.LastSeen == nil {
				idle = "≥ " + idle // never seen since counting started
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", clean(z.Kind), clean(z.Route), clean(op), idle, when(z.LastSeen))
		}
	}
	if section("DEPRECATED OPERATIONS STILL CALLED", len(rep.Deprecated), "ROUTE\tOPERATION\tREQUESTS\tLAST SEEN\tCALLED BY") {
		for _, s := range rep.Deprecated {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", clean(s.Route), clean(s.Operation), s.Requests, when(s.LastSeen), consumerNames(s))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return bw.Flush()
}

// openAPIMethods are the methods an OpenAPI 3.1 path item can hold.
var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// pathParams returns the {names} of a template, in order.
func pathParams(path string) []string {
	var out []string
	for rest := path; ; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return out
		}
		if name := rest[i+1 : i+j]; name != "" && !slices.Contains(out, name) {
			out = append(out, name)
		}
		rest = rest[i+j+1:]
	}
}

// Skeleton returns an OpenAPI 3.1 document (YAML) of the report's shadow
// endpoints, to document them or to decide to remove them: one operation
// per method and path template, with its {id} path parameters, a
// description of how often and when it was seen, x-breakwater-shadow:
// true and x-breakwater-route. Methods OpenAPI cannot hold are listed in
// info.description.
func Skeleton(rep *Report) ([]byte, error) {
	type op struct {
		desc   []string
		routes []string
		count  int64
	}
	paths := map[string]map[string]*op{}
	var other []string
	for _, s := range rep.Shadow {
		m := strings.ToLower(s.Method)
		if !strings.HasPrefix(s.Path, "/") || strings.ContainsAny(s.Path, "\x00\n\r") {
			continue
		}
		if !slices.Contains(openAPIMethods, m) {
			other = append(other, fmt.Sprintf("%s %s (%d requests)", clean(s.Method), clean(s.Path), s.Requests))
			continue
		}
		if paths[s.Path] == nil {
			paths[s.Path] = map[string]*op{}
		}
		o := paths[s.Path][m]
		if o == nil {
			o = &op{}
			paths[s.Path][m] = o
		}
		o.count += s.Requests
		if !slices.Contains(o.routes, s.Route) {
			o.routes = append(o.routes, s.Route)
		}
		o.desc = append(o.desc, fmt.Sprintf("Seen by Breakwater on route %q: %d requests (2xx %d, 3xx %d, 4xx %d, 5xx %d) from %d distinct consumers, first %s, last %s UTC.",
			s.Route, s.Requests, s.Status.S2xx, s.Status.S3xx, s.Status.S4xx, s.Status.S5xx, s.DistinctConsumers, when(s.FirstSeen), when(s.LastSeen)))
	}
	infoDesc := fmt.Sprintf("Endpoints called through Breakwater that the routes' OpenAPI specs do not declare (shadow endpoints), "+
		"seen from %s to %s UTC (%s view). Path segments that looked like identifiers are {id} guesses. "+
		"Document each operation in the route's spec, or remove it from the upstream.", when(&rep.Since), when(&rep.GeneratedAt), rep.Source)
	if len(other) > 0 {
		infoDesc += " Also seen, with methods OpenAPI cannot describe: " + strings.Join(other, "; ") + "."
	}
	var pathItems yaml.MapSlice
	for _, p := range slices.Sorted(maps.Keys(paths)) {
		var item yaml.MapSlice
		for _, m := range openAPIMethods {
			o := paths[p][m]
			if o == nil {
				continue
			}
			var params []yaml.MapSlice
			for _, name := range pathParams(p) {
				params = append(params, yaml.MapSlice{
					{Key: "name", Value: name}, {Key: "in", Value: "path"}, {Key: "required", Value: true},
					{Key: "description", Value: "Guessed from the requests' paths."},
					{Key: "schema", Value: yaml.MapSlice{{Key: "type", Value: "string"}}},
				})
			}
			operation := yaml.MapSlice{
				{Key: "summary", Value: "Shadow endpoint: not in the spec"},
				{Key: "description", Value: strings.Join(o.desc, "\n")},
			}
			if len(params) > 0 {
				operation = append(operation, yaml.MapItem{Key: "parameters", Value: params})
			}
			operation = append(operation,
				yaml.MapItem{Key: "responses", Value: yaml.MapSlice{{Key: "default", Value: yaml.MapSlice{{Key: "description", Value: "Not documented yet."}}}}},
				yaml.MapItem{Key: "x-breakwater-shadow", Value: true},
				yaml.MapItem{Key: "x-breakwater-route", Value: strings.Join(o.routes, ", ")},
				yaml.MapItem{Key: "x-breakwater-requests", Value: o.count},
			)
			item = append(item, yaml.MapItem{Key: m, Value: operation})
		}
		pathItems = append(pathItems, yaml.MapItem{Key: p, Value: item})
	}
	doc := yaml.MapSlice{
		{Key: "openapi", Value: "3.1.0"},
		{Key: "info", Value: yaml.MapSlice{
			{Key: "title", Value: "Shadow endpoints seen by Breakwater"},
			{Key: "version", Value: rep.GeneratedAt.UTC().Format("2006-01-02")},
			{Key: "description", Value: infoDesc},
		}},
		{Key: "paths", Value: pathItems},
	}
	if len(pathItems) == 0 {
		doc[2].Value = yaml.MapSlice{}
	}
	out, err := yaml.MarshalWithOptions(doc, yaml.UseLiteralStyleIfMultiline(true))
	if err != nil {
		return nil, fmt.Errorf("writing the OpenAPI skeleton: %w", err)
	}
	return out, nil
}
