package jobqueue

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// serverRefusal is an INVALID_ARGUMENT as the server sends it, with its BadRequest.
func serverRefusal(t *testing.T, field string) error {
	t.Helper()
	st, err := status.New(codes.InvalidArgument, field+": is required").WithDetails(
		&errdetails.ErrorInfo{Reason: "INVALID_ARGUMENT", Domain: ErrorDomain},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: "is required"}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	return wrapError(st.Err())
}

func TestARefusalNamingOneJobIsThatJobsRenamedAsForASingleEnqueue(t *testing.T) {
	i, e := jobError(serverRefusal(t, "requests[3].metadata['k']"), 5)

	if i != 3 || e.Field != "metadata['k']" || e.Message != "metadata['k']: is required" || e.Reason != jobqueuev1.ErrorReason_INVALID_ARGUMENT {
		t.Fatalf("index %d, error %+v", i, e)
	}
	st := status.Convert(e)
	if st.Message() != e.Message || st.Code() != codes.InvalidArgument {
		t.Errorf("status %v", st)
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && br.GetFieldViolations()[0].GetField() != "metadata['k']" {
			t.Errorf("BadRequest names %q", br.GetFieldViolations()[0].GetField())
		}
	}
	if !errors.Is(e, ErrInvalidArgument) {
		t.Error("the renamed error no longer matches ErrInvalidArgument")
	}
}

func TestARefusalThatNamesNoJobOfTheBatchIsTheWholeBatchs(t *testing.T) {
	for _, field := range []string{
		"requests", "requests[5].queue", "requests[-1].queue", "requests[+1].queue", "requests[x].queue",
		"requests[1]", "requests[1].", "requests[99999999999999999999].queue", "queue", "",
	} {
		if i, e := jobError(serverRefusal(t, field), 5); i != -1 || e != nil {
			t.Errorf("field %q: read as job %d (%v)", field, i, e)
		}
	}
	unavailable := wrapError(status.Error(codes.Unavailable, "requests[1].queue"))
	if i, _ := jobError(unavailable, 5); i != -1 {
		t.Errorf("an UNAVAILABLE was read as job %d's", i)
	}
}

func TestAQueueOutsideTheTokensPatternsIsThatJobsRefusal(t *testing.T) {
	st, err := status.New(codes.PermissionDenied, "requests[2].queue: queue 'x' is outside this token's queues").WithDetails(
		&errdetails.ErrorInfo{Reason: "QUEUE_NOT_ALLOWED", Domain: ErrorDomain},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "requests[2].queue"}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	refusal := wrapError(st.Err())

	i, e := jobError(refusal, 5)
	if i != 2 || e.Field != "queue" || !errors.Is(e, ErrQueueNotAllowed) || !strings.HasPrefix(e.Message, "queue: ") {
		t.Errorf("index %d, error %+v", i, e)
	}
	// The same refusal on a stream that ended with several batches unanswered may be
	// another batch's.
	if i, _ := jobError(&sharedStreamError{refusal.(*Error)}, 5); i != -1 {
		t.Errorf("a shared stream error was read as job %d's", i)
	}
	role := wrapError(status.New(codes.PermissionDenied, "no").Err())
	if i, _ := jobError(role, 5); i != -1 {
		t.Errorf("a PERMISSION_DENIED naming no job was read as job %d's", i)
	}
}

func TestZeroBatchingFieldsTakeTheDefaults(t *testing.T) {
	got := Batching{MaxJobs: -1, Linger: 5 * time.Millisecond}.withDefaults()

	if got != (Batching{MaxJobs: DefaultBatchMaxJobs, MaxBytes: DefaultBatchMaxBytes, Linger: 5 * time.Millisecond}) {
		t.Errorf("got %+v", got)
	}
	if s := newDialSettings(nil); s.noBatching || s.batching != (Batching{}).withDefaults() {
		t.Errorf("batching should be on with the defaults: %+v", s)
	}
	if s := newDialSettings([]Option{WithoutBatching()}); !s.noBatching {
		t.Error("WithoutBatching left batching on")
	}
}
