package jobqueue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// streamCloseTimeout bounds how long Close waits, after the half-close, for the server to
// answer what is left on a stream (batches whose callers gave up) and end it. It is longer
// than the server's own bound on a write (3 s by default), so a working server gets there;
// one that does not must not hold Close for ever, and its stream is then cancelled.
const streamCloseTimeout = 5 * time.Second

// errStreamUnsupported is a send's error when the server has no EnqueueStream
// (UNIMPLEMENTED): nothing was written, and the batch goes again as a unary call.
var errStreamUnsupported = errors.New("jobqueue: the server has no EnqueueStream")

// enqueueStream carries one durability level's batches on an EnqueueStream, one message
// per batch. A message costs the server a fraction of a unary call, and a batch need not
// wait for the answer to the one before it. Levels have a stream each because the server
// answers a stream in order: an fsynced batch waiting for the disk would otherwise hold up
// the answers to every batch sent after it. The stream is opened by the first batch, and
// again by the first after it breaks.
type enqueueStream struct {
	stub jobqueuev1.JobQueueServiceClient

	mu   sync.Mutex
	conn *streamConn // nil until a batch opens one, and again once it has ended
}

// streamConn is one EnqueueStream call. Its own goroutine opens it and reads the answers;
// the batches' goroutines send on it, one at a time.
type streamConn struct {
	cancel context.CancelFunc
	opened chan struct{} // closed once the call is made, or has failed (err says why)
	ended  chan struct{} // closed once the reader is done and every batch has its answer
	// sendSlot holds a token while a batch sends: Send is not safe for concurrent use, and
	// the sequences must go out in the order they were given. A channel, not a mutex, so a
	// batch waiting its turn can give up with its context.
	sendSlot chan struct{}
	cs       grpc.BidiStreamingClient[jobqueuev1.EnqueueStreamRequest, jobqueuev1.EnqueueStreamResponse]

	mu       sync.Mutex
	sequence uint64           // the last one sent
	waiting  []*streamRequest // sent and not yet answered, in the order sent
	err      error            // why the stream ended; set once, before anything fails
}

// streamRequest is one message waiting for its answer.
type streamRequest struct {
	sequence uint64
	answer   chan streamAnswer // buffered: the reader never waits for a batch that gave up
}

type streamAnswer struct {
	responses []*jobqueuev1.EnqueueResponse
	err       error
}

// send sends requests as one message and waits for its answer: one response per job, or
// the error that refused them all. When ctx ends first the stream goes on, and the jobs
// may still be written (the error says so). errStreamUnsupported means that nothing was.
func (s *enqueueStream) send(ctx context.Context, requests []*jobqueuev1.EnqueueRequest) ([]*jobqueuev1.EnqueueResponse, error) {
	answer, err := s.current().post(ctx, requests)
	if err != nil {
		return nil, err
	}
	select {
	case a := <-answer:
		return a.responses, a.err
	case <-ctx.Done():
		return nil, unansweredError(ctx.Err())
	}
}

// current returns the open stream, opening one if there is none.
func (s *enqueueStream) current() *streamConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		ctx, cancel := context.WithCancel(context.Background())
		s.conn = &streamConn{
			cancel:   cancel,
			opened:   make(chan struct{}),
			ended:    make(chan struct{}),
			sendSlot: make(chan struct{}, 1),
		}
		go s.run(ctx, s.conn)
	}
	return s.conn
}

// run opens c, reads its answers until it ends, then answers every batch still waiting
// with the reason, and lets the next batch open a new stream.
func (s *enqueueStream) run(ctx context.Context, c *streamConn) {
	defer close(c.ended)
	cs, err := s.stub.EnqueueStream(ctx)
	if err != nil {
		c.end(err)
		close(c.opened)
	} else {
		c.cs = cs // before opened is closed: the senders read it after
		close(c.opened)
		c.end(c.read())
	}
	s.mu.Lock()
	if s.conn == c {
		s.conn = nil
	}
	s.mu.Unlock()
}

// close half-closes the stream, once the batcher has no batch left to send, and waits
// for the server to answer what is on it and end it.
func (s *enqueueStream) close() {
	s.mu.Lock()
	c := s.conn
	s.conn = nil
	s.mu.Unlock()
	if c == nil {
		return
	}
	timer := time.AfterFunc(streamCloseTimeout, c.cancel)
	defer timer.Stop()
	<-c.opened
	c.sendSlot <- struct{}{}
	if c.cs != nil {
		_ = c.cs.CloseSend()
	}
	<-c.sendSlot
	<-c.ended
}

// post sends requests as the stream's next message; its answer comes on the channel.
func (c *streamConn) post(ctx context.Context, requests []*jobqueuev1.EnqueueRequest) (<-chan streamAnswer, error) {
	select {
	case <-c.opened:
	case <-ctx.Done():
		return nil, contextError(ctx.Err()) // nothing sent
	}
	select {
	case c.sendSlot <- struct{}{}:
		defer func() { <-c.sendSlot }()
	case <-ctx.Done():
		return nil, contextError(ctx.Err())
	}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	c.sequence++
	r := &streamRequest{sequence: c.sequence, answer: make(chan streamAnswer, 1)}
	c.waiting = append(c.waiting, r)
	c.mu.Unlock()
	// A Send that fails has ended the stream: the reader then answers r with the reason.
	_ = c.cs.Send(&jobqueuev1.EnqueueStreamRequest{Sequence: r.sequence, Requests: requests})
	return r.answer, nil
}

// read hands each answer to its batch until the stream ends; it returns why it ended.
func (c *streamConn) read() error {
	for {
		resp, err := c.cs.Recv()
		if err != nil {
			return err
		}
		c.mu.Lock()
		if len(c.waiting) == 0 || c.waiting[0].sequence != resp.GetSequence() {
			c.mu.Unlock()
			// Nothing after it can be matched to its batch either: drop the stream.
			return &Error{Code: codes.Unavailable, Message: fmt.Sprintf(
				"the server answered enqueue stream message %d out of turn; the jobs may be enqueued", resp.GetSequence())}
		}
		r := c.waiting[0]
		c.waiting[0] = nil
		c.waiting = c.waiting[1:]
		c.mu.Unlock()
		r.answer <- answerOf(resp)
	}
}

// end records why the stream ended, cancels it, and gives every unanswered batch that
// reason: written or not, nobody can tell. A refusal that names a job (the server ends the
// stream on a message naming a queue outside the token's patterns) is the batch's own when
// it was the only one unanswered; with several, it may be another's (sharedStreamError).
func (c *streamConn) end(err error) {
	err = streamEndError(err)
	shared := err
	if e, ok := err.(*Error); ok {
		shared = &sharedStreamError{e}
	}
	c.cancel()
	c.mu.Lock()
	c.err = shared // a batch that comes after the end was not sent: it is never its refusal
	waiting := c.waiting
	c.waiting = nil
	c.mu.Unlock()
	answer := shared
	if len(waiting) == 1 {
		answer = err
	}
	for _, r := range waiting {
		r.answer <- streamAnswer{err: answer}
	}
}

// sharedStreamError is the error of a batch that was one of several unanswered on a stream
// that ended with it: it may be the refusal of another batch's job, so it is not read as
// one of this batch's (see jobError). The batch's callers get the *Error inside.
type sharedStreamError struct{ err *Error }

func (e *sharedStreamError) Error() string { return e.err.Error() }

func (e *sharedStreamError) Unwrap() error { return e.err }

// callerError is err as a caller gets it: the stream's *Error, not the batcher's mark on it.
func callerError(err error) error {
	if shared, ok := err.(*sharedStreamError); ok {
		return shared.err
	}
	return err
}

// streamEndError is the error the batches of an ended stream get.
func streamEndError(err error) error {
	if errors.Is(err, io.EOF) { // ended with OK: after the half-close, or before answering
		return &Error{Code: codes.Unavailable, Message: "the enqueue stream ended before answering; the jobs may be enqueued"}
	}
	if status.Code(err) == codes.Unimplemented {
		return errStreamUnsupported
	}
	return wrapError(err)
}

// answerOf reads one answer: the jobs' responses, or the error that refused them all.
func answerOf(resp *jobqueuev1.EnqueueStreamResponse) streamAnswer {
	if e := errorFromProto(resp.GetError()); e != nil {
		return streamAnswer{err: e}
	}
	return streamAnswer{responses: resp.GetResponses()}
}

// unansweredError is the error of a job whose deadline passed after it was sent (on a
// stream the message goes on; a call may have been written before it was cancelled), which
// says that the job may still be enqueued; for a cancelled context, its error.
func unansweredError(ctxErr error) error {
	if errors.Is(ctxErr, context.DeadlineExceeded) {
		return wrapError(status.Error(codes.DeadlineExceeded, "no answer before the deadline; the job may still be enqueued"))
	}
	return contextError(ctxErr)
}
