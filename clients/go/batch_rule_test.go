package jobqueue

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// heldStub answers each Enqueue, EnqueueBatch or EnqueueStream message only when the test
// closes its answer channel; a stream's messages are answered in order, as the server does.
// With noStream it is an older server: EnqueueStream is UNIMPLEMENTED.
type heldStub struct {
	jobqueuev1.JobQueueServiceClient
	noStream bool
	arrived  chan *heldCall
}

type heldCall struct {
	jobs   int
	answer chan struct{}
}

func newHeldStub(noStream bool) *heldStub {
	return &heldStub{noStream: noStream, arrived: make(chan *heldCall, 4*streamBatchesInFlight)}
}

func (s *heldStub) arrive(jobs int) *heldCall {
	c := &heldCall{jobs: jobs, answer: make(chan struct{})}
	s.arrived <- c
	return c
}

func heldResponses(jobs int) []*jobqueuev1.EnqueueResponse {
	responses := make([]*jobqueuev1.EnqueueResponse, jobs)
	for i := range responses {
		responses[i] = &jobqueuev1.EnqueueResponse{JobId: "q:job"}
	}
	return responses
}

func (s *heldStub) Enqueue(_ context.Context, _ *jobqueuev1.EnqueueRequest, _ ...grpc.CallOption) (*jobqueuev1.EnqueueResponse, error) {
	<-s.arrive(1).answer
	return heldResponses(1)[0], nil
}

func (s *heldStub) EnqueueBatch(_ context.Context, req *jobqueuev1.EnqueueBatchRequest, _ ...grpc.CallOption) (*jobqueuev1.EnqueueBatchResponse, error) {
	c := s.arrive(len(req.GetRequests()))
	<-c.answer
	return &jobqueuev1.EnqueueBatchResponse{Responses: heldResponses(c.jobs)}, nil
}

func (s *heldStub) EnqueueStream(ctx context.Context, _ ...grpc.CallOption) (grpc.BidiStreamingClient[jobqueuev1.EnqueueStreamRequest, jobqueuev1.EnqueueStreamResponse], error) {
	if s.noStream {
		return nil, status.Error(codes.Unimplemented, "unknown method EnqueueStream")
	}
	return &heldStream{stub: s, ctx: ctx, sent: make(chan *heldMessage, 4*streamBatchesInFlight)}, nil
}

// heldStream is a client's side of an EnqueueStream on a heldStub. Only Send, CloseSend and
// Recv are used; a nil message in sent is the half-close.
type heldStream struct {
	grpc.ClientStream
	stub *heldStub
	ctx  context.Context
	sent chan *heldMessage
}

type heldMessage struct {
	sequence uint64
	call     *heldCall
}

func (s *heldStream) Send(req *jobqueuev1.EnqueueStreamRequest) error {
	s.sent <- &heldMessage{sequence: req.GetSequence(), call: s.stub.arrive(len(req.GetRequests()))}
	return nil
}

func (s *heldStream) CloseSend() error {
	s.sent <- nil
	return nil
}

func (s *heldStream) Recv() (*jobqueuev1.EnqueueStreamResponse, error) {
	select {
	case m := <-s.sent:
		if m == nil {
			return nil, io.EOF
		}
		select {
		case <-m.call.answer:
			return &jobqueuev1.EnqueueStreamResponse{Sequence: m.sequence, Responses: heldResponses(m.call.jobs)}, nil
		case <-s.ctx.Done():
		}
	case <-s.ctx.Done():
	}
	return nil, status.FromContextError(s.ctx.Err()).Err()
}

// batchRuleTests run each rule on the stream and, with the older server's numbers, as calls.
var batchRuleTests = []struct {
	name                string
	noStream            bool
	maxJobs             int
	wantFull, wantSlots int
}{
	{"stream", false, 0, streamBatchJobs, streamBatchesInFlight},
	{"stream with fewer MaxJobs", false, 8, 8, streamBatchesInFlight},
	{"calls", true, 0, DefaultBatchMaxJobs, maxCallsInFlight},
	{"calls with fewer MaxJobs", true, 8, 8, maxCallsInFlight},
}

// Under load a full batch goes out at once, beside the ones in flight, until every slot is
// taken; then it waits for an answer to free one (docs/clients.md, "Producer batching").
func TestAFullBatchGoesAtOnceWhileASlotIsFree(t *testing.T) {
	for _, tt := range batchRuleTests {
		t.Run(tt.name, func(t *testing.T) {
			stub := newHeldStub(tt.noStream)
			b := newBatcher(stub, Batching{MaxJobs: tt.maxJobs, Linger: time.Hour}.withDefaults())
			defer b.close()
			var done []chan error
			enqueue := func(n int) {
				for range n {
					done = append(done, enqueueOn(b))
				}
			}

			enqueue(1)
			first := <-stub.arrived // nothing in flight: sent at once, alone
			var held []*heldCall
			enqueue((tt.wantSlots - 1) * tt.wantFull)
			for range tt.wantSlots - 1 {
				if c := <-stub.arrived; c.jobs != tt.wantFull {
					t.Fatalf("a batch of %d jobs went out, want %d (full)", c.jobs, tt.wantFull)
				} else {
					held = append(held, c)
				}
			}
			enqueue(tt.wantFull)
			waitFor(t, "a full batch waiting for a slot", func(ln *lane) bool {
				return len(ln.ready) == 1 && len(ln.ready[0].calls) == tt.wantFull
			}, b)
			select {
			case c := <-stub.arrived:
				t.Fatalf("a batch of %d jobs went out with every slot taken", c.jobs)
			default:
			}

			close(first.answer)
			if c := <-stub.arrived; c.jobs != tt.wantFull {
				t.Fatalf("the waiting batch went out with %d jobs, want %d", c.jobs, tt.wantFull)
			} else {
				held = append(held, c)
			}
			for _, c := range held {
				close(c.answer)
			}
			for _, ch := range done {
				if err := <-ch; err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// A batch that is not full goes out beside the ones in flight only after its linger; once
// it has not, it waits for every batch in flight to be answered.
func TestBesideABatchInFlightOnlyOneThatLingeredGoesOut(t *testing.T) {
	for _, tt := range batchRuleTests {
		t.Run(tt.name, func(t *testing.T) {
			stub := newHeldStub(tt.noStream)
			b := newBatcher(stub, Batching{MaxJobs: tt.maxJobs, Linger: 500 * time.Millisecond}.withDefaults())
			defer b.close()

			firstDone := enqueueOn(b)
			first := <-stub.arrived // nothing in flight: sent at once
			secondDone := enqueueOn(b)
			second := <-stub.arrived // after its linger, beside the first
			thirdDone := enqueueOn(b)
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
		})
	}
}

func TestAServerWithoutTheStreamIsRememberedAndGetsCalls(t *testing.T) {
	stub := newHeldStub(true)
	b := newBatcher(stub, Batching{Linger: time.Hour}.withDefaults())
	defer b.close()

	first := enqueueOn(b)
	close((<-stub.arrived).answer)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if !b.unary.Load() {
		t.Fatal("the UNIMPLEMENTED stream was not remembered")
	}
	if maxJobs, maxInFlight := b.limits(); maxJobs != DefaultBatchMaxJobs || maxInFlight != maxCallsInFlight {
		t.Errorf("limits %d jobs, %d in flight: want the calls' numbers", maxJobs, maxInFlight)
	}
}

// enqueueOn runs one enqueue on b on a goroutine of its own; its error comes on the channel.
func enqueueOn(b *batcher) chan error {
	done := make(chan error, 1)
	go func() {
		res, err := b.enqueue(context.Background(), &jobqueuev1.EnqueueRequest{Queue: "q"})
		if err == nil && res.JobID == "" {
			err = fmt.Errorf("no job id: %+v", res)
		}
		done <- err
	}()
	return done
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
