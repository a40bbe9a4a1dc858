package jobqueue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors, matched with errors.Is against any error this package returns.
var (
	// ErrNotFound: the job does not exist (or is past its retention window).
	ErrNotFound = errors.New("jobqueue: not found")
	// ErrLeaseLost: the lease token is no longer current (the lease expired and the job
	// went back to its queue or to another worker, or the job was settled already).
	ErrLeaseLost = errors.New("jobqueue: lease lost")
	// ErrWrongState: the job's state does not allow the operation (cancel an active job,
	// retry a queued one, ...).
	ErrWrongState = errors.New("jobqueue: wrong state")
	// ErrInvalidArgument: the request was malformed; Error.Field names the field.
	ErrInvalidArgument = errors.New("jobqueue: invalid argument")
	// ErrUnavailable: the server or its Redis could not be reached; retrying may succeed.
	ErrUnavailable = errors.New("jobqueue: unavailable")
	// ErrResourceExhausted: a limit was hit (Redis out of memory, ...).
	ErrResourceExhausted = errors.New("jobqueue: resource exhausted")
)

// The stable ErrorInfo reasons the server sends (domain "jobqueue.dev").
const (
	ReasonJobNotFound        = "JOB_NOT_FOUND"
	ReasonLeaseLost          = "LEASE_LOST"
	ReasonWrongState         = "WRONG_STATE"
	ReasonInvalidArgument    = "INVALID_ARGUMENT"
	ReasonStoreUnavailable   = "STORE_UNAVAILABLE"
	ReasonStoreFull          = "STORE_FULL"
	ReasonServerShuttingDown = "SERVER_SHUTTING_DOWN"
)

// Error is a failed call or a refused ack, fail or extend. It wraps the gRPC status:
// status.FromError and status.Code see it, errors.Is matches it against the sentinel
// errors above (and against context.Canceled and context.DeadlineExceeded for those codes),
// and errors.As extracts it:
//
//	var e *jobqueue.Error
//	if errors.As(err, &e) && e.Field != "" { ... }
type Error struct {
	// Code is the gRPC status code.
	Code codes.Code
	// Reason is the google.rpc.ErrorInfo reason, such as "LEASE_LOST"; empty when the
	// status carried none (for example a transport error from gRPC itself).
	Reason string
	// Field names the offending request field (google.rpc.BadRequest), for
	// INVALID_ARGUMENT; for example "queue" or "requests[2].delay".
	Field string
	// Message is the server's developer-facing message.
	Message string

	status *status.Status
}

// Error implements error.
func (e *Error) Error() string {
	msg := fmt.Sprintf("jobqueue: %s: %s", e.Code, e.Message)
	if e.Reason != "" {
		msg += " (" + e.Reason + ")"
	}
	return msg
}

// GRPCStatus returns the status the error was built from, for status.FromError.
func (e *Error) GRPCStatus() *status.Status {
	if e.status == nil {
		return status.New(e.Code, e.Message)
	}
	return e.status
}

// Is reports whether the error matches a sentinel error of this package, or
// context.Canceled / context.DeadlineExceeded for the CANCELLED / DEADLINE_EXCEEDED codes.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Code == codes.NotFound
	case ErrLeaseLost:
		return e.Reason == ReasonLeaseLost
	case ErrWrongState:
		return e.Reason == ReasonWrongState
	case ErrInvalidArgument:
		return e.Code == codes.InvalidArgument
	case ErrUnavailable:
		return e.Code == codes.Unavailable
	case ErrResourceExhausted:
		return e.Code == codes.ResourceExhausted
	case context.Canceled:
		return e.Code == codes.Canceled
	case context.DeadlineExceeded:
		return e.Code == codes.DeadlineExceeded
	}
	return false
}

// errorFromStatus builds an *Error from a status and its details; nil for OK.
func errorFromStatus(st *status.Status) *Error {
	if st == nil || st.Code() == codes.OK {
		return nil
	}
	e := &Error{Code: st.Code(), Message: st.Message(), status: st}
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			if e.Reason == "" {
				e.Reason = d.GetReason()
			}
		case *errdetails.BadRequest:
			if violations := d.GetFieldViolations(); len(violations) > 0 && e.Field == "" {
				e.Field = violations[0].GetField()
			}
		}
	}
	return e
}

// errorFromProto converts a google.rpc.Status carried in a message (a Confirmation).
func errorFromProto(s *rpcstatus.Status) *Error {
	if s == nil {
		return nil
	}
	return errorFromStatus(status.FromProto(s))
}

// wrapError turns an error from a gRPC call into an *Error; other errors (nil included)
// are returned as they are.
func wrapError(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	return errorFromStatus(st)
}

// invalidArgument is a client-side INVALID_ARGUMENT, shaped like the server's.
func invalidArgument(field, message string) *Error {
	return &Error{
		Code:    codes.InvalidArgument,
		Reason:  ReasonInvalidArgument,
		Field:   field,
		Message: field + ": " + message,
	}
}

// NonRetryableError marks a handler failure as permanent: the job goes to DEAD at once,
// whatever attempts it has left. Build one with NonRetryable; detect one with errors.As.
type NonRetryableError struct {
	Err error
}

// Error implements error.
func (e *NonRetryableError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *NonRetryableError) Unwrap() error { return e.Err }

// NonRetryable wraps err so that the worker fails the job non-retryably (it goes to
// DEAD). NonRetryable(nil) is nil.
func NonRetryable(err error) error {
	if err == nil {
		return nil
	}
	return &NonRetryableError{Err: err}
}

// IsNonRetryable reports whether err (or an error it wraps) was marked with NonRetryable.
func IsNonRetryable(err error) bool {
	var nr *NonRetryableError
	return errors.As(err, &nr)
}

// RetryAfterError asks for the next attempt after Delay instead of the job's backoff
// policy (useful for rate-limited APIs that say when to come back). Build one with
// RetryAfter.
type RetryAfterError struct {
	Err   error
	Delay time.Duration
}

// Error implements error.
func (e *RetryAfterError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter wraps err so that the worker fails the job retryably with the next attempt
// due after delay (if the job has attempts left). RetryAfter(nil, d) is nil.
func RetryAfter(err error, delay time.Duration) error {
	if err == nil {
		return nil
	}
	return &RetryAfterError{Err: err, Delay: delay}
}
