package jobqueue

import (
	"testing"
	"time"
)

func TestReconnectDelaysGrowExponentiallyUpToTheCap(t *testing.T) {
	b := newReconnectBackoff()
	b.random = func() float64 { return 1 } // the ceiling itself
	var got []time.Duration
	for range 10 {
		got = append(got, b.next())
	}
	want := []time.Duration{
		100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, 6400 * time.Millisecond,
		10 * time.Second, 10 * time.Second, 10 * time.Second,
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays = %v, want %v", got, want)
		}
	}
}

func TestReconnectDelaysHaveFullJitter(t *testing.T) {
	b := newReconnectBackoff()
	b.random = func() float64 { return 0 }
	if d := b.next(); d != 0 {
		t.Errorf("the lowest draw waits %s, want 0", d)
	}
	b.random = func() float64 { return 0.5 }
	if d := b.next(); d != 100*time.Millisecond {
		t.Errorf("half of the second ceiling = %s, want 100ms", d)
	}
}

func TestALongOutageDoesNotOverflow(t *testing.T) {
	b := newReconnectBackoff()
	b.random = func() float64 { return 1 }
	for range 1000 {
		if d := b.next(); d < 0 || d > reconnectCap {
			t.Fatalf("delay %s after %d failures", d, b.failures)
		}
	}
}

func TestAHealthyConnectionResetsTheBackoff(t *testing.T) {
	b := newReconnectBackoff()
	b.random = func() float64 { return 1 }
	b.next()
	b.next()
	b.connectionEnded(29 * time.Second)
	if d := b.next(); d != 400*time.Millisecond {
		t.Errorf("a short connection must not reset: %s", d)
	}
	b.connectionEnded(30 * time.Second)
	if d := b.next(); d != 100*time.Millisecond {
		t.Errorf("after a healthy connection the delay is %s, want 100ms", d)
	}
}

func TestPollIntervalsGrowToHalfASecond(t *testing.T) {
	p := newPollInterval()
	first := p.next()
	var last time.Duration
	for range 30 {
		last = p.next()
	}
	if first != 10*time.Millisecond || last != 500*time.Millisecond {
		t.Errorf("first %s, last %s", first, last)
	}
}
