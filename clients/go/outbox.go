package jobqueue

import (
	"sync"

	"google.golang.org/grpc"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// maxEntriesPerMessage bounds one LeaseRequest; more waiting entries go in the next one.
const maxEntriesPerMessage = 500

// outbox collects what the worker has to say on the stream (a re-subscribe, extends, acks,
// fails, the handlers' progress and log lines) and hands it to the one sender goroutine,
// which coalesces everything waiting into as few LeaseRequests as it can. Putting never
// blocks.
type outbox struct {
	mu        sync.Mutex
	subscribe *jobqueuev1.Subscribe
	extends   []*jobqueuev1.ExtendRequest
	acks      []*jobqueuev1.AckRequest
	fails     []*jobqueuev1.FailRequest
	closed    bool
	wake      chan struct{}

	// Reports waiting to ride along (progress.go), in the order their leases first reported.
	progress      []*pendingProgress
	progressBy    map[progressKey]*pendingProgress
	progressArmed bool // a timer will wake the sender for them
}

func newOutbox() *outbox {
	return &outbox{wake: make(chan struct{}, 1), progressBy: make(map[progressKey]*pendingProgress)}
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

// forgetLease drops what is waiting to be sent for a lease the server took back (a stopped
// job): its extends and its reports.
func (o *outbox) forgetLease(key progressKey) {
	o.mu.Lock()
	defer o.mu.Unlock()
	kept := o.extends[:0]
	for _, e := range o.extends {
		if e.GetJobId() != key.jobID || e.GetLeaseToken() != key.token {
			kept = append(kept, e)
		}
	}
	clear(o.extends[len(kept):])
	o.extends = kept
	if p := o.progressBy[key]; p != nil {
		p.percent, p.lines = nil, nil
		delete(o.progressBy, key)
	}
}

// close asks the sender to send what is left, then half-close the stream.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.signal()
}

// take removes up to maxEntriesPerMessage acks, fails and extends, and the pending progress
// reports (up to maxProgressBytes), as one request (nil when there are none), and says
// whether the outbox is closed and now empty. The ack or fail of a job with reports in this
// request or still pending waits for a later one.
func (o *outbox) take() (*jobqueuev1.LeaseRequest, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	req := &jobqueuev1.LeaseRequest{Subscribe: o.subscribe}
	o.subscribe = nil
	var held map[string]bool
	req.Progress, held = o.takeProgress()
	room := maxEntriesPerMessage
	req.Extends, o.extends, room = split(o.extends, room)
	req.Acks, o.acks, room = splitUnheld(o.acks, room, held, (*jobqueuev1.AckRequest).GetJobId)
	req.Fails, o.fails, _ = splitUnheld(o.fails, room, held, (*jobqueuev1.FailRequest).GetJobId)
	empty := len(o.extends)+len(o.acks)+len(o.fails)+len(o.progressBy) == 0
	if !empty {
		o.signal() // more for the next message
	}
	if req.Subscribe == nil && len(req.Extends)+len(req.Acks)+len(req.Fails)+len(req.Progress) == 0 {
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

// splitUnheld is split leaving out, for a later request, the items of the held jobs.
func splitUnheld[T any](items []T, room int, held map[string]bool, jobID func(T) string) (taken, rest []T, left int) {
	if len(held) == 0 {
		return split(items, room)
	}
	for _, it := range items {
		if room > 0 && !held[jobID(it)] {
			taken = append(taken, it)
			room--
		} else {
			rest = append(rest, it)
		}
	}
	return taken, rest, room
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
