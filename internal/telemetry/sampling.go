// This file: access-log sampling (monitoring.access_log.sample).

package telemetry

import "math"

// Sampler decides which successful requests the access log keeps. The
// decision is a hash of the request id, so it is the same wherever it is
// made (every line about a request is kept or none is), and the same on
// every instance behind a load balancer that passed the id on. Errors
// (status ≥ 400, or no status at all) and requests that raised a security
// event are always kept.
//
// A nil *Sampler keeps everything. Keep allocates nothing.
type Sampler struct {
	threshold uint64 // keep when hash < threshold; all: keep every request
	all       bool
}

// NewSampler returns a sampler keeping the fraction rate (0 to 1) of
// successful requests: 1 (or more) keeps all, 0 (or less, or NaN) keeps
// only errors and requests with a security event.
func NewSampler(rate float64) *Sampler {
	switch {
	case rate >= 1:
		return &Sampler{all: true}
	case !(rate > 0): // also NaN
		return &Sampler{}
	}
	// 2^64 × rate, computed in two halves so that no float rounds up to 2^64.
	return &Sampler{threshold: uint64(rate*(1<<63)) << 1}
}

// Keep reports whether the access log keeps the request with this id,
// status (0: none was sent) and whether it raised a security event.
func (s *Sampler) Keep(requestID string, status int, securityEvent bool) bool {
	if s == nil || s.all || securityEvent || status >= 400 || status < 100 {
		return true
	}
	return hashID(requestID) < s.threshold
}

// Rate is the fraction of successful requests kept.
func (s *Sampler) Rate() float64 {
	if s == nil || s.all {
		return 1
	}
	return float64(s.threshold) / math.Exp2(64)
}

// hashID is FNV-1a over id, finished with a 64-bit mixer so that ids that
// differ in their last byte (sequential ids) spread over the whole range.
func hashID(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	// splitmix64 finaliser
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}
