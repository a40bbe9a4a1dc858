package jobqueue

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// ErrorDomain is the google.rpc.ErrorInfo domain of the server's errors. An ErrorInfo of
// another domain (added by a proxy, say) is not read as a reason.
const ErrorDomain = "jobqueue.dev"

// Sentinel errors, one per ErrorReason of the contract (error_reason.proto says what each
// means and what to do), matched with errors.Is against any error this package returns.
// Exactly one of them matches an error whose status carried a reason.
var (
	// ErrInvalidArgument (INVALID_ARGUMENT): a request field breaks a rule; Error.Field
	// names it. Nothing was changed; fix the request.
	ErrInvalidArgument = errors.New("jobqueue: invalid argument")
	// ErrNotFound (JOB_NOT_FOUND): no job has this id (never did, or it is past its
	// retention window).
	ErrNotFound = errors.New("jobqueue: job not found")
	// ErrLeaseLost (LEASE_LOST): the lease token is no longer current (the lease expired
	// and the job went back to its queue or to another worker, or the job was settled
	// already). Drop the result.
	ErrLeaseLost = errors.New("jobqueue: lease lost")
	// ErrWrongState (WRONG_STATE): the job's state does not allow the call (cancel an
	// active job, retry a queued one, ...).
	ErrWrongState = errors.New("jobqueue: wrong state")
	// ErrDurabilityUnavailable (DURABILITY_UNAVAILABLE): DurabilityFsynced or
	// DurabilityReplicated was asked for (or is the server default) but Redis cannot confirm
	// writes on disk, or the primary has too few replicas. Nothing was written.
	ErrDurabilityUnavailable = errors.New("jobqueue: durability unavailable")
	// ErrFsyncNotConfirmed (FSYNC_NOT_CONFIRMED): an fsynced write was applied but not
	// confirmed on disk in time. Also ErrUnavailable: retry (with an idempotency key for
	// Enqueue, which then finds the first job).
	ErrFsyncNotConfirmed = errors.New("jobqueue: fsync not confirmed")
	// ErrReplicationNotConfirmed (REPLICATION_NOT_CONFIRMED): a replicated write was applied
	// on the primary but its replicas did not confirm it in time; a failover now may lose
	// it. Also ErrUnavailable: retry as for ErrFsyncNotConfirmed.
	ErrReplicationNotConfirmed = errors.New("jobqueue: replication not confirmed")
	// ErrStoreUnavailable (STORE_UNAVAILABLE): Redis could not be reached or did not answer
	// in time; the write may or may not have happened. Also ErrUnavailable.
	ErrStoreUnavailable = errors.New("jobqueue: store unavailable")
	// ErrStoreFull (STORE_FULL): Redis is out of memory and refused the write. Also
	// ErrResourceExhausted.
	ErrStoreFull = errors.New("jobqueue: store full")
	// ErrServerShuttingDown (SERVER_SHUTTING_DOWN): the server is stopping; reconnect,
	// to another server if there is one. Also ErrUnavailable.
	ErrServerShuttingDown = errors.New("jobqueue: server shutting down")
	// ErrInternal (INTERNAL): the server met a state it does not understand. Report it.
	ErrInternal = errors.New("jobqueue: internal server error")
	// ErrTokenMissing (TOKEN_MISSING): the server requires a token and the call carried
	// none; give one with WithToken or JOBQ_TOKEN. Also ErrUnauthenticated.
	ErrTokenMissing = errors.New("jobqueue: token missing")
	// ErrTokenInvalid (TOKEN_INVALID): the server does not know the token (malformed, never
	// issued, or revoked). Do not retry with it. Also ErrUnauthenticated.
	ErrTokenInvalid = errors.New("jobqueue: token invalid")
	// ErrTokenExpired (TOKEN_EXPIRED): the token's expiry time has passed; get a new one.
	// Also ErrUnauthenticated.
	ErrTokenExpired = errors.New("jobqueue: token expired")
	// ErrRoleNotAllowed (ROLE_NOT_ALLOWED): the token's role may not call this method.
	// Nothing was changed. Also ErrPermissionDenied.
	ErrRoleNotAllowed = errors.New("jobqueue: role not allowed")
	// ErrQueueNotAllowed (QUEUE_NOT_ALLOWED): the request names a queue the token may not
	// use; Error.Field names the field. Nothing was changed. Also ErrPermissionDenied.
	ErrQueueNotAllowed = errors.New("jobqueue: queue not allowed")
	// ErrTokenNotFound (TOKEN_NOT_FOUND): RevokeToken named a token id that does not exist
	// (never issued, or revoked already). Nothing was changed.
	ErrTokenNotFound = errors.New("jobqueue: token not found")
	// ErrTokenLimitReached (TOKEN_LIMIT_REACHED): CreateToken was refused because the server
	// holds as many tokens as it allows. Nothing was changed; revoke unused tokens first.
	// Also ErrResourceExhausted.
	ErrTokenLimitReached = errors.New("jobqueue: token limit reached")
	// ErrQueueLimitReached (QUEUE_LIMIT_REACHED): the request would create a queue while the
	// server's max_queues exist already. Nothing was written; use an existing queue, or ask
	// the operator to raise the limit. Also ErrResourceExhausted.
	ErrQueueLimitReached = errors.New("jobqueue: queue limit reached")
	// ErrScheduleNotFound (SCHEDULE_NOT_FOUND): no schedule has the name the request gives
	// (never created, or deleted). Nothing was changed. Not ErrNotFound, which is a job's.
	ErrScheduleNotFound = errors.New("jobqueue: schedule not found")
	// ErrScheduleExists (SCHEDULE_EXISTS): CreateSchedule named a schedule that exists.
	// Nothing was changed; use UpdateSchedule to change it, or another name.
	ErrScheduleExists = errors.New("jobqueue: schedule exists")
	// ErrScheduleLimitReached (SCHEDULE_LIMIT_REACHED): CreateSchedule was refused because
	// the server's max_schedules exist already. Nothing was changed; delete unused schedules
	// first. Also ErrResourceExhausted.
	ErrScheduleLimitReached = errors.New("jobqueue: schedule limit reached")
	// ErrWebhookNotFound (WEBHOOK_NOT_FOUND): no webhook has the id the request gives (never
	// created, or deleted). Nothing was changed. Not ErrNotFound, which is a job's.
	ErrWebhookNotFound = errors.New("jobqueue: webhook not found")
	// ErrWebhookLimitReached (WEBHOOK_LIMIT_REACHED): CreateWebhook was refused because the
	// server holds as many webhooks as it allows (100). Nothing was changed; delete unused
	// webhooks first. Also ErrResourceExhausted.
	ErrWebhookLimitReached = errors.New("jobqueue: webhook limit reached")
)

// Sentinel errors by status code, whatever the reason: statuses made by gRPC itself (a
// dropped connection, a deadline) carry no reason.
var (
	// ErrUnavailable: any UNAVAILABLE (the server or its Redis could not be reached, an
	// fsync or a replication not confirmed, a server shutting down); retrying may succeed.
	ErrUnavailable = errors.New("jobqueue: unavailable")
	// ErrResourceExhausted: any RESOURCE_EXHAUSTED (Redis out of memory, a limit of the
	// server's such as max_queues, max_schedules or the 100 webhooks, a message over a size
	// limit, ...).
	ErrResourceExhausted = errors.New("jobqueue: resource exhausted")
	// ErrUnauthenticated: any UNAUTHENTICATED (ErrTokenMissing, ErrTokenInvalid,
	// ErrTokenExpired, or a refusal from a proxy); the same token will be refused again.
	ErrUnauthenticated = errors.New("jobqueue: unauthenticated")
	// ErrPermissionDenied: any PERMISSION_DENIED (ErrRoleNotAllowed, ErrQueueNotAllowed, or
	// a refusal from a proxy); the same call with the same token will be refused again.
	ErrPermissionDenied = errors.New("jobqueue: permission denied")
)

// reasonSentinels gives every ErrorReason value but UNSPECIFIED its sentinel error.
var reasonSentinels = map[jobqueuev1.ErrorReason]error{
	jobqueuev1.ErrorReason_INVALID_ARGUMENT:          ErrInvalidArgument,
	jobqueuev1.ErrorReason_JOB_NOT_FOUND:             ErrNotFound,
	jobqueuev1.ErrorReason_LEASE_LOST:                ErrLeaseLost,
	jobqueuev1.ErrorReason_WRONG_STATE:               ErrWrongState,
	jobqueuev1.ErrorReason_DURABILITY_UNAVAILABLE:    ErrDurabilityUnavailable,
	jobqueuev1.ErrorReason_FSYNC_NOT_CONFIRMED:       ErrFsyncNotConfirmed,
	jobqueuev1.ErrorReason_REPLICATION_NOT_CONFIRMED: ErrReplicationNotConfirmed,
	jobqueuev1.ErrorReason_STORE_UNAVAILABLE:         ErrStoreUnavailable,
	jobqueuev1.ErrorReason_STORE_FULL:                ErrStoreFull,
	jobqueuev1.ErrorReason_SERVER_SHUTTING_DOWN:      ErrServerShuttingDown,
	jobqueuev1.ErrorReason_INTERNAL:                  ErrInternal,
	jobqueuev1.ErrorReason_TOKEN_MISSING:             ErrTokenMissing,
	jobqueuev1.ErrorReason_TOKEN_INVALID:             ErrTokenInvalid,
	jobqueuev1.ErrorReason_TOKEN_EXPIRED:             ErrTokenExpired,
	jobqueuev1.ErrorReason_ROLE_NOT_ALLOWED:          ErrRoleNotAllowed,
	jobqueuev1.ErrorReason_QUEUE_NOT_ALLOWED:         ErrQueueNotAllowed,
	jobqueuev1.ErrorReason_TOKEN_NOT_FOUND:           ErrTokenNotFound,
	jobqueuev1.ErrorReason_TOKEN_LIMIT_REACHED:       ErrTokenLimitReached,
	jobqueuev1.ErrorReason_QUEUE_LIMIT_REACHED:       ErrQueueLimitReached,
	jobqueuev1.ErrorReason_SCHEDULE_NOT_FOUND:        ErrScheduleNotFound,
	jobqueuev1.ErrorReason_SCHEDULE_EXISTS:           ErrScheduleExists,
	jobqueuev1.ErrorReason_SCHEDULE_LIMIT_REACHED:    ErrScheduleLimitReached,
	jobqueuev1.ErrorReason_WEBHOOK_NOT_FOUND:         ErrWebhookNotFound,
	jobqueuev1.ErrorReason_WEBHOOK_LIMIT_REACHED:     ErrWebhookLimitReached,
}

// codeSentinels stand in for a reason when the status carried none (from a proxy, say).
var codeSentinels = map[codes.Code]error{
	codes.InvalidArgument: ErrInvalidArgument,
	codes.NotFound:        ErrNotFound,
}

// Error is a failed call or a refused ack, fail or extend. It wraps the gRPC status:
// status.FromError and status.Code see it, errors.Is matches it against the package's
// sentinel errors (and against context.Canceled and context.DeadlineExceeded for those
// codes), and errors.As extracts it:
//
//	var e *jobqueue.Error
//	if errors.As(err, &e) && e.Field != "" { ... }
type Error struct {
	// Code is the gRPC status code.
	Code codes.Code
	// Reason is the google.rpc.ErrorInfo reason, such as ErrorReason_LEASE_LOST;
	// ERROR_REASON_UNSPECIFIED when the status carried none (a transport error from gRPC
	// itself, for example) or one this version of the package does not know.
	Reason jobqueuev1.ErrorReason
	// Field names the offending request field (google.rpc.BadRequest), for
	// INVALID_ARGUMENT and QUEUE_NOT_ALLOWED; for example "queue" or "requests[2].delay".
	Field string
	// Message is the server's developer-facing message.
	Message string

	status *status.Status
}

// Error implements error.
func (e *Error) Error() string {
	msg := fmt.Sprintf("jobqueue: %s: %s", e.Code, e.Message)
	if e.Reason != jobqueuev1.ErrorReason_ERROR_REASON_UNSPECIFIED {
		msg += " (" + e.Reason.String() + ")"
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
	case nil:
		return false
	case ErrUnavailable:
		return e.Code == codes.Unavailable
	case ErrResourceExhausted:
		return e.Code == codes.ResourceExhausted
	case ErrUnauthenticated:
		return e.Code == codes.Unauthenticated
	case ErrPermissionDenied:
		return e.Code == codes.PermissionDenied
	case context.Canceled:
		return e.Code == codes.Canceled
	case context.DeadlineExceeded:
		return e.Code == codes.DeadlineExceeded
	}
	return target == e.sentinel()
}

// sentinel is the one per-reason sentinel the error matches: its reason's, or for a status
// without a reason, the one its code implies (nil when none does).
func (e *Error) sentinel() error {
	if s, ok := reasonSentinels[e.Reason]; ok {
		return s
	}
	return codeSentinels[e.Code]
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
			if e.Reason == jobqueuev1.ErrorReason_ERROR_REASON_UNSPECIFIED && d.GetDomain() == ErrorDomain {
				e.Reason = parseReason(d.GetReason())
			}
		case *errdetails.BadRequest:
			if violations := d.GetFieldViolations(); len(violations) > 0 && e.Field == "" {
				e.Field = violations[0].GetField()
			}
		}
	}
	return e
}

// parseReason reads an ErrorInfo reason, the name of an ErrorReason value; an unknown name
// (from a newer server) is UNSPECIFIED, so the error maps by its code.
func parseReason(name string) jobqueuev1.ErrorReason {
	return jobqueuev1.ErrorReason(jobqueuev1.ErrorReason_value[name])
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
		Reason:  jobqueuev1.ErrorReason_INVALID_ARGUMENT,
		Field:   field,
		Message: field + ": " + message,
	}
}
