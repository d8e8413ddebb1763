package validate

import (
	"testing"

	"github.com/pb33f/jsonschema/v6"
)

// The fast path reads jsonschema.Types' bits directly: pin their meaning.
func TestTypeBits(t *testing.T) {
	for bit, name := range map[int]string{tNull: "null", tBoolean: "boolean", tNumber: "number", tInteger: "integer",
		tString: "string", tArray: "array", tObject: "object"} {
		var ty jsonschema.Types
		ty.Add(name)
		if int(ty) != bit {
			t.Errorf("%s = %b, want %b", name, int(ty), bit)
		}
	}
}
