package hostname

import (
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	for s, want := range map[string][2]bool{ // {Labels, Valid}
		"api.example.com":         {true, true},
		"svc_a.internal":          {true, true},
		"localhost":               {true, true},
		"127.0.0.1":               {true, false},
		"0x7f.1":                  {true, false},
		"":                        {false, false},
		"a..b":                    {false, false},
		"a.b.":                    {false, false},
		"a b":                     {false, false},
		"exa\x00mple.com":         {false, false},
		strings.Repeat("a", 64):   {false, false},
		strings.Repeat("a.", 127): {false, false},
		strings.Repeat("a", 63):   {true, true},
	} {
		if got := [2]bool{Labels(s), Valid(s)}; got != want {
			t.Errorf("%q: Labels, Valid = %v, want %v", s, got, want)
		}
	}
}
