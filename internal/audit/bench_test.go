package audit

import (
	"fmt"
	"strings"
	"testing"
)

// bigSpec is a spec with n paths of two operations each.
func bigSpec(n int) []byte {
	var b strings.Builder
	b.WriteString(specHead + "servers: [{url: \"https://api.example.com/v1\", description: production}]\nsecurity: [{k: []}]\npaths:\n")
	for i := range n {
		fmt.Fprintf(&b, "  /things%d/{id}:\n    get:\n      operationId: get%d\n      parameters: [{name: id, in: path, required: true, schema: {type: integer}}]\n      responses:\n        '200': {description: ok, content: {application/json: {schema: {$ref: '#/components/schemas/T'}}}}\n    post:\n      requestBody: {content: {application/json: {schema: {type: object, properties: {name: {type: string}}}}}}\n      responses: {'201': {description: ok}}\n", i, i)
	}
	b.WriteString("components:\n  securitySchemes:\n    k: {type: apiKey, in: header, name: X-API-Key}\n  schemas:\n    T: {type: object, properties: {token: {type: string}, n: {type: integer}}}\n")
	return []byte(b.String())
}

func BenchmarkAuditSpec(b *testing.B) {
	for _, n := range []int{10, 500} {
		data := bigSpec(n)
		cfg := []byte(route + "    auth: [k]\n")
		b.Run(fmt.Sprintf("paths=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if len(auditBytes(cfg, data)) == 0 {
					b.Fatal("no findings")
				}
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	data := bigSpec(500)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseDocument(data); err != nil {
			b.Fatal(err)
		}
	}
}
