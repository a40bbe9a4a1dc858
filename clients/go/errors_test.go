package jobqueue

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

func statusWith(t *testing.T, code codes.Code, msg, reason, field string) error {
	t.Helper()
	st := status.New(code, msg)
	details := []any{}
	if reason != "" {
		details = append(details, &errdetails.ErrorInfo{Reason: reason, Domain: "jobqueue.dev"})
	}
	if field != "" {
		details = append(details, &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: msg}}})
	}
	for _, d := range details {
		var err error
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			st, err = st.WithDetails(d)
		case *errdetails.BadRequest:
			st, err = st.WithDetails(d)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return st.Err()
}

func TestErrorsAreMappedFromTheStatusAndItsDetails(t *testing.T) {
	cases := []struct {
		code     codes.Code
		reason   string
		field    string
		sentinel error
	}{
		{codes.InvalidArgument, ReasonInvalidArgument, "requests[1].queue", ErrInvalidArgument},
		{codes.NotFound, ReasonJobNotFound, "", ErrNotFound},
		{codes.FailedPrecondition, ReasonLeaseLost, "", ErrLeaseLost},
		{codes.FailedPrecondition, ReasonWrongState, "", ErrWrongState},
		{codes.Unavailable, ReasonStoreUnavailable, "", ErrUnavailable},
		{codes.Unavailable, "", "", ErrUnavailable}, // from gRPC itself: no details
		{codes.ResourceExhausted, ReasonStoreFull, "", ErrResourceExhausted},
	}
	sentinels := []error{ErrNotFound, ErrLeaseLost, ErrWrongState, ErrInvalidArgument, ErrUnavailable, ErrResourceExhausted}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%s", c.code, c.reason), func(t *testing.T) {
			err := wrapError(statusWith(t, c.code, "what happened", c.reason, c.field))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("not an *Error: %T", err)
			}
			if e.Code != c.code || e.Reason != c.reason || e.Field != c.field || e.Message != "what happened" {
				t.Errorf("error = %+v", e)
			}
			for _, s := range sentinels {
				if got := errors.Is(err, s); got != (s == c.sentinel) {
					t.Errorf("errors.Is(err, %v) = %v", s, got)
				}
			}
			if st, ok := status.FromError(err); !ok || st.Code() != c.code || len(st.Details()) == 0 && c.reason != "" {
				t.Errorf("status.FromError = %v, %v", st, ok)
			}
			wrapped := fmt.Errorf("enqueue: %w", err)
			if !errors.Is(wrapped, c.sentinel) || status.Code(wrapped) != c.code {
				t.Errorf("a wrapped error lost its identity: %v", wrapped)
			}
		})
	}
}

func TestCancelledCallsMatchTheContextErrors(t *testing.T) {
	if err := wrapError(status.Error(codes.Canceled, "x")); !errors.Is(err, context.Canceled) {
		t.Errorf("%v is not context.Canceled", err)
	}
	if err := wrapError(status.Error(codes.DeadlineExceeded, "x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%v is not context.DeadlineExceeded", err)
	}
}

func TestNonStatusErrorsPassThrough(t *testing.T) {
	plain := errors.New("plain")
	if wrapError(plain) != plain || wrapError(nil) != nil {
		t.Error("wrapError changed a non-status error")
	}
}

func TestAConfirmationStatusConverts(t *testing.T) {
	st, _ := status.New(codes.FailedPrecondition, "stale").WithDetails(&errdetails.ErrorInfo{Reason: ReasonLeaseLost})
	if err := errorFromProto(st.Proto()); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("err = %v", err)
	}
	if errorFromProto(status.New(codes.OK, "").Proto()) != nil || errorFromProto(nil) != nil {
		t.Error("OK must convert to nil")
	}
}

func TestNonRetryableIsDetectableThroughWrapping(t *testing.T) {
	err := fmt.Errorf("sending: %w", NonRetryable(errors.New("bad address")))
	var nr *NonRetryableError
	if !errors.As(err, &nr) || !IsNonRetryable(err) || nr.Error() != "bad address" {
		t.Errorf("err = %v", err)
	}
	if NonRetryable(nil) != nil || IsNonRetryable(errors.New("x")) {
		t.Error("NonRetryable(nil) must be nil, a plain error retryable")
	}
}

func TestHandlerOutcomesBecomeAcksAndFails(t *testing.T) {
	job := &LeasedJob{ID: "q:1", LeaseToken: "tok"}

	ack := settlementFor(job, map[string]any{"ok": true}, nil)
	want, _ := structpb.NewStruct(map[string]any{"ok": true})
	if ack.ack == nil || ack.ack.GetLeaseToken() != "tok" || ack.ack.GetResult().String() != want.String() {
		t.Errorf("ack = %v", ack)
	}
	if none := settlementFor(job, nil, nil); none.ack == nil || none.ack.GetResult() != nil {
		t.Errorf("no result = %v", none)
	}

	retry := settlementFor(job, nil, errors.New("flaky"))
	if retry.fail == nil || retry.fail.GetNonRetryable() || retry.fail.GetError() != "flaky" || retry.fail.GetRetryDelay() != nil {
		t.Errorf("fail = %v", retry)
	}
	permanent := settlementFor(job, nil, fmt.Errorf("wrapped: %w", NonRetryable(errors.New("bad"))))
	if !permanent.fail.GetNonRetryable() {
		t.Errorf("fail = %v", permanent)
	}
	later := settlementFor(job, nil, RetryAfter(errors.New("429"), 2*time.Second))
	if later.fail.GetRetryDelay().AsDuration() != 2*time.Second || later.fail.GetNonRetryable() {
		t.Errorf("fail = %v", later)
	}
	unencodable := settlementFor(job, map[string]any{"f": func() {}}, nil)
	if unencodable.fail == nil || !unencodable.fail.GetNonRetryable() {
		t.Errorf("a result that is not JSON must fail the job for good: %v", unencodable)
	}
}
