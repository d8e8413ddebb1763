package telemetry

import (
	"math"
	"strconv"
	"testing"
)

func TestSamplerKeep(t *testing.T) {
	half := NewSampler(0.5)
	var nilSampler *Sampler
	rows := []struct {
		name   string
		s      *Sampler
		id     string
		status int
		event  bool
		want   bool
	}{
		{"nil keeps all", nilSampler, "a", 200, false, true},
		{"rate 1 keeps all", NewSampler(1), "a", 200, false, true},
		{"rate above 1 keeps all", NewSampler(7), "a", 200, false, true},
		{"rate 0 drops successes", NewSampler(0), "a", 200, false, false},
		{"rate 0 keeps 404", NewSampler(0), "a", 404, false, true},
		{"rate 0 keeps 500", NewSampler(0), "a", 500, false, true},
		{"rate 0 keeps a security event", NewSampler(0), "a", 200, true, true},
		{"rate 0 keeps an aborted exchange", NewSampler(0), "a", 0, false, true},
		{"negative rate drops successes", NewSampler(-1), "a", 302, false, false},
		{"NaN drops successes", NewSampler(math.NaN()), "a", 200, false, false},
		{"half keeps errors", half, "x", 401, false, true},
		{"empty id is fine", half, "", 200, false, half.Keep("", 200, false)},
		{"attack: huge id", half, string(make([]byte, 1<<16)), 200, false, half.Keep(string(make([]byte, 1<<16)), 200, false)},
	}
	for _, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Keep(tt.id, tt.status, tt.event); got != tt.want {
				t.Errorf("Keep = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSamplerRateAndDeterminism(t *testing.T) {
	for _, rate := range []float64{0.01, 0.1, 0.5, 0.9} {
		s := NewSampler(rate)
		if math.Abs(s.Rate()-rate) > 1e-9 {
			t.Errorf("Rate() = %v, want %v", s.Rate(), rate)
		}
		const n = 200_000
		kept := 0
		for i := range n {
			id := "01HQ7Z3K5T2M8X9V4B6N" + strconv.Itoa(i) // sequential ids, as request ids are
			if s.Keep(id, 200, false) {
				kept++
			}
			if s.Keep(id, 200, false) != NewSampler(rate).Keep(id, 204, false) {
				t.Fatalf("decision for %q is not deterministic", id)
			}
		}
		if got := float64(kept) / n; math.Abs(got-rate) > 0.01 {
			t.Errorf("rate %v kept %.4f", rate, got)
		}
	}
	var nilSampler *Sampler
	if nilSampler.Rate() != 1 || NewSampler(2).Rate() != 1 || NewSampler(0).Rate() != 0 {
		t.Error("Rate of the edge cases")
	}
	// A request kept at a low rate is kept at every higher rate.
	for i := range 10_000 {
		id := strconv.Itoa(i)
		if NewSampler(0.1).Keep(id, 200, false) && !NewSampler(0.2).Keep(id, 200, false) {
			t.Fatalf("%q kept at 10%% but not at 20%%", id)
		}
	}
}

func BenchmarkSamplerKeep(b *testing.B) {
	s := NewSampler(0.1)
	id := "01HQ7Z3K5T2M8X9V4B6N0C1D2E"
	b.ReportAllocs()
	for b.Loop() {
		s.Keep(id, 200, false)
	}
}
