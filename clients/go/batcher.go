package jobqueue

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// batcher gathers concurrent Enqueue calls into batches (see Batching) and sends them on
// an EnqueueStream, or as EnqueueBatch calls to a server without one. Callers wait on
// their own call; a batch is sent by a goroutine of its own, which then takes the next
// ready batch, so there is at most one goroutine per batch in flight and none per job.
type batcher struct {
	stub     jobqueuev1.JobQueueServiceClient
	settings Batching
	// unary: the server answered UNIMPLEMENTED to EnqueueStream, so batches go as
	// EnqueueBatch calls, by the calls' numbers (see limits). Remembered for the client's
	// life; set once, and read both with and without mu.
	unary atomic.Bool

	mu     sync.Mutex
	lanes  []*lane // one per durability level asked for: at most four
	closed bool
}

// lane holds the batches of one durability level. Levels never share a batch, and one
// level's slow batches (fsynced ones wait for the disk) never hold up another's.
type lane struct {
	durability jobqueuev1.Durability
	stream     *enqueueStream // its own: the server answers a stream in order
	open       *batch         // gathering jobs
	ready      []*batch       // closed, waiting for a sending slot, oldest first
	sending    []*batch       // in flight, at most limits' maxInFlight
}

// batch is a set of jobs of one durability level, sent in one stream message or call.
type batch struct {
	lane     *lane
	calls    []*call
	bytes    int
	linger   *time.Timer
	lingered bool // its first job waited Linger: it may go out beside a batch in flight
	// ctx carries the earliest deadline of its callers; cancel ends the wait for its answer
	// (and a unary call) once no caller waits for it any more.
	ctx      context.Context
	cancel   context.CancelFunc
	waiting  int // callers still waiting, once sent
	flushers []*flushWaiter
}

// call is one Enqueue waiting for its job's answer. Recycled through callPool.
type call struct {
	req      *jobqueuev1.EnqueueRequest
	size     int       // bytes it adds to a batch's message
	deadline time.Time // of the caller's context; zero for none
	batch    *batch
	// Guarded by batcher.mu: sent (its batch is in flight), abandoned (the caller gave up
	// after that), answered (the sender took it; result and err follow on done).
	sent, abandoned, answered bool
	result                    EnqueueResult
	err                       error
	done                      chan struct{}
}

var callPool = sync.Pool{New: func() any { return &call{done: make(chan struct{}, 1)} }}

func (c *call) release() {
	*c = call{done: c.done}
	callPool.Put(c)
}

// flushWaiter counts the batches a Flush still waits for.
type flushWaiter struct {
	pending int
	done    chan struct{}
}

func newBatcher(stub jobqueuev1.JobQueueServiceClient, settings Batching) *batcher {
	return &batcher{stub: stub, settings: settings}
}

// encodedSize is what req adds to an EnqueueBatchRequest or an EnqueueStreamRequest: its
// bytes, tag and length.
func encodedSize(req *jobqueuev1.EnqueueRequest) int {
	n := proto.Size(req)
	return protowire.SizeTag(1) + protowire.SizeBytes(n)
}

// enqueue sends req in a batch and waits for its answer or for ctx.
func (b *batcher) enqueue(ctx context.Context, req *jobqueuev1.EnqueueRequest) (EnqueueResult, error) {
	if err := ctx.Err(); err != nil {
		return EnqueueResult{}, contextError(err)
	}
	c := callPool.Get().(*call)
	c.req, c.size = req, encodedSize(req)
	c.deadline, _ = ctx.Deadline()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		c.release()
		return unaryEnqueue(ctx, b.stub, req)
	}
	b.addLocked(c)
	b.mu.Unlock()
	select {
	case <-c.done:
	case <-ctx.Done():
		if err := b.abandon(c, ctx.Err()); err != nil {
			return EnqueueResult{}, err
		}
		<-c.done // answered meanwhile: the result is on its way
	}
	res, err := c.result, c.err
	c.release()
	return res, err
}

// limits are how many jobs fill a batch and how many of a level's batches may be in
// flight. On the stream a message costs the server a fraction of a call, so a batch is
// full at streamBatchJobs and goes at once, up to the server's read-ahead: the server
// starts on it while the next gathers. As calls, under load one batch at a time, each as
// big as a round trip gathers (fewer, bigger calls cost less per job).
func (b *batcher) limits() (maxJobs, maxInFlight int) {
	if b.unary.Load() {
		return b.settings.MaxJobs, maxCallsInFlight
	}
	return min(b.settings.MaxJobs, streamBatchJobs), streamBatchesInFlight
}

// useCalls makes later batches EnqueueBatch calls: the server has no EnqueueStream.
func (b *batcher) useCalls() {
	b.unary.Store(true)
}

// addLocked puts c in the open batch of its durability level and closes that batch when
// none of the level's batches is in flight (a lone call waits for nothing) or when it is
// full.
func (b *batcher) addLocked(c *call) {
	maxJobs, _ := b.limits()
	ln := b.laneLocked(c.req.GetDurability())
	if ln.open != nil && ln.open.bytes+c.size > b.settings.MaxBytes {
		b.closeLocked(ln)
	}
	if ln.open == nil {
		ln.open = &batch{lane: ln, calls: make([]*call, 0, 8)}
	}
	bt := ln.open
	bt.calls = append(bt.calls, c)
	bt.bytes += c.size
	c.batch = bt
	switch {
	case len(ln.sending) == 0 || len(bt.calls) >= maxJobs || bt.bytes >= b.settings.MaxBytes:
		b.closeLocked(ln)
	case bt.linger == nil:
		bt.linger = time.AfterFunc(b.settings.Linger, func() { b.lingered(bt) })
	}
}

func (b *batcher) laneLocked(d jobqueuev1.Durability) *lane {
	for _, ln := range b.lanes {
		if ln.durability == d {
			return ln
		}
	}
	ln := &lane{durability: d, stream: &enqueueStream{stub: b.stub}}
	b.lanes = append(b.lanes, ln)
	return ln
}

// lingered sends bt when its first job has waited Linger, unless it went out already.
// With every sending slot of its level taken it stays open, gathering jobs until a batch
// in flight is answered or it is full: sending it would only queue it behind the others.
func (b *batcher) lingered(bt *batch) {
	b.mu.Lock()
	defer b.mu.Unlock()
	bt.lingered = true
	_, maxInFlight := b.limits()
	if ln := bt.lane; ln.open == bt && len(ln.sending) < maxInFlight {
		b.closeLocked(ln)
	}
}

// closeLocked closes ln's open batch and sends it, or queues it when every sending slot
// is taken.
func (b *batcher) closeLocked(ln *lane) {
	bt := ln.open
	ln.open = nil
	if bt.linger != nil {
		bt.linger.Stop() // if it fired already, lingered finds bt closed
	}
	if _, maxInFlight := b.limits(); len(ln.sending) < maxInFlight {
		startLocked(bt)
		go b.run(bt)
		return
	}
	ln.ready = append(ln.ready, bt)
}

// startLocked marks bt and its calls in flight.
func startLocked(bt *batch) {
	bt.lane.sending = append(bt.lane.sending, bt)
	for _, c := range bt.calls {
		c.sent = true
	}
	bt.armLocked()
}

// armLocked gives bt's call the earliest deadline of its callers, and a cancel for when
// none of them waits any more.
func (bt *batch) armLocked() {
	var deadline time.Time
	for _, c := range bt.calls {
		if !c.deadline.IsZero() && (deadline.IsZero() || c.deadline.Before(deadline)) {
			deadline = c.deadline
		}
	}
	bt.waiting = len(bt.calls)
	if deadline.IsZero() {
		bt.ctx, bt.cancel = context.WithCancel(context.Background())
	} else {
		bt.ctx, bt.cancel = context.WithDeadline(context.Background(), deadline)
	}
}

// abandon gives up on c for a caller whose context ended with ctxErr, and returns the
// caller's error: the context's, saying for a deadline that passed after the job was sent
// that it may still be enqueued. It returns nil when c was answered already (its result is
// on the way).
func (b *batcher) abandon(c *call, ctxErr error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case c.answered:
		return nil
	case !c.sent:
		b.removeLocked(c)
		c.release()
		return contextError(ctxErr)
	default:
		c.abandoned = true
		if c.batch.waiting--; c.batch.waiting == 0 {
			c.batch.cancel() // nobody waits for this batch any more
		}
		return unansweredError(ctxErr)
	}
}

// removeLocked takes an unsent call out of its batch; an emptied batch is dropped.
func (b *batcher) removeLocked(c *call) {
	bt, ln := c.batch, c.batch.lane
	bt.calls = slices.DeleteFunc(bt.calls, func(o *call) bool { return o == c })
	bt.bytes -= c.size
	if len(bt.calls) > 0 {
		return
	}
	if ln.open == bt {
		ln.open = nil
		if bt.linger != nil {
			bt.linger.Stop()
		}
	}
	ln.ready = slices.DeleteFunc(ln.ready, func(o *batch) bool { return o == bt })
	bt.answeredLocked()
}

// run sends bt, then every batch of its level that became ready meanwhile.
func (b *batcher) run(bt *batch) {
	for bt != nil {
		b.send(bt)
		bt = b.finish(bt)
	}
}

// finish retires bt and closes its level's open batch when no other is in flight or it has
// lingered; it returns a batch for this goroutine to send next, if any.
func (b *batcher) finish(bt *batch) *batch {
	b.mu.Lock()
	defer b.mu.Unlock()
	ln := bt.lane
	ln.sending = slices.DeleteFunc(ln.sending, func(o *batch) bool { return o == bt })
	bt.answeredLocked()
	// Beside a batch still in flight only one that has lingered goes: under load one batch at
	// a time, each as big as a round trip gathers.
	if ln.open != nil && (len(ln.sending) == 0 || ln.open.lingered) {
		if ln.open.linger != nil {
			ln.open.linger.Stop()
		}
		ln.ready = append(ln.ready, ln.open)
		ln.open = nil
	}
	var next *batch
	_, maxInFlight := b.limits()
	for len(ln.ready) > 0 && len(ln.sending) < maxInFlight {
		o := ln.ready[0]
		ln.ready = slices.Delete(ln.ready, 0, 1)
		startLocked(o)
		if next == nil {
			next = o
		} else {
			go b.run(o)
		}
	}
	return next
}

// answeredLocked tells the Flush calls waiting for bt that it is done.
func (bt *batch) answeredLocked() {
	for _, w := range bt.flushers {
		if w.pending--; w.pending == 0 {
			close(w.done)
		}
	}
	bt.flushers = nil
}

// flush sends every open batch and waits until they and those in flight are answered.
func (b *batcher) flush(ctx context.Context) error {
	w := &flushWaiter{done: make(chan struct{})}
	b.mu.Lock()
	for _, ln := range b.lanes {
		if ln.open != nil {
			b.closeLocked(ln)
		}
		for _, bt := range slices.Concat(ln.sending, ln.ready) {
			bt.flushers = append(bt.flushers, w)
			w.pending++
		}
	}
	pending := w.pending
	b.mu.Unlock()
	if pending == 0 {
		return nil
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close flushes, makes later calls go out alone, and ends the streams once every batch
// sent on them is answered.
func (b *batcher) close() {
	b.mu.Lock()
	b.closed = true
	lanes := slices.Clone(b.lanes)
	b.mu.Unlock()
	_ = b.flush(context.Background()) // bounded by the callers' own deadlines
	for _, ln := range lanes {
		ln.stream.close()
	}
}
