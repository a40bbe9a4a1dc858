package jobqueue

import (
	"errors"
	"fmt"
	"time"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// confirm handles the server's answer to one ack, fail or extend sent on the stream. What
// it does with a refusal follows the contract (Confirmation.status, ErrorReason): an
// UNAVAILABLE one keeps the job held and is resent; LEASE_LOST frees the job; an ack the
// server cannot take is turned into a fail, so the job does not sit held until its lease
// runs out.
func (s *session) confirm(c *jobqueuev1.Confirmation) {
	err := errorFromProto(c.GetStatus())
	id := c.GetJobId()
	if c.GetKind() == jobqueuev1.ConfirmationKind_CONFIRMATION_KIND_EXTEND {
		s.extended(id, c, err)
		return
	}
	st, ok := s.unconfirmed[id]
	delete(s.unconfirmed, id)
	if err == nil {
		return
	}
	if ok && errors.Is(err, ErrUnavailable) && !s.hard {
		s.log.Warn("jobqueue: the server could not settle a job; sending it again", "job_id", id, "error", err)
		s.unconfirmed[id] = st
		time.AfterFunc(resendDelay, func() {
			select {
			case s.resend <- id:
			case <-s.done:
			}
		})
		return
	}
	if errors.Is(err, ErrLeaseLost) {
		s.log.Warn("jobqueue: the server refused to settle a job: lease lost", "job_id", id, "error", err)
	} else {
		s.log.Error("jobqueue: the server refused to settle a job", "job_id", id, "error", err)
	}
	if !ok || st.ack == nil {
		return
	}
	switch {
	case errors.Is(err, ErrInvalidArgument):
		// The same ack cannot succeed (a result over the size limit, ...), and left alone
		// the lease would run out and the job run again: fail it for good, with the reason.
		s.failInstead(st.ack, "the server refused the handler's result: "+err.Message, true)
	case errors.Is(err, ErrDurabilityUnavailable):
		// Nothing was written and the job is still held: fail the attempt, so that it runs
		// again after its backoff instead of holding a slot until its lease runs out, and
		// its error history says why.
		s.failInstead(st.ack, "the server could not take the ack at the worker's durability: "+err.Message, false)
	}
}

// failInstead answers a job whose ack was refused with a fail carrying the reason, and the
// handler's run time the ack carried (the refused ack was not counted by the server).
func (s *session) failInstead(ack *jobqueuev1.AckRequest, reason string, nonRetryable bool) {
	fail := settlement{fail: &jobqueuev1.FailRequest{
		JobId:           ack.GetJobId(),
		LeaseToken:      ack.GetLeaseToken(),
		Error:           reason,
		NonRetryable:    nonRetryable,
		HandlerDuration: ack.GetHandlerDuration(),
	}}
	s.unconfirmed[ack.GetJobId()] = fail
	s.out.settle(fail)
}

func (s *session) extended(id string, c *jobqueuev1.Confirmation, err *Error) {
	r, ok := s.running[id]
	if !ok {
		return // the handler finished meanwhile
	}
	switch {
	case err == nil:
		r.job.setDeadline(timeOf(c.GetLeaseExpireTime()))
	case errors.Is(err, ErrUnavailable):
		s.log.Warn("jobqueue: could not extend a lease; trying again", "job_id", id, "error", err)
		s.keeper.retrySoon(id, time.Now())
	default:
		r.lost = true
		s.keeper.forget(id)
		r.cancel(fmt.Errorf("%w: %w", ErrLeaseLost, err))
		s.log.Warn("jobqueue: lease lost; the handler is cancelled", "job_id", id, "error", err)
	}
}
