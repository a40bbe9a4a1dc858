package jobqueue_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// callLog records every Enqueue and EnqueueBatch call and every EnqueueStream message a
// client sends, through its interceptors. It holds the answer to the one carrying the job of
// holdQueue until release is closed: with that batch in flight, a test can gather the next
// and look at it. A call is held before it goes out; a stream message once its answer has
// come, which holds up the answers after it on its stream (the server answers in order).
type callLog struct {
	holdQueue string
	held      chan struct{} // a value for each held call or answer
	release   chan struct{}

	mu      sync.Mutex
	calls   []*loggedCall
	streams int // EnqueueStreams opened
}

type loggedCall struct {
	method       string // Enqueue, EnqueueBatch, or EnqueueStream for a stream's message
	queues       []string
	durabilities []jobqueuev1.Durability
	deadline     time.Time // a call's; a stream message has none of its own
	answered     bool
	err          error
}

func newCallLog(t *testing.T) *callLog {
	l := &callLog{holdQueue: uniqueQueue(t) + "-held", held: make(chan struct{}, 8), release: make(chan struct{})}
	t.Cleanup(l.releaseHeld)
	return l
}

func (l *callLog) releaseHeld() {
	select {
	case <-l.release:
	default:
		close(l.release)
	}
}

// record logs a call or message as it is sent.
func (l *callLog) record(method string, requests []*jobqueuev1.EnqueueRequest, deadline time.Time) *loggedCall {
	call := &loggedCall{method: method, deadline: deadline}
	for _, r := range requests {
		call.queues = append(call.queues, r.GetQueue())
		call.durabilities = append(call.durabilities, r.GetDurability())
	}
	l.mu.Lock()
	l.calls = append(l.calls, call)
	l.mu.Unlock()
	return call
}

// answer logs call's answer.
func (l *callLog) answer(call *loggedCall, err error) {
	l.mu.Lock()
	call.answered, call.err = true, err
	l.mu.Unlock()
}

// hold holds call (a unary call before it goes out, a stream message once answered) when it
// carries the held job, until the log releases it.
func (l *callLog) hold(call *loggedCall) {
	if call.queues[0] == l.holdQueue {
		l.held <- struct{}{}
		<-l.release
	}
}

func (l *callLog) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	var requests []*jobqueuev1.EnqueueRequest
	switch r := req.(type) {
	case *jobqueuev1.EnqueueRequest:
		requests = []*jobqueuev1.EnqueueRequest{r}
	case *jobqueuev1.EnqueueBatchRequest:
		requests = r.GetRequests()
	default:
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	deadline, _ := ctx.Deadline()
	call := l.record(method[strings.LastIndex(method, "/")+1:], requests, deadline)
	l.hold(call)
	err := invoker(ctx, method, req, reply, cc, opts...)
	l.answer(call, err)
	return err
}

func (l *callLog) interceptStream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cs, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil || method != jobqueuev1.JobQueueService_EnqueueStream_FullMethodName {
		return cs, err
	}
	l.mu.Lock()
	l.streams++
	l.mu.Unlock()
	return &loggedStream{ClientStream: cs, log: l, sent: map[uint64]*loggedCall{}}, nil
}

// loggedStream logs an EnqueueStream's messages and their answers.
type loggedStream struct {
	grpc.ClientStream
	log *callLog

	mu   sync.Mutex
	sent map[uint64]*loggedCall // by sequence
}

func (s *loggedStream) SendMsg(m any) error {
	if req, ok := m.(*jobqueuev1.EnqueueStreamRequest); ok {
		call := s.log.record("EnqueueStream", req.GetRequests(), time.Time{})
		s.mu.Lock()
		s.sent[req.GetSequence()] = call
		s.mu.Unlock()
	}
	return s.ClientStream.SendMsg(m)
}

func (s *loggedStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if resp, ok := m.(*jobqueuev1.EnqueueStreamResponse); ok && err == nil {
		s.mu.Lock()
		call := s.sent[resp.GetSequence()]
		s.mu.Unlock()
		if call != nil {
			s.log.hold(call)
			s.log.answer(call, status.ErrorProto(resp.GetError()))
		}
	}
	return err
}

// snapshot copies the log's entries, sent or answered.
func (l *callLog) snapshot() []loggedCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	calls := make([]loggedCall, len(l.calls))
	for i, c := range l.calls {
		calls[i] = *c
	}
	return calls
}

// sent returns the calls and messages sent so far that carried a job of queue.
func (l *callLog) sent(queue string) []loggedCall {
	var found []loggedCall
	for _, c := range l.snapshot() {
		if slices.Contains(c.queues, queue) {
			found = append(found, c)
		}
	}
	return found
}

// carrying returns the calls and messages answered so far that carried a job of queue.
func (l *callLog) carrying(queue string) []loggedCall {
	var found []loggedCall
	for _, c := range l.sent(queue) {
		if c.answered {
			found = append(found, c)
		}
	}
	return found
}

// streamsOpened counts the EnqueueStreams the client opened.
func (l *callLog) streamsOpened() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.streams
}

// batchingClient dials the test server (or addr) with batching b and the log's interceptor.
func batchingClient(t *testing.T, addr string, b jobqueue.Batching, log *callLog) *jobqueue.Client {
	t.Helper()
	if addr == "" {
		if serverAddr == "" {
			t.Skip(skipReason)
		}
		addr = serverAddr
	}
	client, err := jobqueue.Dial(addr, jobqueue.WithBatching(b), jobqueue.WithDialOptions(
		grpc.WithUnaryInterceptor(log.intercept), grpc.WithStreamInterceptor(log.interceptStream)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

type outcome struct {
	res jobqueue.EnqueueResult
	err error
}

// enqueueAsync runs Enqueue on a goroutine of its own; its outcome comes on the channel.
func enqueueAsync(ctx context.Context, client *jobqueue.Client, queue string, opts ...jobqueue.EnqueueOption) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		res, err := client.Enqueue(ctx, queue, map[string]any{"q": queue}, opts...)
		ch <- outcome{res, err}
	}()
	return ch
}

// holdABatch sends the log's held job, which is sent at once (nothing of its durability
// level is in flight) and stays unanswered until the log releases it; its outcome comes on
// the channel.
func holdABatch(t *testing.T, client *jobqueue.Client, log *callLog, opts ...jobqueue.EnqueueOption) <-chan outcome {
	t.Helper()
	ch := enqueueAsync(testContext(t), client, log.holdQueue, opts...)
	select {
	case <-log.held:
	case o := <-ch:
		t.Fatalf("the held job was answered: %+v", o)
	}
	return ch
}

// waitPending waits until n jobs wait for their batch to be sent.
func waitPending(t *testing.T, client *jobqueue.Client, n int) {
	t.Helper()
	eventually(t, "jobs join the next batch", func() bool { return client.PendingJobs() == n })
}

// receive waits for an outcome, failing the test if it does not come.
func receive(t *testing.T, ch <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(waitTimeout):
		t.Fatal("no answer")
		return outcome{}
	}
}
