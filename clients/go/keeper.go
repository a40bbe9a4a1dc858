package jobqueue

import (
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// The lease keeper extends each running job's lease once two thirds of its length have
// passed since it was granted or last extended (about a third is left), on the local
// monotonic clock from when the grant arrived or the extend was sent: it never compares
// our clock with the server's. Extends due within the next sixth of a lease ride along
// with one that is due now, so a busy worker sends few, larger messages.
const (
	extendAt  = 2.0 / 3
	rideAlong = 1.0 / 6
	// After an extend the server could not carry out (Redis unavailable), try again after
	// this long, or sooner for a short lease.
	extendRetry = 500 * time.Millisecond
)

type keptLease struct {
	token  string
	length time.Duration
	nextAt time.Time
}

type leaseKeeper struct {
	leases map[string]*keptLease
}

func newLeaseKeeper() *leaseKeeper {
	return &leaseKeeper{leases: make(map[string]*keptLease)}
}

func fraction(d time.Duration, f float64) time.Duration {
	return time.Duration(float64(d) * f)
}

// track starts keeping a lease granted (received) at now.
func (k *leaseKeeper) track(jobID, token string, length time.Duration, now time.Time) {
	k.leases[jobID] = &keptLease{token: token, length: length, nextAt: now.Add(fraction(length, extendAt))}
}

func (k *leaseKeeper) forget(jobID string) {
	delete(k.leases, jobID)
}

// retrySoon brings the next extend of a lease forward after a failed one.
func (k *leaseKeeper) retrySoon(jobID string, now time.Time) {
	if l, ok := k.leases[jobID]; ok {
		l.nextAt = now.Add(min(extendRetry, fraction(l.length, rideAlong)))
	}
}

// next is when the next extend is due; false when no lease is kept.
func (k *leaseKeeper) next() (time.Time, bool) {
	var earliest time.Time
	for _, l := range k.leases {
		if earliest.IsZero() || l.nextAt.Before(earliest) {
			earliest = l.nextAt
		}
	}
	return earliest, !earliest.IsZero()
}

// due returns the extends to send at now (each asks for the lease's full length again,
// explicitly: an unset length would make the server use the job's own or its default,
// not the stream's) and schedules the following ones. Nothing is due before the earliest
// nextAt; then every lease due within a sixth of its length rides along.
func (k *leaseKeeper) due(now time.Time) []*jobqueuev1.ExtendRequest {
	if earliest, ok := k.next(); !ok || now.Before(earliest) {
		return nil
	}
	var extends []*jobqueuev1.ExtendRequest
	for id, l := range k.leases {
		if now.Before(l.nextAt.Add(-fraction(l.length, rideAlong))) {
			continue
		}
		l.nextAt = now.Add(fraction(l.length, extendAt))
		extends = append(extends, &jobqueuev1.ExtendRequest{
			JobId:         id,
			LeaseToken:    l.token,
			LeaseDuration: durationpb.New(l.length),
		})
	}
	return extends
}
