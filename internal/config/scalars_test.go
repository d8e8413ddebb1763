package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{"30s", 30 * time.Second, ""},
		{"15m", 15 * time.Minute, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"250ms", 250 * time.Millisecond, ""},
		{"365d", 365 * 24 * time.Hour, ""},
		{"1d12h", 36 * time.Hour, ""},
		{"12h1d", 36 * time.Hour, ""},
		{"1.5d", 36 * time.Hour, ""},
		{"0", 0, ""},
		{"0s", 0, ""},
		{" 10s ", 10 * time.Second, ""},
		{"+5s", 5 * time.Second, ""},
		{"106751d", 106751 * 24 * time.Hour, ""},
		{"-1s", 0, "cannot be negative"},
		{"-1d", 0, "cannot be negative"},
		{"", 0, "is not a duration"},
		{"30", 0, "is not a duration"},
		{"d", 0, "is not a duration"},
		{"1 d", 0, "is not a duration"},
		{"1w", 0, "is not a duration"},
		{"1d 12h", 0, "is not a duration"},
		{"ten seconds", 0, "is not a duration"},
		{"106752d", 0, "is not a duration"},
		{"106751d24h", 0, "is not a duration"},
		{"99999999999999999999h", 0, "is not a duration"},
		{"9223372036854775807d", 0, "is not a duration"},
		{"1d\x00", 0, "is not a duration"},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseDuration(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got.D() != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got.D(), err, tt.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{"0", 0, ""},
		{"512", 512, ""},
		{"512B", 512, ""},
		{"16KiB", 16 << 10, ""},
		{"16 KiB", 16 << 10, ""},
		{"1MiB", 1 << 20, ""},
		{"2GiB", 2 << 30, ""},
		{"2KB", 2000, ""},
		{"3MB", 3e6, ""},
		{"4GB", 4e9, ""},
		{"9223372036854775807", 1<<63 - 1, ""},
		{"8589934591GiB", 8589934591 << 30, ""},
		{"9223372036854775808", 0, "too large"},
		{"8589934592GiB", 0, "too large"},
		{"99999999999999999999999KB", 0, "too large"},
		{"", 0, "is not a size"},
		{"KiB", 0, "is not a size"},
		{"-1", 0, "is not a size"},
		{"+1", 0, "is not a size"},
		{"1.5MiB", 0, "is not a size"},
		{"1kib", 0, "is not a size"},
		{"1TB", 0, "is not a size"},
		{"1e6", 0, "is not a size"},
		{"0x10", 0, "is not a size"},
		{"12XB", 0, "is not a size"},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseSize(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || int64(got) != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseRate(t *testing.T) {
	tests := []struct {
		in      string
		want    Rate
		wantErr string
	}{
		{"100/s", Rate{N: 100, Per: time.Second, Text: "100/s"}, ""},
		{"100/s burst 50", Rate{N: 100, Per: time.Second, Burst: 50, Text: "100/s burst 50"}, ""},
		{"  100/s   burst  50 ", Rate{N: 100, Per: time.Second, Burst: 50, Text: "100/s burst 50"}, ""},
		{"300/m", Rate{N: 300, Per: time.Minute, Text: "300/m"}, ""},
		{"10/h", Rate{N: 10, Per: time.Hour, Text: "10/h"}, ""},
		{"1000000/d", Rate{N: 1000000, Per: 24 * time.Hour, Text: "1000000/d"}, ""},
		{"5/30d", Rate{N: 5, Per: 30 * 24 * time.Hour, Text: "5/30d"}, ""},
		{"100/5m", Rate{N: 100, Per: 5 * time.Minute, Text: "100/5m"}, ""},
		{"1/s burst 0", Rate{N: 1, Per: time.Second, Text: "1/s burst 0"}, ""},
		{"0/s", Rate{}, "must be more than 0"},
		{"-1/s", Rate{}, "must be a whole number"},
		{"1.5/s", Rate{}, "must be a whole number"},
		{"/s", Rate{}, "is missing"},
		{"99999999999999999999/s", Rate{}, "is too large"},
		{"10/s burst -1", Rate{}, "must be a whole number"},
		{"10/s burst x", Rate{}, "must be a whole number"},
		{"10/s burst 99999999999999999999", Rate{}, "is too large"},
		{"10/s burst", Rate{}, "is not a rate"},
		{"10/s bust 5", Rate{}, "is not a rate"},
		{"10/s burst 5 extra", Rate{}, "is not a rate"},
		{"10", Rate{}, "is not a rate"},
		{"10/", Rate{}, "is not a rate"},
		{"10/sec", Rate{}, "is not a rate"},
		{"10/w", Rate{}, "is not a rate"},
		{"10/0s", Rate{}, "is not a rate"},
		{"10/-5s", Rate{}, "is not a rate"},
		{"10/999999999999d", Rate{}, "the period is too long"},
		{"", Rate{}, "is not a rate"},
	}
	for _, tt := range tests {
		got, err := ParseRate(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseRate(%q) = %+v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseRate(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestScalarStrings(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{Duration(365 * day).String(), "365d"},
		{Duration(36 * time.Hour).String(), "36h0m0s"},
		{Duration(0).String(), "0s"},
		{Size(16 << 10).String(), "16KiB"},
		{Size(1 << 20).String(), "1MiB"},
		{Size(2000).String(), "2KB"},
		{Size(1001).String(), "1001"},
		{Size(0).String(), "0"},
		{Rate{N: 5, Per: 30 * day, Burst: 2}.String(), "5/30d burst 2"},
		{Rate{N: 100, Per: time.Second}.String(), "100/s"},
		{Rate{N: 1, Per: time.Minute, Text: "1/m"}.String(), "1/m"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	// The text forms parse back to the same values.
	var d Duration
	var s Size
	var r Rate
	if err := d.UnmarshalText([]byte("1d12h")); err != nil || d.D() != 36*time.Hour {
		t.Errorf("Duration.UnmarshalText = %v, %v", d, err)
	}
	if err := s.UnmarshalText([]byte("1MiB")); err != nil || s != 1<<20 {
		t.Errorf("Size.UnmarshalText = %v, %v", s, err)
	}
	if err := r.UnmarshalText([]byte("5/30d burst 2")); err != nil || r.N != 5 || r.Burst != 2 {
		t.Errorf("Rate.UnmarshalText = %v, %v", r, err)
	}
	if err := d.UnmarshalText([]byte("-1s")); err == nil {
		t.Error("Duration.UnmarshalText accepted a negative duration")
	}
}

func TestMarshalText(t *testing.T) {
	for _, m := range []interface{ MarshalText() ([]byte, error) }{
		Duration(2 * day), Size(1 << 30), Rate{N: 3, Per: time.Hour},
	} {
		b, err := m.MarshalText()
		if err != nil || len(b) == 0 {
			t.Errorf("%T.MarshalText() = %q, %v", m, b, err)
		}
	}
}
