package jobqueue

import (
	"testing"
	"time"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

func ids(extends []*jobqueuev1.ExtendRequest) map[string]time.Duration {
	m := map[string]time.Duration{}
	for _, e := range extends {
		m[e.GetJobId()] = e.GetLeaseDuration().AsDuration()
	}
	return m
}

func TestALeaseIsExtendedWithAThirdLeft(t *testing.T) {
	k := newLeaseKeeper()
	t0 := time.Now()
	k.track("a", "tok", 30*time.Second, t0)
	if next, _ := k.next(); !next.Equal(t0.Add(20 * time.Second)) {
		t.Errorf("next extend at %s, want 20s after the grant", next.Sub(t0))
	}
	if due := k.due(t0.Add(19 * time.Second)); len(due) != 0 {
		t.Errorf("extended too early: %v", due)
	}
	due := k.due(t0.Add(20 * time.Second))
	if got := ids(due); got["a"] != 30*time.Second || due[0].GetLeaseToken() != "tok" {
		t.Errorf("due = %v", due)
	}
	if next, _ := k.next(); !next.Equal(t0.Add(40 * time.Second)) {
		t.Errorf("after an extend the next is at %s, want 40s", next.Sub(t0))
	}
}

func TestLeasesDueSoonRideAlong(t *testing.T) {
	k := newLeaseKeeper()
	t0 := time.Now()
	k.track("a", "t1", 30*time.Second, t0)                    // due at 20s
	k.track("b", "t2", 30*time.Second, t0.Add(4*time.Second)) // due at 24s: within 5s
	k.track("c", "t3", 30*time.Second, t0.Add(6*time.Second)) // due at 26s: not yet
	got := ids(k.due(t0.Add(20 * time.Second)))
	if _, ok := got["c"]; len(got) != 2 || ok {
		t.Errorf("extended %v, want a and b", got)
	}
}

func TestAFailedExtendIsTriedAgainSoon(t *testing.T) {
	k := newLeaseKeeper()
	t0 := time.Now()
	k.track("a", "t", 30*time.Second, t0)
	k.due(t0.Add(20 * time.Second))
	k.retrySoon("a", t0.Add(21*time.Second))
	if next, _ := k.next(); !next.Equal(t0.Add(21*time.Second + extendRetry)) {
		t.Errorf("retry at %s", next.Sub(t0))
	}
}

func TestAForgottenLeaseIsNotExtended(t *testing.T) {
	k := newLeaseKeeper()
	t0 := time.Now()
	k.track("a", "t", time.Second, t0)
	k.forget("a")
	if _, ok := k.next(); ok || len(k.due(t0.Add(time.Hour))) != 0 {
		t.Error("a forgotten lease is still kept")
	}
}
