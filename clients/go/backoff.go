package jobqueue

import (
	"math/rand/v2"
	"time"
)

// The reconnect policy every jobqueue client shares: exponential backoff with full jitter,
// reset once a connection stayed healthy.
const (
	reconnectBase       = 100 * time.Millisecond
	reconnectCap        = 10 * time.Second
	reconnectResetAfter = 30 * time.Second
)

// reconnectBackoff: the n-th consecutive failure waits a uniform random time in
// [0, min(cap, base*2^n)] (AWS's "full jitter"), so a fleet of workers that lost the same
// server does not come back in lockstep.
type reconnectBackoff struct {
	base, cap, resetAfter time.Duration
	failures              int
	random                func() float64 // in [0, 1)
}

func newReconnectBackoff() *reconnectBackoff {
	return &reconnectBackoff{base: reconnectBase, cap: reconnectCap, resetAfter: reconnectResetAfter, random: rand.Float64}
}

// ceiling is the largest wait the next failure may get.
func (b *reconnectBackoff) ceiling() time.Duration {
	ceiling := b.cap
	// The exponent is bounded so that a long outage cannot overflow.
	if n := min(b.failures, 32); b.base<<n < b.cap && b.base<<n > 0 {
		ceiling = b.base << n
	}
	return ceiling
}

// next returns the wait before the next attempt and counts one more failure.
func (b *reconnectBackoff) next() time.Duration {
	ceiling := b.ceiling()
	b.failures++
	return time.Duration(b.random() * float64(ceiling))
}

// connectionEnded reports how long the last connection was up: a healthy one (up for
// resetAfter or more) makes the next failure start again from base.
func (b *reconnectBackoff) connectionEnded(lasted time.Duration) {
	if lasted >= b.resetAfter {
		b.failures = 0
	}
}

// pollInterval yields growing waits between status polls: quick for short jobs, at most
// 500 ms for long ones.
type pollInterval struct {
	current time.Duration
}

const (
	pollFirst  = 10 * time.Millisecond
	pollFactor = 1.5
	pollCap    = 500 * time.Millisecond
)

func newPollInterval() *pollInterval { return &pollInterval{current: pollFirst} }

func (p *pollInterval) next() time.Duration {
	d := p.current
	p.current = min(pollCap, time.Duration(float64(p.current)*pollFactor))
	return d
}
