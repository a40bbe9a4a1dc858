package jobqueue_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// callLog is a client interceptor that records every Enqueue and EnqueueBatch call, and
// holds the call carrying the job of holdQueue until release is closed: with it in flight,
// a test can gather the next batch and look at it.
type callLog struct {
	holdQueue string
	held      chan struct{} // a value for each held call that arrives
	release   chan struct{}

	mu    sync.Mutex
	calls []loggedCall
}

type loggedCall struct {
	method       string
	queues       []string
	durabilities []jobqueuev1.Durability
	deadline     time.Time
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
	call := loggedCall{method: method[strings.LastIndex(method, "/")+1:]}
	call.deadline, _ = ctx.Deadline()
	for _, r := range requests {
		call.queues = append(call.queues, r.GetQueue())
		call.durabilities = append(call.durabilities, r.GetDurability())
	}
	if call.queues[0] == l.holdQueue {
		l.held <- struct{}{}
		<-l.release
	}
	call.err = invoker(ctx, method, req, reply, cc, opts...)
	l.mu.Lock()
	l.calls = append(l.calls, call)
	l.mu.Unlock()
	return call.err
}

// finished returns the calls answered so far.
func (l *callLog) finished() []loggedCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]loggedCall(nil), l.calls...)
}

// carrying returns the answered calls that carried a job of queue.
func (l *callLog) carrying(queue string) []loggedCall {
	var found []loggedCall
	for _, c := range l.finished() {
		for _, q := range c.queues {
			if q == queue {
				found = append(found, c)
				break
			}
		}
	}
	return found
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
	client, err := jobqueue.Dial(addr, jobqueue.WithBatching(b),
		jobqueue.WithDialOptions(grpc.WithUnaryInterceptor(log.intercept)))
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
// level is in flight) and stays in flight until the log releases it; its outcome comes on
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
