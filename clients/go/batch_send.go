package jobqueue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// send sends bt and answers its callers. A job the server refuses on its own
// (INVALID_ARGUMENT or QUEUE_NOT_ALLOWED naming requests[i], JOB_NOT_FOUND naming
// requests[i].depends_on[j]) fails alone, and the others go again without it; any other
// error fails every job of the batch.
func (b *batcher) send(bt *batch) {
	for {
		responses, err := b.call(bt)
		bt.cancel()
		if err == nil {
			b.deliver(bt.calls, responses, nil)
			return
		}
		i, jobErr := jobError(err, len(bt.calls))
		if i < 0 {
			b.deliver(bt.calls, nil, callerError(err))
			return
		}
		if !b.retryWithout(bt, i, jobErr) {
			return
		}
	}
}

// call sends bt's jobs as one message on its level's EnqueueStream. Without the stream (an
// older server), and for a job larger than MaxBytes (a message the server cannot take
// would end the stream, failing the batches unanswered on it), it makes a unary call: a
// lone job as a plain Enqueue, so its errors are a single enqueue's; more as one
// EnqueueBatch. Each request carries the batch's durability.
func (b *batcher) call(bt *batch) ([]*jobqueuev1.EnqueueResponse, error) {
	requests := make([]*jobqueuev1.EnqueueRequest, len(bt.calls))
	for i, c := range bt.calls {
		requests[i] = c.req
	}
	if !b.unary.Load() && bt.bytes <= b.settings.MaxBytes {
		responses, err := bt.lane.stream.send(bt.ctx, requests)
		if !errors.Is(err, errStreamUnsupported) {
			return checkAnswered(responses, len(requests), err)
		}
		b.useCalls()
	}
	if len(requests) == 1 {
		resp, err := b.stub.Enqueue(bt.ctx, requests[0])
		if err != nil {
			return nil, wrapError(err)
		}
		return []*jobqueuev1.EnqueueResponse{resp}, nil
	}
	resp, err := b.stub.EnqueueBatch(bt.ctx, &jobqueuev1.EnqueueBatchRequest{Requests: requests})
	return checkAnswered(resp.GetResponses(), len(requests), wrapError(err))
}

// checkAnswered passes on a batch's answer, or an error when it does not answer every job.
func checkAnswered(responses []*jobqueuev1.EnqueueResponse, jobs int, err error) ([]*jobqueuev1.EnqueueResponse, error) {
	if err != nil {
		return nil, err
	}
	if len(responses) != jobs {
		return nil, &Error{
			Code:    codes.Internal,
			Reason:  jobqueuev1.ErrorReason_INTERNAL,
			Message: fmt.Sprintf("the server answered %d of %d jobs", len(responses), jobs),
		}
	}
	return responses, nil
}

// deliver answers every caller still waiting, with its response or with err.
func (b *batcher) deliver(calls []*call, responses []*jobqueuev1.EnqueueResponse, err error) {
	b.mu.Lock()
	for _, c := range calls {
		c.answered = !c.abandoned
	}
	b.mu.Unlock()
	for i, c := range calls {
		switch {
		case c.abandoned:
			c.release()
			continue
		case err != nil:
			c.err = err
		default:
			c.result = EnqueueResult{JobID: responses[i].GetJobId(), Duplicate: responses[i].GetDuplicate()}
		}
		c.done <- struct{}{}
	}
}

// retryWithout fails bt's job i with err and keeps the jobs whose callers still wait, for
// another call with their earliest deadline; it reports whether any is left.
func (b *batcher) retryWithout(bt *batch, i int, err error) bool {
	b.mu.Lock()
	refused := bt.calls[i]
	refused.answered = !refused.abandoned
	var gone []*call
	rest := make([]*call, 0, len(bt.calls)-1)
	for j, c := range bt.calls {
		switch {
		case j == i:
		case c.abandoned:
			gone = append(gone, c)
		default:
			rest = append(rest, c)
		}
	}
	bt.calls = rest
	if len(rest) > 0 {
		bt.armLocked()
	}
	b.mu.Unlock()
	for _, c := range gone {
		c.release()
	}
	if refused.abandoned {
		refused.release()
	} else {
		refused.err = err
		refused.done <- struct{}{}
	}
	return len(rest) > 0
}

// jobError reads a batch's error as the refusal of one of its n jobs: its index and the
// error named as for a single enqueue ("queue", not "requests[3].queue"); -1 when the
// error is the whole batch's, or may be another batch's (sharedStreamError).
func jobError(err error, n int) (int, *Error) {
	var shared *sharedStreamError
	var e *Error
	if errors.As(err, &shared) || !errors.As(err, &e) {
		return -1, nil
	}
	rest, ok := strings.CutPrefix(e.Field, "requests[")
	if !ok {
		return -1, nil
	}
	digits, field, ok := strings.Cut(rest, "].")
	i, convErr := strconv.ParseUint(digits, 10, 32) // digits only: no sign, no space
	if !ok || convErr != nil || i >= uint64(n) || field == "" || !refusesOneJob(e, field) {
		return -1, nil
	}
	return int(i), e.renamed(field)
}

// refusesOneJob tells the refusals that name the one job they are about (field is the
// job's, "queue" for "requests[3].queue"): a field breaking a rule, a queue outside the
// token's patterns, or a job to depend on that does not exist (JOB_NOT_FOUND on
// "depends_on[j]"). Nothing of the batch was written.
func refusesOneJob(e *Error, field string) bool {
	return e.Code == codes.InvalidArgument || e.Reason == jobqueuev1.ErrorReason_QUEUE_NOT_ALLOWED ||
		(e.Reason == jobqueuev1.ErrorReason_JOB_NOT_FOUND && strings.HasPrefix(field, "depends_on["))
}

// renamed is a copy of e naming field instead of e.Field, in its message and in its
// status's BadRequest, so that status.FromError tells the same story.
func (e *Error) renamed(field string) *Error {
	out := *e
	out.Field = field
	out.Message = strings.Replace(e.Message, e.Field, field, 1)
	p := proto.Clone(e.GRPCStatus().Proto()).(*rpcstatus.Status)
	p.Message = out.Message
	for i, detail := range p.GetDetails() {
		var bad errdetails.BadRequest
		if !detail.MessageIs(&bad) || detail.UnmarshalTo(&bad) != nil {
			continue
		}
		for _, v := range bad.GetFieldViolations() {
			if v.GetField() == e.Field {
				v.Field = field
			}
		}
		if packed, err := anypb.New(&bad); err == nil {
			p.Details[i] = packed
		}
	}
	out.status = status.FromProto(p)
	return &out
}

// contextError is the error of a call given up because its context ended, shaped like
// gRPC's (CANCELLED or DEADLINE_EXCEEDED; errors.Is matches the context's error).
func contextError(err error) error {
	return wrapError(status.FromContextError(err).Err())
}

// unaryEnqueue is one Enqueue call.
func unaryEnqueue(ctx context.Context, stub jobqueuev1.JobQueueServiceClient, req *jobqueuev1.EnqueueRequest) (EnqueueResult, error) {
	resp, err := stub.Enqueue(ctx, req)
	if err != nil {
		return EnqueueResult{}, wrapError(err)
	}
	return EnqueueResult{JobID: resp.GetJobId(), Duplicate: resp.GetDuplicate()}, nil
}
