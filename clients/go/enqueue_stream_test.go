package jobqueue

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// scriptedStub opens EnqueueStreams whose answers the test writes.
type scriptedStub struct {
	jobqueuev1.JobQueueServiceClient
	opened chan *scriptedStream
}

func (s *scriptedStub) EnqueueStream(ctx context.Context, _ ...grpc.CallOption) (grpc.BidiStreamingClient[jobqueuev1.EnqueueStreamRequest, jobqueuev1.EnqueueStreamResponse], error) {
	st := &scriptedStream{ctx: ctx, sent: make(chan *jobqueuev1.EnqueueStreamRequest, 8), recv: make(chan scripted, 8)}
	s.opened <- st
	return st, nil
}

// scriptedStream hands the test each message sent, and returns what the test puts in recv.
type scriptedStream struct {
	grpc.ClientStream
	ctx  context.Context
	sent chan *jobqueuev1.EnqueueStreamRequest
	recv chan scripted
}

type scripted struct {
	resp *jobqueuev1.EnqueueStreamResponse
	err  error
}

func (s *scriptedStream) Send(req *jobqueuev1.EnqueueStreamRequest) error {
	s.sent <- req
	return nil
}

func (s *scriptedStream) CloseSend() error {
	s.recv <- scripted{err: io.EOF}
	return nil
}

func (s *scriptedStream) Recv() (*jobqueuev1.EnqueueStreamResponse, error) {
	select {
	case r := <-s.recv:
		return r.resp, r.err
	case <-s.ctx.Done():
		return nil, status.FromContextError(s.ctx.Err()).Err()
	}
}

// answer answers req with one job id per job.
func (s *scriptedStream) answer(req *jobqueuev1.EnqueueStreamRequest) {
	s.recv <- scripted{resp: &jobqueuev1.EnqueueStreamResponse{Sequence: req.GetSequence(), Responses: heldResponses(len(req.GetRequests()))}}
}

type sendOutcome struct {
	responses []*jobqueuev1.EnqueueResponse
	err       error
}

// sendAsync sends one job on s from a goroutine of its own, with ctx.
func sendAsync(ctx context.Context, s *enqueueStream) chan sendOutcome {
	done := make(chan sendOutcome, 1)
	go func() {
		responses, err := s.send(ctx, []*jobqueuev1.EnqueueRequest{{Queue: "q"}})
		done <- sendOutcome{responses, err}
	}()
	return done
}

func newScripted(t *testing.T) (*scriptedStub, *enqueueStream) {
	stub := &scriptedStub{opened: make(chan *scriptedStream, 4)}
	s := &enqueueStream{stub: stub}
	t.Cleanup(s.close)
	return stub, s
}

func TestACallerDeadlinePassesWhileTheStreamGoesOn(t *testing.T) {
	stub, s := newScripted(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	late := sendAsync(ctx, s)
	st := <-stub.opened
	first := <-st.sent

	o := <-late
	var e *Error
	if !errors.Is(o.err, context.DeadlineExceeded) || !errors.As(o.err, &e) || !strings.Contains(e.Message, "may still be enqueued") {
		t.Fatalf("err = %v, want DEADLINE_EXCEEDED saying the jobs may still be enqueued", o.err)
	}
	st.answer(first) // late: nobody waits for it any more
	next := sendAsync(context.Background(), s)
	st.answer(<-st.sent)
	if o := <-next; o.err != nil || len(o.responses) != 1 {
		t.Fatalf("the next batch on the stream: %+v", o)
	}
	if len(stub.opened) != 0 {
		t.Error("a second stream was opened")
	}
}

func TestABrokenStreamFailsEveryUnansweredBatchAndTheNextOpensAnother(t *testing.T) {
	stub, s := newScripted(t)
	a := sendAsync(context.Background(), s)
	st := <-stub.opened
	<-st.sent
	b := sendAsync(context.Background(), s)
	<-st.sent

	st.recv <- scripted{err: status.Error(codes.Unavailable, "connection reset")}

	for _, ch := range []chan sendOutcome{a, b} {
		if o := <-ch; !errors.Is(o.err, ErrUnavailable) {
			t.Errorf("err = %v, want the stream's UNAVAILABLE", o.err)
		}
	}
	next := sendAsync(context.Background(), s)
	reopened := <-stub.opened
	req := <-reopened.sent
	reopened.answer(req)
	if o := <-next; o.err != nil || req.GetSequence() != 1 {
		t.Errorf("on the new stream: %+v, sequence %d", o, req.GetSequence())
	}
}

func TestAnAnswerOutOfTurnDropsTheStream(t *testing.T) {
	stub, s := newScripted(t)
	a := sendAsync(context.Background(), s)
	st := <-stub.opened
	<-st.sent
	b := sendAsync(context.Background(), s)
	second := <-st.sent

	st.answer(second) // the first is not answered yet

	for _, ch := range []chan sendOutcome{a, b} {
		if o := <-ch; !errors.Is(o.err, ErrUnavailable) || o.responses != nil {
			t.Errorf("outcome %+v, want UNAVAILABLE and no job", o)
		}
	}
	select {
	case <-st.ctx.Done():
	case <-time.After(10 * time.Second):
		t.Error("the stream was not cancelled")
	}
}

func TestARefusedMessageFailsOnlyItsBatch(t *testing.T) {
	stub, s := newScripted(t)
	a := sendAsync(context.Background(), s)
	st := <-stub.opened
	first := <-st.sent
	b := sendAsync(context.Background(), s)
	second := <-st.sent

	refusal := status.New(codes.InvalidArgument, "requests[0].queue: is required").Proto()
	st.recv <- scripted{resp: &jobqueuev1.EnqueueStreamResponse{Sequence: first.GetSequence(), Error: refusal}}
	st.answer(second)

	var e *Error
	if o := <-a; !errors.As(o.err, &e) || e.Code != codes.InvalidArgument || e.Message != refusal.GetMessage() {
		t.Errorf("the refused batch: %+v", o)
	}
	if o := <-b; o.err != nil || len(o.responses) != 1 {
		t.Errorf("the next batch: %+v", o)
	}
}

// queueRefusal is the status the server ends an EnqueueStream with when a message names a
// queue outside the token's patterns.
func queueRefusal(t *testing.T) error {
	t.Helper()
	st, err := status.New(codes.PermissionDenied, "requests[0].queue: queue 'x' is outside this token's queues").WithDetails(
		&errdetails.ErrorInfo{Reason: "QUEUE_NOT_ALLOWED", Domain: ErrorDomain},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "requests[0].queue"}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	return st.Err()
}

func TestAStreamEndedByAJobsRefusalIsTheOnlyUnansweredBatchs(t *testing.T) {
	stub, s := newScripted(t)
	a := sendAsync(context.Background(), s)
	st := <-stub.opened
	<-st.sent
	conn := s.current() // the open stream

	st.recv <- scripted{err: queueRefusal(t)}

	o := <-a
	if i, e := jobError(o.err, 1); i != 0 || e.Field != "queue" {
		t.Errorf("err = %v, read as job %d's", o.err, i)
	}
	// A batch that took the stream just before it ended is not sent: the refusal is not its
	// job's.
	<-conn.ended
	if _, err := conn.post(context.Background(), []*jobqueuev1.EnqueueRequest{{Queue: "q"}}); err == nil {
		t.Fatal("a post on the ended stream succeeded")
	} else if i, _ := jobError(err, 1); i != -1 {
		t.Errorf("a batch posted after the end: %v read as job %d's", err, i)
	}
}

func TestAStreamEndedByAJobsRefusalWithSeveralUnansweredIsNoJobsOwn(t *testing.T) {
	stub, s := newScripted(t)
	a := sendAsync(context.Background(), s)
	st := <-stub.opened
	<-st.sent
	b := sendAsync(context.Background(), s)
	<-st.sent

	st.recv <- scripted{err: queueRefusal(t)}

	for _, ch := range []chan sendOutcome{a, b} {
		o := <-ch
		if i, _ := jobError(o.err, 1); i != -1 {
			t.Errorf("err = %v, read as job %d's", o.err, i)
		}
		// Its callers get the stream's error as it came.
		var e *Error
		if err := callerError(o.err); !errors.As(err, &e) || err != error(e) || !errors.Is(err, ErrQueueNotAllowed) || e.Field != "requests[0].queue" {
			t.Errorf("callers get %#v", err)
		}
	}
}

func TestAStreamUnimplementedIsReportedAsUnsupported(t *testing.T) {
	stub, s := newScripted(t)
	a := sendAsync(context.Background(), s)
	st := <-stub.opened
	<-st.sent

	st.recv <- scripted{err: status.Error(codes.Unimplemented, "unknown method")}

	if o := <-a; !errors.Is(o.err, errStreamUnsupported) {
		t.Errorf("err = %v, want errStreamUnsupported", o.err)
	}
}
