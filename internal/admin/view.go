package admin

import (
	"encoding"
	"github.com/breakwater/breakwater/internal/config"
	"reflect"
	"strings"
)

// view turns a config value into plain maps and lists keyed by the YAML
// field names, so /admin/config reads like the file. Unset fields are left
// out. Values that marshal themselves as text do so — that is how secrets
// (secret.Value → [REDACTED]) and digests (a fingerprint) stay hidden.
// View is the running config as /admin/config serves it: secrets redacted.
func View(c *config.Config) any { return view(reflect.ValueOf(c)) }

func view(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	if v.CanInterface() {
		if tm, ok := v.Interface().(encoding.TextMarshaler); ok && (v.Kind() != reflect.Pointer || !v.IsNil()) {
			b, err := tm.MarshalText()
			if err != nil {
				return "[unprintable]"
			}
			return string(b)
		}
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return view(v.Elem())
	case reflect.Struct:
		out := map[string]any{}
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "" || name == "-" {
				continue
			}
			fv := v.Field(i)
			if fv.IsZero() {
				continue
			}
			out[name] = view(fv)
		}
		return out
	case reflect.Map:
		out := make(map[string]any, v.Len())
		it := v.MapRange()
		for it.Next() {
			out[it.Key().String()] = view(it.Value())
		}
		return out
	case reflect.Slice, reflect.Array:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = view(v.Index(i))
		}
		return out
	default:
		return v.Interface()
	}
}
