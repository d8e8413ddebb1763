package secret

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestValueNeverPrints(t *testing.T) {
	v := New("hunter2-super-secret")
	var sb strings.Builder
	logger := slog.New(slog.NewJSONHandler(&sb, nil))
	logger.Info("x", "secret", v, "struct", struct{ S Value }{v})
	j, _ := json.Marshal(map[string]any{"s": v})
	for _, out := range []string{fmt.Sprint(v), fmt.Sprintf("%v %+v %#v %s %q %x", v, v, v, v, v, v), v.String(), sb.String(), string(j)} {
		if strings.Contains(out, "hunter2") {
			t.Fatalf("secret leaked: %s", out)
		}
	}
	if v.Reveal() != "hunter2-super-secret" {
		t.Fatal("Reveal lost the value")
	}
}

func TestParseDigest(t *testing.T) {
	good := SumString("k").String()
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{good, true},
		{strings.ToUpper(good[:7]) + good[7:], false},
		{"sha256:" + strings.Repeat("a", 63), false},
		{"sha256:" + strings.Repeat("g", 64), false},
		{"md5:" + strings.Repeat("a", 64), false},
		{"", false},
		{strings.Repeat("a", 64), false},
	} {
		d, err := ParseDigest(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseDigest(%q) err = %v, want ok=%v", tc.in, err, tc.ok)
		}
		if tc.ok && d.String() != tc.in {
			t.Errorf("round trip %q → %q", tc.in, d.String())
		}
	}
}

func TestDigestMatches(t *testing.T) {
	d := SumString("correct horse")
	if !d.Matches([]byte("correct horse")) || d.Matches([]byte("correct horsf")) || d.Matches(nil) {
		t.Fatal("Matches is wrong")
	}
	var zero Digest
	if zero.Equal(zero) || zero.Matches(nil) {
		t.Fatal("a zero digest must match nothing")
	}
	txt, _ := d.MarshalText()
	if strings.Contains(string(txt), d.String()[15:]) || !strings.HasPrefix(string(txt), "sha256:") {
		t.Fatalf("MarshalText shows more than a fingerprint: %s", txt)
	}
}

func TestNewKey(t *testing.T) {
	seen := map[string]bool{}
	counts := map[rune]int{}
	for range 2000 {
		k, err := NewKey("bw_")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(k, "bw_") || len(k) != 3+KeyLen {
			t.Fatalf("bad key %q", k)
		}
		if seen[k] {
			t.Fatal("duplicate key")
		}
		seen[k] = true
		for _, r := range k[3:] {
			if !strings.ContainsRune(base62, r) {
				t.Fatalf("non-base62 rune %q", r)
			}
			counts[r]++
		}
	}
	// 86000 characters over 62 symbols: ~1387 each; a modulo bias would skew the first 8.
	for _, r := range base62 {
		if c := counts[r]; c < 1100 || c > 1700 {
			t.Errorf("symbol %q appears %d times: not uniform", r, c)
		}
	}
	for _, bad := range []string{"", "BW_", "bw", "1bw_", "bw-", strings.Repeat("a", 17) + "_", "b w_"} {
		if _, err := NewKey(bad); err == nil {
			t.Errorf("prefix %q accepted", bad)
		}
	}
}
