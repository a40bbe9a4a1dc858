package jobqueue

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// heldStub answers each Enqueue or EnqueueBatch only when the test closes its answer channel.
type heldStub struct {
	jobqueuev1.JobQueueServiceClient
	arrived chan *heldCall
}

type heldCall struct {
	jobs   int
	answer chan struct{}
}

func (s *heldStub) hold(jobs int) []*jobqueuev1.EnqueueResponse {
	c := &heldCall{jobs: jobs, answer: make(chan struct{})}
	s.arrived <- c
	<-c.answer
	responses := make([]*jobqueuev1.EnqueueResponse, jobs)
	for i := range responses {
		responses[i] = &jobqueuev1.EnqueueResponse{JobId: "q:job"}
	}
	return responses
}

func (s *heldStub) Enqueue(_ context.Context, _ *jobqueuev1.EnqueueRequest, _ ...grpc.CallOption) (*jobqueuev1.EnqueueResponse, error) {
	return s.hold(1)[0], nil
}

func (s *heldStub) EnqueueBatch(_ context.Context, req *jobqueuev1.EnqueueBatchRequest, _ ...grpc.CallOption) (*jobqueuev1.EnqueueBatchResponse, error) {
	return &jobqueuev1.EnqueueBatchResponse{Responses: s.hold(len(req.GetRequests()))}, nil
}

// Under load one batch is in flight at a time; a second goes out beside it only after its
// linger (docs/clients.md, "Producer batching").
func TestBesideABatchInFlightOnlyOneThatLingeredTakesTheSecondSlot(t *testing.T) {
	stub := &heldStub{arrived: make(chan *heldCall, 8)}
	b := newBatcher(stub, Batching{Linger: time.Second}.withDefaults())
	enqueue := func() chan error {
		done := make(chan error, 1)
		go func() {
			_, err := b.enqueue(context.Background(), &jobqueuev1.EnqueueRequest{Queue: "q"})
			done <- err
		}()
		return done
	}

	firstDone := enqueue()
	first := <-stub.arrived // nothing in flight: sent at once
	secondDone := enqueue()
	second := <-stub.arrived // after its linger, beside the first
	thirdDone := enqueue()
	waitFor(t, "the third job in the open batch", func(ln *lane) bool { return ln.open != nil && len(ln.open.calls) == 1 }, b)

	close(first.answer)
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	// Once the first is retired, the third (not lingered) still waits for the second's answer.
	waitFor(t, "the first batch retired", func(ln *lane) bool { return len(ln.sending) == 1 }, b)
	b.mu.Lock()
	open := b.lanes[0].open
	b.mu.Unlock()
	if open == nil {
		t.Fatal("the third job went out beside the batch in flight before its linger")
	}

	close(second.answer)
	third := <-stub.arrived
	close(third.answer)
	for _, done := range []chan error{secondDone, thirdDone} {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// waitFor polls the batcher's only lane until cond holds (under the lock), for at most 10 s.
func waitFor(t *testing.T, what string, cond func(*lane) bool, b *batcher) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b.mu.Lock()
		ok := len(b.lanes) == 1 && cond(b.lanes[0])
		b.mu.Unlock()
		if ok {
			return
		}
	}
	t.Fatalf("not within 10 s: %s", what)
}
