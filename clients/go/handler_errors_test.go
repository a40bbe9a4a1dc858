package jobqueue

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

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

	ack := settlementFor(job, map[string]any{"ok": true}, nil, jobqueuev1.Durability_DURABILITY_FSYNCED)
	want, _ := structpb.NewStruct(map[string]any{"ok": true})
	if ack.ack == nil || ack.ack.GetLeaseToken() != "tok" || ack.ack.GetResult().String() != want.String() ||
		ack.ack.GetDurability() != jobqueuev1.Durability_DURABILITY_FSYNCED {
		t.Errorf("ack = %v", ack)
	}
	if none := settlementFor(job, nil, nil, 0); none.ack == nil || none.ack.GetResult() != nil {
		t.Errorf("no result = %v", none)
	}

	retry := settlementFor(job, nil, errors.New("flaky"), 0)
	if retry.fail == nil || retry.fail.GetNonRetryable() || retry.fail.GetError() != "flaky" || retry.fail.GetRetryDelay() != nil {
		t.Errorf("fail = %v", retry)
	}
	permanent := settlementFor(job, nil, fmt.Errorf("wrapped: %w", NonRetryable(errors.New("bad"))), 0)
	if !permanent.fail.GetNonRetryable() {
		t.Errorf("fail = %v", permanent)
	}
	later := settlementFor(job, nil, RetryAfter(errors.New("429"), 2*time.Second), 0)
	if later.fail.GetRetryDelay().AsDuration() != 2*time.Second || later.fail.GetNonRetryable() {
		t.Errorf("fail = %v", later)
	}
	unencodable := settlementFor(job, map[string]any{"f": func() {}}, nil, 0)
	if unencodable.fail == nil || !unencodable.fail.GetNonRetryable() {
		t.Errorf("a result that is not JSON must fail the job for good: %v", unencodable)
	}
}

func TestTheHandlerDurationGoesOnTheAckOrFailWithinWhatTheServerTakes(t *testing.T) {
	job := &LeasedJob{ID: "q:1", LeaseToken: "tok"}

	ack := settlementFor(job, nil, nil, 0)
	if ack.ack.GetHandlerDuration() != nil {
		t.Errorf("an ack without a measured run carries %v", ack.ack.GetHandlerDuration())
	}
	ack.setHandlerDuration(1500 * time.Millisecond)
	if got := ack.ack.GetHandlerDuration().AsDuration(); got != 1500*time.Millisecond {
		t.Errorf("ack handler_duration = %v", got)
	}
	fail := settlementFor(job, nil, errors.New("boom"), 0)
	fail.setHandlerDuration(8 * 24 * time.Hour)
	if got := fail.fail.GetHandlerDuration().AsDuration(); got != 7*24*time.Hour {
		t.Errorf("fail handler_duration = %v, want the server's maximum, 7 days", got)
	}
}
