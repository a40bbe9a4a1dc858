package jobqueue

import (
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// resendBound only keeps a broken test from hanging; the resend comes after resendDelay.
const resendBound = 30 * time.Second

// sessionWithAck is a session (not connected) that sent an ack for job "q:1".
func sessionWithAck(t *testing.T) *session {
	s := newSession(NewWorker(nil, []string{"q"}, WithLogger(slog.New(slog.DiscardHandler))))
	t.Cleanup(func() { close(s.done) })
	s.unconfirmed["q:1"] = settlement{ack: &jobqueuev1.AckRequest{
		JobId: "q:1", LeaseToken: "tok", HandlerDuration: durationpb.New(75 * time.Millisecond),
	}}
	return s
}

func refusal(t *testing.T, code codes.Code, reason jobqueuev1.ErrorReason) *jobqueuev1.Confirmation {
	st, err := status.New(code, "refused").WithDetails(reasonInfo(reason.String()))
	if err != nil {
		t.Fatal(err)
	}
	return &jobqueuev1.Confirmation{JobId: "q:1", Kind: jobqueuev1.ConfirmationKind_CONFIRMATION_KIND_ACK, Status: st.Proto()}
}

func TestAnUnavailableConfirmationKeepsTheJobHeldAndResendsTheAck(t *testing.T) {
	for _, reason := range []jobqueuev1.ErrorReason{jobqueuev1.ErrorReason_STORE_UNAVAILABLE, jobqueuev1.ErrorReason_FSYNC_NOT_CONFIRMED, jobqueuev1.ErrorReason_REPLICATION_NOT_CONFIRMED} {
		s := sessionWithAck(t)

		s.confirm(refusal(t, codes.Unavailable, reason))

		if st, held := s.unconfirmed["q:1"]; !held || st.ack == nil {
			t.Errorf("%s: the ack is no longer held: %v", reason, s.unconfirmed)
		}
		select {
		case id := <-s.resend:
			if id != "q:1" {
				t.Errorf("%s: resent %s", reason, id)
			}
		case <-time.After(resendBound):
			t.Errorf("%s: the ack was never resent", reason)
		}
	}
}

func TestALeaseLostConfirmationFreesTheJob(t *testing.T) {
	s := sessionWithAck(t)

	s.confirm(refusal(t, codes.FailedPrecondition, jobqueuev1.ErrorReason_LEASE_LOST))

	if req, _ := s.out.take(); len(s.unconfirmed) != 0 || req != nil {
		t.Errorf("unconfirmed %v, sent %v", s.unconfirmed, req)
	}
}

func TestAnAckTheServerCannotTakeBecomesAFail(t *testing.T) {
	cases := []struct {
		code         codes.Code
		reason       jobqueuev1.ErrorReason
		nonRetryable bool
	}{
		// Redis cannot confirm the worker's durability: retry the job later.
		{codes.FailedPrecondition, jobqueuev1.ErrorReason_DURABILITY_UNAVAILABLE, false},
		// The result itself is refused (too large): the same ack would never succeed.
		{codes.InvalidArgument, jobqueuev1.ErrorReason_INVALID_ARGUMENT, true},
	}
	for _, c := range cases {
		s := sessionWithAck(t)

		s.confirm(refusal(t, c.code, c.reason))

		req, _ := s.out.take()
		if len(req.GetFails()) != 1 || len(req.GetAcks()) != 0 {
			t.Fatalf("%s: sent %v", c.reason, req)
		}
		fail := req.GetFails()[0]
		if fail.GetJobId() != "q:1" || fail.GetLeaseToken() != "tok" || fail.GetNonRetryable() != c.nonRetryable || fail.GetError() == "" {
			t.Errorf("%s: fail = %v", c.reason, fail)
		}
		if got := fail.GetHandlerDuration().AsDuration(); got != 75*time.Millisecond {
			t.Errorf("%s: the fail says the handler ran %v, the ack said 75ms", c.reason, got)
		}
		if st := s.unconfirmed["q:1"]; st.fail != fail {
			t.Errorf("%s: the fail is not awaiting its confirmation: %v", c.reason, s.unconfirmed)
		}
	}
}
