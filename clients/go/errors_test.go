package jobqueue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// reasonInfo is the ErrorInfo the server attaches, naming reason.
func reasonInfo(reason string) *errdetails.ErrorInfo {
	return &errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain}
}

func fieldViolation(field string) *errdetails.BadRequest {
	return &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: "bad"}}}
}

// statusError is a gRPC error with code, message and details, as a call returns it.
func statusError(t *testing.T, code codes.Code, msg string, details ...protoadapt.MessageV1) error {
	t.Helper()
	st, err := status.New(code, msg).WithDetails(details...)
	if err != nil {
		t.Fatal(err)
	}
	return st.Err()
}

// allSentinels are every sentinel error of the package, by name.
var allSentinels = map[string]error{
	"ErrInvalidArgument":         ErrInvalidArgument,
	"ErrNotFound":                ErrNotFound,
	"ErrLeaseLost":               ErrLeaseLost,
	"ErrWrongState":              ErrWrongState,
	"ErrDurabilityUnavailable":   ErrDurabilityUnavailable,
	"ErrFsyncNotConfirmed":       ErrFsyncNotConfirmed,
	"ErrReplicationNotConfirmed": ErrReplicationNotConfirmed,
	"ErrStoreUnavailable":        ErrStoreUnavailable,
	"ErrStoreFull":               ErrStoreFull,
	"ErrServerShuttingDown":      ErrServerShuttingDown,
	"ErrInternal":                ErrInternal,
	"ErrUnavailable":             ErrUnavailable,
	"ErrResourceExhausted":       ErrResourceExhausted,
	"ErrTokenMissing":            ErrTokenMissing,
	"ErrTokenInvalid":            ErrTokenInvalid,
	"ErrTokenExpired":            ErrTokenExpired,
	"ErrRoleNotAllowed":          ErrRoleNotAllowed,
	"ErrQueueNotAllowed":         ErrQueueNotAllowed,
	"ErrTokenNotFound":           ErrTokenNotFound,
	"ErrTokenLimitReached":       ErrTokenLimitReached,
	"ErrQueueLimitReached":       ErrQueueLimitReached,
	"ErrScheduleNotFound":        ErrScheduleNotFound,
	"ErrScheduleExists":          ErrScheduleExists,
	"ErrScheduleLimitReached":    ErrScheduleLimitReached,
	"ErrWebhookNotFound":         ErrWebhookNotFound,
	"ErrWebhookLimitReached":     ErrWebhookLimitReached,
	"ErrUnauthenticated":         ErrUnauthenticated,
	"ErrPermissionDenied":        ErrPermissionDenied,
}

// matched lists the names of the sentinels err matches, sorted.
func matched(err error) []string {
	var names []string
	for name, s := range allSentinels {
		if errors.Is(err, s) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// A new value in error_reason.proto fails here until it has a sentinel of its own.
func TestEveryErrorReasonHasASentinelOfItsOwn(t *testing.T) {
	owners := map[error]jobqueuev1.ErrorReason{}
	for number, name := range jobqueuev1.ErrorReason_name {
		reason := jobqueuev1.ErrorReason(number)
		if reason == jobqueuev1.ErrorReason_ERROR_REASON_UNSPECIFIED {
			continue
		}
		sentinel, ok := reasonSentinels[reason]
		if !ok {
			t.Errorf("ErrorReason %s has no sentinel error", name)
			continue
		}
		if other, taken := owners[sentinel]; taken {
			t.Errorf("%s and %s share the sentinel %v", name, other, sentinel)
		}
		owners[sentinel] = reason

		// The reason decides, whatever the code.
		err := wrapError(statusError(t, codes.Unknown, "x", reasonInfo(name)))
		var e *Error
		if !errors.As(err, &e) || e.Reason != reason {
			t.Errorf("%s: error = %#v", name, err)
		}
		if got := matched(err); len(got) != 1 || allSentinels[got[0]] != sentinel {
			t.Errorf("%s matches %v, want only %v", name, got, sentinel)
		}
	}
}

func TestErrorsAreMappedFromTheStatusAndItsDetails(t *testing.T) {
	cases := []struct {
		code    codes.Code
		reason  jobqueuev1.ErrorReason
		field   string
		matches []string
	}{
		{codes.InvalidArgument, jobqueuev1.ErrorReason_INVALID_ARGUMENT, "requests[1].queue", []string{"ErrInvalidArgument"}},
		{codes.NotFound, jobqueuev1.ErrorReason_JOB_NOT_FOUND, "", []string{"ErrNotFound"}},
		{codes.FailedPrecondition, jobqueuev1.ErrorReason_LEASE_LOST, "", []string{"ErrLeaseLost"}},
		{codes.FailedPrecondition, jobqueuev1.ErrorReason_WRONG_STATE, "", []string{"ErrWrongState"}},
		{codes.FailedPrecondition, jobqueuev1.ErrorReason_DURABILITY_UNAVAILABLE, "", []string{"ErrDurabilityUnavailable"}},
		{codes.Unavailable, jobqueuev1.ErrorReason_FSYNC_NOT_CONFIRMED, "", []string{"ErrFsyncNotConfirmed", "ErrUnavailable"}},
		{codes.Unavailable, jobqueuev1.ErrorReason_REPLICATION_NOT_CONFIRMED, "", []string{"ErrReplicationNotConfirmed", "ErrUnavailable"}},
		{codes.Unavailable, jobqueuev1.ErrorReason_STORE_UNAVAILABLE, "", []string{"ErrStoreUnavailable", "ErrUnavailable"}},
		{codes.ResourceExhausted, jobqueuev1.ErrorReason_STORE_FULL, "", []string{"ErrResourceExhausted", "ErrStoreFull"}},
		{codes.Unavailable, jobqueuev1.ErrorReason_SERVER_SHUTTING_DOWN, "", []string{"ErrServerShuttingDown", "ErrUnavailable"}},
		{codes.Internal, jobqueuev1.ErrorReason_INTERNAL, "", []string{"ErrInternal"}},
		{codes.Unauthenticated, jobqueuev1.ErrorReason_TOKEN_MISSING, "", []string{"ErrTokenMissing", "ErrUnauthenticated"}},
		{codes.Unauthenticated, jobqueuev1.ErrorReason_TOKEN_INVALID, "", []string{"ErrTokenInvalid", "ErrUnauthenticated"}},
		{codes.Unauthenticated, jobqueuev1.ErrorReason_TOKEN_EXPIRED, "", []string{"ErrTokenExpired", "ErrUnauthenticated"}},
		{codes.PermissionDenied, jobqueuev1.ErrorReason_ROLE_NOT_ALLOWED, "", []string{"ErrPermissionDenied", "ErrRoleNotAllowed"}},
		{codes.PermissionDenied, jobqueuev1.ErrorReason_QUEUE_NOT_ALLOWED, "queue", []string{"ErrPermissionDenied", "ErrQueueNotAllowed"}},
		// TOKEN_NOT_FOUND is not ErrNotFound, which is a job's.
		{codes.NotFound, jobqueuev1.ErrorReason_TOKEN_NOT_FOUND, "", []string{"ErrTokenNotFound"}},
		{codes.ResourceExhausted, jobqueuev1.ErrorReason_TOKEN_LIMIT_REACHED, "", []string{"ErrResourceExhausted", "ErrTokenLimitReached"}},
		{codes.ResourceExhausted, jobqueuev1.ErrorReason_QUEUE_LIMIT_REACHED, "", []string{"ErrQueueLimitReached", "ErrResourceExhausted"}},
		// SCHEDULE_NOT_FOUND is not ErrNotFound either.
		{codes.NotFound, jobqueuev1.ErrorReason_SCHEDULE_NOT_FOUND, "", []string{"ErrScheduleNotFound"}},
		{codes.AlreadyExists, jobqueuev1.ErrorReason_SCHEDULE_EXISTS, "", []string{"ErrScheduleExists"}},
		{codes.ResourceExhausted, jobqueuev1.ErrorReason_SCHEDULE_LIMIT_REACHED, "", []string{"ErrResourceExhausted", "ErrScheduleLimitReached"}},
		// WEBHOOK_NOT_FOUND is not ErrNotFound either.
		{codes.NotFound, jobqueuev1.ErrorReason_WEBHOOK_NOT_FOUND, "", []string{"ErrWebhookNotFound"}},
		{codes.ResourceExhausted, jobqueuev1.ErrorReason_WEBHOOK_LIMIT_REACHED, "", []string{"ErrResourceExhausted", "ErrWebhookLimitReached"}},
		// Statuses without a reason (from gRPC itself, a proxy) map by their code.
		{codes.Unavailable, 0, "", []string{"ErrUnavailable"}},
		{codes.ResourceExhausted, 0, "", []string{"ErrResourceExhausted"}},
		{codes.NotFound, 0, "", []string{"ErrNotFound"}},
		{codes.InvalidArgument, 0, "", []string{"ErrInvalidArgument"}},
		{codes.Unauthenticated, 0, "", []string{"ErrUnauthenticated"}},
		{codes.PermissionDenied, 0, "", []string{"ErrPermissionDenied"}},
		{codes.AlreadyExists, 0, "", nil},
		{codes.FailedPrecondition, 0, "", nil},
		{codes.Internal, 0, "", nil},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%s", c.code, c.reason), func(t *testing.T) {
			var details []protoadapt.MessageV1
			if c.reason != 0 {
				details = append(details, reasonInfo(c.reason.String()))
			}
			if c.field != "" {
				details = append(details, fieldViolation(c.field))
			}
			err := wrapError(statusError(t, c.code, "what happened", details...))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("not an *Error: %T", err)
			}
			if e.Code != c.code || e.Reason != c.reason || e.Field != c.field || e.Message != "what happened" {
				t.Errorf("error = %+v", e)
			}
			if got := matched(err); !slices.Equal(got, c.matches) {
				t.Errorf("matches %v, want %v", got, c.matches)
			}
			if st, ok := status.FromError(err); !ok || st.Code() != c.code || len(st.Details()) != len(details) {
				t.Errorf("status.FromError = %v, %v", st, ok)
			}
			wrapped := fmt.Errorf("enqueue: %w", err)
			if !slices.Equal(matched(wrapped), c.matches) || status.Code(wrapped) != c.code {
				t.Errorf("a wrapped error lost its identity: %v", wrapped)
			}
		})
	}
}

func TestAReasonOfAnotherDomainOrAnUnknownReasonMapsByCode(t *testing.T) {
	foreign := &errdetails.ErrorInfo{Reason: "LEASE_LOST", Domain: "proxy.example"}
	err := wrapError(statusError(t, codes.Unavailable, "x", foreign))
	var e *Error
	if !errors.As(err, &e) || e.Reason != jobqueuev1.ErrorReason_ERROR_REASON_UNSPECIFIED {
		t.Errorf("a foreign ErrorInfo was read: %v", err)
	}
	if got := matched(err); !slices.Equal(got, []string{"ErrUnavailable"}) {
		t.Errorf("matches %v", got)
	}

	newer := wrapError(statusError(t, codes.NotFound, "x", reasonInfo("QUEUE_NOT_FOUND")))
	if got := matched(newer); !slices.Equal(got, []string{"ErrNotFound"}) || strings.Contains(newer.Error(), "UNSPECIFIED") {
		t.Errorf("an unknown reason: %v matches %v", newer, got)
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
	st, _ := status.New(codes.FailedPrecondition, "stale").WithDetails(reasonInfo("LEASE_LOST"))
	if err := errorFromProto(st.Proto()); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("err = %v", err)
	}
	if errorFromProto(status.New(codes.OK, "").Proto()) != nil || errorFromProto(nil) != nil {
		t.Error("OK must convert to nil")
	}
}
