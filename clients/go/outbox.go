package jobqueue

import (
	"sync"

	"google.golang.org/grpc"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// maxEntriesPerMessage bounds one LeaseRequest; more waiting entries go in the next one.
const maxEntriesPerMessage = 500

// outbox collects what the worker has to say on the stream (a re-subscribe, extends, acks,
// fails) and hands it to the one sender goroutine, which coalesces everything waiting
// into as few LeaseRequests as it can. Putting never blocks.
type outbox struct {
	mu        sync.Mutex
	subscribe *jobqueuev1.Subscribe
	extends   []*jobqueuev1.ExtendRequest
	acks      []*jobqueuev1.AckRequest
	fails     []*jobqueuev1.FailRequest
	closed    bool
	wake      chan struct{}
}

func newOutbox() *outbox {
	return &outbox{wake: make(chan struct{}, 1)}
}

func (o *outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *outbox) resubscribe(s *jobqueuev1.Subscribe) {
	o.mu.Lock()
	o.subscribe = s
	o.mu.Unlock()
	o.signal()
}

func (o *outbox) extend(extends ...*jobqueuev1.ExtendRequest) {
	o.mu.Lock()
	o.extends = append(o.extends, extends...)
	o.mu.Unlock()
	o.signal()
}

func (o *outbox) settle(s settlement) {
	o.mu.Lock()
	if s.ack != nil {
		o.acks = append(o.acks, s.ack)
	} else {
		o.fails = append(o.fails, s.fail)
	}
	o.mu.Unlock()
	o.signal()
}

// close asks the sender to send what is left, then half-close the stream.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.signal()
}

// take removes up to maxEntriesPerMessage entries as one request (nil when there are
// none) and says whether the outbox is closed and now empty.
func (o *outbox) take() (*jobqueuev1.LeaseRequest, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	req := &jobqueuev1.LeaseRequest{Subscribe: o.subscribe}
	o.subscribe = nil
	room := maxEntriesPerMessage
	req.Extends, o.extends, room = split(o.extends, room)
	req.Acks, o.acks, room = split(o.acks, room)
	req.Fails, o.fails, _ = split(o.fails, room)
	empty := len(o.extends)+len(o.acks)+len(o.fails) == 0
	if !empty {
		o.signal() // more for the next message
	}
	if req.Subscribe == nil && len(req.Extends)+len(req.Acks)+len(req.Fails) == 0 {
		req = nil
	}
	return req, o.closed && empty
}

func split[T any](items []T, room int) (taken, rest []T, left int) {
	n := min(len(items), room)
	if n == len(items) {
		return items, nil, room - n
	}
	return items[:n], items[n:], room - n
}

// send runs the sender goroutine's loop until the outbox is closed and drained (then it
// half-closes the stream and returns nil), a send fails, or stop is closed.
func (o *outbox) send(stream grpc.BidiStreamingClient[jobqueuev1.LeaseRequest, jobqueuev1.LeaseResponse], stop <-chan struct{}) error {
	for {
		select {
		case <-o.wake:
		case <-stop:
			return nil
		}
		for {
			req, done := o.take()
			if req != nil {
				if err := stream.Send(req); err != nil {
					return err
				}
			}
			if done {
				return stream.CloseSend()
			}
			if req == nil {
				break
			}
		}
	}
}
