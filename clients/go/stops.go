package jobqueue

import (
	"errors"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// ErrJobCancelled is the cause of a handler's context cancellation when its job was cancelled
// (Client.Cancel) while it ran: the job is CANCELLED, and whatever the handler returns is
// dropped.
var ErrJobCancelled = errors.New("jobqueue: the job was cancelled while it ran")

// ErrJobTimedOut is the cause of a handler's context cancellation when the attempt ran past
// the job's execution timeout (WithExecutionTimeout): the server failed the attempt with
// "timed out" (it is retried or dead like any failure), and whatever the handler returns is
// dropped.
var ErrJobTimedOut = errors.New("jobqueue: the job ran past its execution timeout")

// stopCause is the cancellation cause for a stop's reason; a reason this version of the
// package does not know stops the job as cancelled.
func stopCause(reason jobqueuev1.StopReason) error {
	if reason == jobqueuev1.StopReason_STOP_REASON_TIMED_OUT {
		return ErrJobTimedOut
	}
	return ErrJobCancelled
}

// stop handles a JobStop: the server took the job back (its lease is gone, its window slot
// free), so the handler is cancelled with the stop's cause, its lease is no longer extended,
// its unsent extends and reports are dropped, and nothing is settled for it. Its local slot is
// freed when the handler returns. A stop for a lease this stream no longer runs changes
// nothing.
func (s *session) stop(st *jobqueuev1.JobStop) {
	id, token := st.GetJobId(), st.GetLeaseToken()
	r, ok := s.running[id]
	if !ok || (token != "" && r.job.LeaseToken != token) {
		if settled, ok := s.unconfirmed[id]; ok && settled.token() == token {
			s.log.Info("jobqueue: the server stopped a job whose handler had finished; its ack or fail will be refused", "job_id", id, "reason", st.GetReason().String())
		}
		return
	}
	cause := stopCause(st.GetReason())
	r.stopped = true
	delete(s.running, id)
	s.keeper.forget(id)
	r.job.endReports()
	s.out.forgetLease(progressKey{jobID: id, token: r.job.LeaseToken})
	r.cancel(cause)
	s.log.Info("jobqueue: the server stopped a running job; its handler is cancelled and nothing is settled for it", "job_id", id, "reason", st.GetReason().String())
}
