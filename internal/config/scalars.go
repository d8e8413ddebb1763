package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

const day = 24 * time.Hour

// ParseDuration parses a Go duration ("1h30m", "250ms") that may also use a
// "d" unit of 24 hours ("365d", "1d12h"). Negative durations are refused.
func ParseDuration(s string) (Duration, error) {
	t := strings.TrimPrefix(strings.TrimSpace(s), "+")
	if strings.HasPrefix(t, "-") {
		return 0, fmt.Errorf("%q: durations cannot be negative", s)
	}
	bad := fmt.Errorf("%q is not a duration; write one such as 30s, 15m, 1h30m or 365d (at most %dd)", s, math.MaxInt64/int64(day))
	if t == "" {
		return 0, bad
	}
	var days, rest time.Duration
	var other strings.Builder
	for t != "" {
		i := 0
		for i < len(t) && (isDigit(t[i]) || t[i] == '.') {
			i++
		}
		j := i
		for j < len(t) && !isDigit(t[j]) && t[j] != '.' {
			j++
		}
		if t[i:j] == "d" {
			h, err := time.ParseDuration(t[:i] + "h")
			if err != nil || h > math.MaxInt64/24 || days > math.MaxInt64-h*24 {
				return 0, bad
			}
			days += h * 24
		} else {
			other.WriteString(t[:j])
		}
		t = t[j:]
	}
	if other.Len() > 0 {
		r, err := time.ParseDuration(other.String())
		if err != nil {
			return 0, bad
		}
		rest = r
	}
	if days > math.MaxInt64-rest {
		return 0, bad
	}
	return Duration(days + rest), nil
}

// String writes whole days as "Nd" and anything else as time.Duration does.
func (d Duration) String() string {
	if d > 0 && time.Duration(d)%day == 0 {
		return strconv.FormatInt(int64(time.Duration(d)/day), 10) + "d"
	}
	return time.Duration(d).String()
}

// MarshalText writes the duration as the config reads it.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses the config form (see ParseDuration).
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// sizeUnits are the units a Size may carry, largest first for String.
func sizeUnits() []struct {
	name string
	mult int64
} {
	return []struct {
		name string
		mult int64
	}{
		{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
		{"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1},
	}
}

// ParseSize parses a byte count: a whole number with an optional unit B,
// KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024).
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && isDigit(t[i]) {
		i++
	}
	digits, unit := t[:i], strings.TrimSpace(t[i:])
	bad := fmt.Errorf("%q is not a size; write a whole number of bytes such as 512, 16KiB or 1MiB (units B, KB, MB, GB, KiB, MiB, GiB)", s)
	if digits == "" {
		return 0, bad
	}
	mult := int64(0)
	if unit == "" {
		mult = 1
	}
	for _, u := range sizeUnits() {
		if u.name == unit {
			mult = u.mult
		}
	}
	if mult == 0 {
		return 0, bad
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is too large a size", s)
	}
	return Size(n * mult), nil
}

// String writes the size with the largest unit that divides it exactly.
func (s Size) String() string {
	for _, u := range sizeUnits() {
		if s > 0 && int64(s)%u.mult == 0 && u.mult > 1 {
			return strconv.FormatInt(int64(s)/u.mult, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// MarshalText writes the size as the config reads it.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses the config form (see ParseSize).
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// rateUnits maps the unit letter of a rate to its duration.
func rateUnit(u byte) time.Duration {
	switch u {
	case 's':
		return time.Second
	case 'm':
		return time.Minute
	case 'h':
		return time.Hour
	case 'd':
		return day
	}
	return 0
}

// ParseRate parses "N/unit" with unit s, m, h or d, optionally preceded by a
// count ("5/30d", "100/5m"), and an optional " burst B": "100/s burst 50".
// N must be positive and B zero or more.
func ParseRate(s string) (Rate, error) {
	bad := fmt.Errorf(`%q is not a rate; write N/unit with unit s, m, h or d and an optional "burst B", such as "100/s burst 50", "1000000/d" or "5/30d"`, s)
	f := strings.Fields(s)
	if len(f) != 1 && (len(f) != 3 || f[1] != "burst") {
		return Rate{}, bad
	}
	num, per, ok := strings.Cut(f[0], "/")
	if !ok || per == "" {
		return Rate{}, bad
	}
	n, err := parseCount(num)
	if err != nil {
		return Rate{}, fmt.Errorf("%q: the number of requests %w", s, err)
	}
	if n == 0 {
		return Rate{}, fmt.Errorf("%q: the number of requests must be more than 0", s)
	}
	unit := rateUnit(per[len(per)-1])
	if unit == 0 {
		return Rate{}, bad
	}
	count := int64(1)
	if len(per) > 1 {
		count, err = parseCount(per[:len(per)-1])
		if err != nil || count == 0 {
			return Rate{}, bad
		}
	}
	if count > math.MaxInt64/int64(unit) {
		return Rate{}, fmt.Errorf("%q: the period is too long", s)
	}
	r := Rate{N: n, Per: time.Duration(count) * unit, Text: strings.Join(f, " ")}
	if len(f) == 3 {
		r.Burst, err = parseCount(f[2])
		if err != nil {
			return Rate{}, fmt.Errorf("%q: the burst %w", s, err)
		}
	}
	return r, nil
}

// parseCount parses a whole number of decimal digits, without sign.
func parseCount(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("is missing")
	}
	for i := range len(s) {
		if !isDigit(s[i]) {
			return 0, errors.New("must be a whole number")
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errors.New("is too large")
	}
	return n, nil
}

// String returns the rate as written, or a canonical form for rates built
// in code.
func (r Rate) String() string {
	if r.Text != "" {
		return r.Text
	}
	per := "s"
	for _, u := range []struct {
		d time.Duration
		s string
	}{{day, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if r.Per > 0 && r.Per%u.d == 0 {
			per = u.s
			if n := r.Per / u.d; n > 1 {
				per = strconv.FormatInt(int64(n), 10) + u.s
			}
			break
		}
	}
	s := strconv.FormatInt(r.N, 10) + "/" + per
	if r.Burst > 0 {
		s += " burst " + strconv.FormatInt(r.Burst, 10)
	}
	return s
}

// MarshalText writes the rate as the config reads it.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses the config form (see ParseRate).
func (r *Rate) UnmarshalText(b []byte) error {
	v, err := ParseRate(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
