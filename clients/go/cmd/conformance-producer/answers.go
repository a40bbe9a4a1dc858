package main

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/status"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

type enqueueAnswer struct {
	JobID     string `json:"job_id"`
	Duplicate bool   `json:"duplicate"`
}

func enqueued(r jobqueue.EnqueueResult) enqueueAnswer {
	return enqueueAnswer{JobID: r.JobID, Duplicate: r.Duplicate}
}

type statsAnswer struct {
	Queue     string `json:"queue"`
	Queued    int64  `json:"queued"`
	Scheduled int64  `json:"scheduled"`
	Active    int64  `json:"active"`
	Completed int64  `json:"completed"`
	Dead      int64  `json:"dead"`
	Cancelled int64  `json:"cancelled"`
}

type jobAnswer struct {
	ID          string            `json:"id"`
	Queue       string            `json:"queue"`
	State       string            `json:"state"`
	Attempts    int               `json:"attempts"`
	MaxAttempts int               `json:"max_attempts"`
	Payload     map[string]any    `json:"payload"` // null when the job has none
	Result      map[string]any    `json:"result"`
	Metadata    map[string]string `json:"metadata"`
	LastError   string            `json:"last_error"`
	Errors      []string          `json:"errors"` // the failed attempts' messages, oldest first
}

func jobOf(j *jobqueue.Job) *jobAnswer {
	if j == nil {
		return nil
	}
	a := &jobAnswer{
		ID:          j.ID,
		Queue:       j.Queue,
		State:       strings.ToLower(string(j.State)),
		Attempts:    j.Attempts,
		MaxAttempts: j.MaxAttempts,
		Payload:     j.Payload,
		Result:      j.Result,
		Metadata:    map[string]string{},
		LastError:   j.LastError,
		Errors:      []string{},
	}
	for k, v := range j.Metadata {
		a.Metadata[k] = v
	}
	for _, e := range j.Errors {
		a.Errors = append(a.Errors, e.Message)
	}
	return a
}

type errorAnswer struct {
	Type   string `json:"type"`
	Reason string `json:"reason"`
	Code   string `json:"code"`
	Field  string `json:"field"`
}

type named struct {
	name string
	err  error
}

// perReason are the library's per-reason sentinels: errors.Is matches one of them, and
// only one, for every error whose status carried a reason.
var perReason = []named{
	{"ErrInvalidArgument", jobqueue.ErrInvalidArgument},
	{"ErrNotFound", jobqueue.ErrNotFound},
	{"ErrLeaseLost", jobqueue.ErrLeaseLost},
	{"ErrWrongState", jobqueue.ErrWrongState},
	{"ErrDurabilityUnavailable", jobqueue.ErrDurabilityUnavailable},
	{"ErrFsyncNotConfirmed", jobqueue.ErrFsyncNotConfirmed},
	{"ErrReplicationNotConfirmed", jobqueue.ErrReplicationNotConfirmed},
	{"ErrStoreUnavailable", jobqueue.ErrStoreUnavailable},
	{"ErrStoreFull", jobqueue.ErrStoreFull},
	{"ErrServerShuttingDown", jobqueue.ErrServerShuttingDown},
	{"ErrInternal", jobqueue.ErrInternal},
	{"ErrTokenMissing", jobqueue.ErrTokenMissing},
	{"ErrTokenInvalid", jobqueue.ErrTokenInvalid},
	{"ErrTokenExpired", jobqueue.ErrTokenExpired},
	{"ErrRoleNotAllowed", jobqueue.ErrRoleNotAllowed},
	{"ErrQueueNotAllowed", jobqueue.ErrQueueNotAllowed},
	{"ErrTokenNotFound", jobqueue.ErrTokenNotFound},
	{"ErrTokenLimitReached", jobqueue.ErrTokenLimitReached},
	{"ErrQueueLimitReached", jobqueue.ErrQueueLimitReached},
	{"ErrScheduleNotFound", jobqueue.ErrScheduleNotFound},
	{"ErrScheduleExists", jobqueue.ErrScheduleExists},
	{"ErrScheduleLimitReached", jobqueue.ErrScheduleLimitReached},
}

// byCode name an error without a reason.
var byCode = []named{
	{"ErrUnavailable", jobqueue.ErrUnavailable},
	{"ErrResourceExhausted", jobqueue.ErrResourceExhausted},
	{"ErrUnauthenticated", jobqueue.ErrUnauthenticated},
	{"ErrPermissionDenied", jobqueue.ErrPermissionDenied},
	{"context.DeadlineExceeded", context.DeadlineExceeded},
	{"context.Canceled", context.Canceled},
}

// typeName is the name of the per-reason sentinel err matches (all of them, joined by
// "|", if the library were to match several), else of its code-level one, else "Error".
func typeName(err error) string {
	var names []string
	for _, s := range perReason {
		if errors.Is(err, s.err) {
			names = append(names, s.name)
		}
	}
	if len(names) > 0 {
		return strings.Join(names, "|")
	}
	for _, s := range byCode {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	return "Error"
}

// answerFor builds the line for a command's outcome; an error that is neither the
// library's nor a context's is returned, as the kit cannot have asked for it.
func answerFor(value any, err error) (any, error) {
	if err == nil {
		return map[string]any{"ok": value}, nil
	}
	answer := errorAnswer{Type: typeName(err), Reason: jobqueuev1.ErrorReason_ERROR_REASON_UNSPECIFIED.String()}
	var e *jobqueue.Error
	switch {
	case errors.As(err, &e):
		answer.Reason, answer.Field, answer.Code = e.Reason.String(), e.Field, code.Code(e.Code).String()
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		answer.Code = code.Code(status.FromContextError(err).Code()).String()
	default:
		return nil, err
	}
	return map[string]any{"error": answer}, nil
}
