package jobqueue

import (
	"errors"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// defaultLease is the server's default lease length, for a grant whose length cannot be
// read off its times.
const defaultLease = 30 * time.Second

// LeasedJob is a job handed to a handler. Its Progress and Log methods report, while the
// handler runs, how far it is and what it does (GetStatus shows them to producers).
type LeasedJob struct {
	ID    string
	Queue string
	// Attempt is this delivery's number, counted from 1.
	Attempt     int
	MaxAttempts int
	// Payload is the job's JSON payload (numbers are float64); nil when it has none.
	Payload      map[string]any
	PayloadBytes []byte
	Metadata     map[string]string
	// LeaseToken proves the lease; the worker uses it to settle and extend the job.
	LeaseToken string
	// Job is everything the server sent about the job.
	Job *Job

	leaseLength  time.Duration
	deadline     atomic.Int64 // Unix nanoseconds, on the server's clock
	out          *outbox      // where Progress and Log go; nil outside a worker
	reportsEnded atomic.Bool  // the handler returned or the job was stopped
}

// Deadline is when the lease expires unless extended (the worker extends it while the
// handler runs, and this moves with each extension).
func (j *LeasedJob) Deadline() time.Time {
	return time.Unix(0, j.deadline.Load())
}

func (j *LeasedJob) setDeadline(t time.Time) {
	j.deadline.Store(t.UnixNano())
}

func leasedFromProto(p *jobqueuev1.LeasedJob) *LeasedJob {
	job := jobFromProto(p.GetJob())
	if job == nil {
		job = &Job{}
	}
	j := &LeasedJob{
		ID:           job.ID,
		Queue:        job.Queue,
		Attempt:      job.Attempts,
		MaxAttempts:  job.MaxAttempts,
		Payload:      job.Payload,
		PayloadBytes: job.PayloadBytes,
		Metadata:     job.Metadata,
		LeaseToken:   p.GetLeaseToken(),
		Job:          job,
	}
	deadline := timeOf(p.GetLeaseExpireTime())
	j.setDeadline(deadline)
	j.leaseLength = leaseLength(deadline, job)
	return j
}

// leaseLength is the grant's deadline minus its start time (both on Redis's clock): the
// lease length, whether it came from the job, the stream or the server default. It never
// compares our clock with the server's.
func leaseLength(deadline time.Time, job *Job) time.Duration {
	if !job.StartTime.IsZero() && !deadline.IsZero() {
		if d := deadline.Sub(job.StartTime); d > 0 {
			return d
		}
	}
	if job.LeaseDuration > 0 {
		return job.LeaseDuration
	}
	return defaultLease
}

// settlement is the ack or the fail that answers one job.
type settlement struct {
	ack  *jobqueuev1.AckRequest
	fail *jobqueuev1.FailRequest
}

func (s settlement) jobID() string {
	if s.ack != nil {
		return s.ack.GetJobId()
	}
	return s.fail.GetJobId()
}

func (s settlement) token() string {
	if s.ack != nil {
		return s.ack.GetLeaseToken()
	}
	return s.fail.GetLeaseToken()
}

// maxHandlerDuration is the longest handler run the server takes in an ack or fail
// (handler_duration: 0 to 7 days); a longer one is reported as this, since the server
// would refuse the settlement itself otherwise.
const maxHandlerDuration = 7 * 24 * time.Hour

// setHandlerDuration records on the ack or fail how long the handler ran, for the server's
// processing-time histogram (docs/monitoring.md).
func (s settlement) setHandlerDuration(took time.Duration) {
	d := durationpb.New(min(max(took, 0), maxHandlerDuration))
	if s.ack != nil {
		s.ack.HandlerDuration = d
	} else {
		s.fail.HandlerDuration = d
	}
}

// settlementFor turns a handler's outcome into an ack (at the given durability) or a
// fail: an error fails the job (non-retryably when marked with NonRetryable, after a set
// delay with RetryAfter); a result that cannot be a JSON object fails it non-retryably,
// since the same result would be refused on every attempt.
func settlementFor(job *LeasedJob, result map[string]any, err error, durability jobqueuev1.Durability) settlement {
	if err == nil {
		structured, convErr := toStruct(result, "result")
		if convErr == nil {
			return settlement{ack: &jobqueuev1.AckRequest{
				JobId:      job.ID,
				LeaseToken: job.LeaseToken,
				Result:     structured,
				Durability: durability,
			}}
		}
		err = NonRetryable(errors.New("the handler's result is not a JSON object: " + convErr.Error()))
	}
	fail := &jobqueuev1.FailRequest{
		JobId:        job.ID,
		LeaseToken:   job.LeaseToken,
		Error:        err.Error(),
		NonRetryable: IsNonRetryable(err),
	}
	var after *RetryAfterError
	if errors.As(err, &after) && !fail.NonRetryable {
		fail.RetryDelay = durationpb.New(max(after.Delay, 0))
	}
	return settlement{fail: fail}
}
