package edge

import (
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/config"
)

func TestHSTS(t *testing.T) {
	d := func(v time.Duration) *config.Duration { c := config.Duration(v); return &c }
	tests := []struct {
		h    config.HSTS
		want string
	}{
		{config.HSTS{}, "max-age=31536000"},
		{config.HSTS{MaxAge: d(365 * 24 * time.Hour), IncludeSubdomains: true}, "max-age=31536000; includeSubDomains"},
		{config.HSTS{MaxAge: d(730 * 24 * time.Hour), IncludeSubdomains: true, Preload: true}, "max-age=63072000; includeSubDomains; preload"},
		{config.HSTS{MaxAge: d(90 * time.Second), Preload: true}, "max-age=90; preload"},
		{config.HSTS{MaxAge: d(0), IncludeSubdomains: true}, ""},
		{config.HSTS{MaxAge: d(-time.Hour)}, ""},
		{config.HSTS{MaxAge: d(500 * time.Millisecond)}, ""},
	}
	for _, tt := range tests {
		if got := HSTS(tt.h); got != tt.want {
			t.Errorf("HSTS(%+v) = %q, want %q", tt.h, got, tt.want)
		}
	}
}
