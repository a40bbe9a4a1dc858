package main

import (
	"math"
	"testing"
	"time"
)

func TestQuantilesReadLikePythonsInclusiveMethod(t *testing.T) {
	// statistics.quantiles([5, 1, 9, 3, 7, 2, 8, 4, 6, 10, 15], n=100, method="inclusive")
	// gives 6.0, 10.0 and 14.5 at p50, p90 and p99; for [4, 1], 2.5, 3.7 and 3.97.
	cases := []struct {
		samples []int
		want    latencyMS
	}{
		{[]int{5, 1, 9, 3, 7, 2, 8, 4, 6, 10, 15}, latencyMS{P50: 6, P90: 10, P99: 14.5, Max: 15}},
		{[]int{4, 1}, latencyMS{P50: 2.5, P90: 3.7, P99: 3.97, Max: 4}},
		{[]int{3}, latencyMS{P50: 3, P90: 3, P99: 3, Max: 3}},
		{nil, latencyMS{}},
	}
	for _, c := range cases {
		samples := make([]time.Duration, len(c.samples))
		for i, ms := range c.samples {
			samples[i] = time.Duration(ms) * time.Millisecond
		}
		got := quantiles(samples)
		for _, pair := range [][2]float64{{got.P50, c.want.P50}, {got.P90, c.want.P90}, {got.P99, c.want.P99}, {got.Max, c.want.Max}} {
			if math.Abs(pair[0]-pair[1]) > 1e-9 {
				t.Errorf("quantiles(%v) = %+v, want %+v", c.samples, got, c.want)
				break
			}
		}
	}
}
