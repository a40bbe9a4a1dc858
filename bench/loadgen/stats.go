package main

import (
	"slices"
	"time"
)

// latencyMS are the quantiles bench/PROTOCOL.md reports, in milliseconds.
type latencyMS struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// quantiles sorts samples and reads them as Python's statistics.quantiles(method="inclusive"):
// linear interpolation between the closest ranks, at (n-1)*p.
func quantiles(samples []time.Duration) latencyMS {
	if len(samples) == 0 {
		return latencyMS{}
	}
	slices.Sort(samples)
	at := func(p float64) float64 {
		pos := float64(len(samples)-1) * p
		i := int(pos)
		if i+1 >= len(samples) {
			return ms(samples[i])
		}
		frac := pos - float64(i)
		return ms(samples[i])*(1-frac) + ms(samples[i+1])*frac
	}
	return latencyMS{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(samples[len(samples)-1])}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
