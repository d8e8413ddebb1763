package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/breakwater/breakwater/internal/config"
)

// healthCheck is the active probe of every target: GET path every interval,
// each probe bounded by timeout; a 2xx or 3xx answer is a success (redirects
// are not followed). A target starts up; fall consecutive failures mark it
// down and rise consecutive successes mark it up again (which also forgets
// its passive failures). A target that is down per active checks is never
// picked, not even by the fallback.
type healthCheck struct {
	path     string // absolute on the target's host: the target's base path is not prefixed
	interval time.Duration
	timeout  time.Duration
	rise     int
	fall     int
}

func newHealthCheck(hc *config.HealthCheck) (*healthCheck, error) {
	c := &healthCheck{
		path:     hc.Path,
		interval: hc.Interval.D(),
		timeout:  hc.Timeout.D(),
		rise:     hc.HealthyThreshold,
		fall:     hc.UnhealthyThreshold,
	}
	if !strings.HasPrefix(c.path, "/") {
		return nil, fmt.Errorf("health_check.path: %q must start with /", c.path)
	}
	if _, err := url.ParseRequestURI(c.path); err != nil {
		return nil, fmt.Errorf("health_check.path: %w", err)
	}
	if c.interval <= 0 || c.timeout <= 0 || c.rise <= 0 || c.fall <= 0 {
		return nil, errors.New("health_check: interval, timeout and thresholds must be more than 0")
	}
	return c, nil
}

// checkLoop probes t until ctx is done: once at once, then every interval.
func (u *Upstream) checkLoop(ctx context.Context, t *target) {
	c := u.check
	probeURL := t.scheme + "://" + t.host + c.path
	var rise, fall int
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		ok, result := u.probe(ctx, probeURL)
		if ctx.Err() != nil {
			return
		}
		if ok {
			rise, fall = rise+1, 0
			if t.activeDown.Load() && rise >= c.rise {
				t.activeDown.Store(false)
				u.bal.reset(t)
				u.log.LogAttrs(ctx, slog.LevelInfo, "proxy: upstream target up",
					slog.String("target", t.raw), slog.String("check", result))
			}
		} else {
			rise, fall = 0, fall+1
			if !t.activeDown.Load() && fall >= c.fall {
				t.activeDown.Store(true)
				u.log.LogAttrs(ctx, slog.LevelWarn, "proxy: upstream target down",
					slog.String("target", t.raw), slog.String("check", result))
			}
		}
		timer.Reset(c.interval)
	}
}

// probe sends one health check request. result says what happened, for logs.
func (u *Upstream) probe(ctx context.Context, probeURL string) (ok bool, result string) {
	ctx, cancel := context.WithTimeout(ctx, u.check.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, probeURL, nil)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("User-Agent", "breakwater-health-check")
	res, err := u.transport.RoundTrip(req)
	if err != nil {
		return false, err.Error()
	}
	_, _ = io.CopyN(io.Discard, res.Body, 4<<10)
	_ = res.Body.Close()
	return res.StatusCode >= 200 && res.StatusCode < 400, "status " + strconv.Itoa(res.StatusCode)
}
