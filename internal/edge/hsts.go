package edge

import (
	"strconv"
	"time"

	"github.com/breakwater/breakwater/internal/config"
)

// HSTS returns the Strict-Transport-Security header value for h, or "" when
// max_age is zero (or negative): HSTS disabled. An unset max_age means the
// default, one year.
func HSTS(h config.HSTS) string {
	maxAge := config.DefaultHSTSMaxAge.D()
	if h.MaxAge != nil {
		maxAge = h.MaxAge.D()
	}
	secs := int64(maxAge / time.Second)
	if secs <= 0 {
		return ""
	}
	v := "max-age=" + strconv.FormatInt(secs, 10)
	if h.IncludeSubdomains {
		v += "; includeSubDomains"
	}
	if h.Preload {
		v += "; preload"
	}
	return v
}
