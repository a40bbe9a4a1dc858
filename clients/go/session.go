package jobqueue

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

const (
	// flushTimeout bounds the wait, after the half-close, for the server to confirm the
	// last acks and end the stream.
	flushTimeout = 5 * time.Second
	// statusWait bounds the wait for the stream's status after a send failed.
	statusWait = time.Second
	// resendDelay: an ack or fail refused with UNAVAILABLE (Redis unreachable) changed
	// nothing and the lease is still ours, so it is sent again after this long; the token
	// fences any duplicate.
	resendDelay = 500 * time.Millisecond
)

// running is a job this stream handed to a handler.
type running struct {
	job    *LeasedJob
	ctx    context.Context
	cancel context.CancelCauseFunc
	// lost: an extend was refused, so the job is someone else's. Its outcome is still
	// sent, only to free the stream's slot (the server frees it on a refused settle).
	lost bool
	// stopped: the server sent a JobStop for it (stops.go). Nothing is sent for it any more.
	stopped bool
}

type handlerResult struct {
	run     *running
	result  map[string]any
	err     error
	started bool
	ran     bool          // the handler was called (started, and there was one)
	took    time.Duration // how long it ran, when it ran
}

// session serves one Lease stream, from Subscribe to its end. One goroutine (run's loop)
// owns its state; a receiver goroutine reads the stream, one sender goroutine writes it
// (through the outbox), and each job's handler runs in a goroutine of its own.
type session struct {
	w      *Worker
	log    *slog.Logger
	base   context.Context // Run's context without its cancellation: handlers' parent
	out    *outbox
	keeper *leaseKeeper

	running     map[string]*running
	unconfirmed map[string]settlement // acks and fails sent, by job id
	draining    atomic.Bool           // read by handler goroutines waiting for a slot
	closing     bool                  // the outbox is closed: the stream is ending
	hard        bool                  // the grace period ran out

	results chan handlerResult
	resend  chan string
	done    chan struct{} // closed when the session is over: late results are dropped
}

func newSession(w *Worker) *session {
	return &session{
		w:           w,
		log:         w.log,
		out:         newOutbox(),
		keeper:      newLeaseKeeper(),
		running:     make(map[string]*running),
		unconfirmed: make(map[string]settlement),
		results:     make(chan handlerResult),
		resend:      make(chan string),
		done:        make(chan struct{}),
	}
}

func (s *session) subscription() *jobqueuev1.Subscribe {
	sub := &jobqueuev1.Subscribe{
		Queues:      s.w.queues,
		MaxInFlight: int32(s.w.settings.concurrency),
		WorkerId:    s.w.settings.workerID,
	}
	if d := s.w.settings.leaseDuration; d > 0 {
		sub.LeaseDuration = durationpb.New(d)
	}
	return sub
}

// run serves the stream until ctx is cancelled (then drains it and returns nil) or the
// stream breaks (then returns why).
func (s *session) run(ctx context.Context) error {
	defer close(s.done)
	if ctx.Err() != nil {
		return nil
	}
	s.base = context.WithoutCancel(ctx)
	// Not ctx: a graceful stop still needs the stream to send the last acks.
	streamCtx, cancelStream := context.WithCancel(s.base)
	defer cancelStream()
	// Until the stream is subscribed there is nothing to drain: a stop may cut it short.
	detach := context.AfterFunc(ctx, cancelStream)
	stream, err := s.w.client.stub.Lease(streamCtx)
	if err != nil {
		return wrapError(err)
	}
	if err := stream.Send(&jobqueuev1.LeaseRequest{Subscribe: s.subscription()}); err != nil {
		if _, recvErr := stream.Recv(); recvErr != nil && recvErr != io.EOF {
			err = recvErr // the status behind the failed send
		}
		return wrapError(err)
	}
	if !detach() {
		return nil // stopped while subscribing
	}
	s.w.markReady()
	s.log.Info("jobqueue: subscribed", "queues", s.w.queues, "max_in_flight", s.w.settings.concurrency)

	responses := make(chan *jobqueuev1.LeaseResponse)
	recvErr := make(chan error, 1)
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case responses <- resp:
			case <-s.done:
				return
			}
		}
	}()
	sendErr := make(chan error, 1)
	go func() { sendErr <- s.out.send(stream, s.done) }()
	defer s.abandonAll(errStreamEnded)
	return s.loop(ctx, responses, recvErr, sendErr)
}

func (s *session) loop(ctx context.Context, responses <-chan *jobqueuev1.LeaseResponse, recvErr, sendErr <-chan error) error {
	stopping := ctx.Done()
	var grace, flush, statusTimeout <-chan time.Time
	var sendFailure error
	keeperTimer := time.NewTimer(time.Hour)
	defer keeperTimer.Stop()
	for {
		s.armKeeper(keeperTimer)
		select {
		case resp := <-responses:
			// Stops first: a job stopped and leased again to this stream in one message
			// starts anew, and an extend refused because of the stop is not a lost lease.
			for _, st := range resp.GetStops() {
				s.stop(st)
			}
			for _, job := range resp.GetJobs() {
				s.start(job)
			}
			for _, c := range resp.GetConfirmations() {
				s.confirm(c)
			}
		case err := <-recvErr:
			if s.closing {
				return nil
			}
			if err == io.EOF {
				return &Error{Code: codes.Unavailable, Message: "the server ended the Lease stream"}
			}
			return wrapError(err)
		case err := <-sendErr:
			sendErr = nil
			if err != nil {
				// The stream is broken; the receiver gets its status in a moment.
				sendFailure = err
				statusTimeout = time.After(statusWait)
			}
		case <-statusTimeout:
			return wrapError(sendFailure)
		case res := <-s.results:
			s.finished(res)
		case id := <-s.resend:
			if st, ok := s.unconfirmed[id]; ok && !s.closing {
				s.out.settle(st)
			}
		case now := <-keeperTimer.C:
			if extends := s.keeper.due(now); len(extends) > 0 {
				s.out.extend(extends...)
			}
		case <-stopping:
			stopping = nil
			grace = s.startDrain()
		case <-grace:
			grace = nil
			s.stopHard()
		case <-flush:
			s.log.Warn("jobqueue: the server did not end the stream in time after the last acks")
			return nil
		}
		if s.draining.Load() && !s.closing && (s.hard || len(s.running)+len(s.unconfirmed) == 0) {
			s.closing = true
			s.out.close() // the sender sends what is left, then half-closes
			flush = time.After(flushTimeout)
		}
	}
}

func (s *session) armKeeper(t *time.Timer) {
	next, ok := s.keeper.next()
	if !ok {
		t.Stop()
		return
	}
	t.Reset(max(0, time.Until(next)))
}

// -- jobs ---------------------------------------------------------------------------------

func (s *session) start(leased *jobqueuev1.LeasedJob) {
	job := leasedFromProto(leased)
	if s.draining.Load() {
		// Not started: the server releases it to its queue when the stream closes.
		s.log.Debug("jobqueue: stopping; not starting job", "job_id", job.ID)
		return
	}
	if old, ok := s.running[job.ID]; ok {
		// The old lease expired and the job came back to this stream with a new token.
		old.job.endReports()
		old.cancel(fmt.Errorf("%w: the job was leased again", ErrLeaseLost))
	}
	job.out = s.out
	ctx, cancel := context.WithCancelCause(s.base)
	r := &running{job: job, ctx: ctx, cancel: cancel}
	s.running[job.ID] = r
	s.keeper.track(job.ID, job.LeaseToken, job.leaseLength, time.Now())
	s.w.inHandlers.Add(1)
	go s.execute(r)
}

// execute runs in the job's goroutine: wait for a slot (all are taken only while handlers
// of a lost stream are still finishing), run the handler, report.
func (s *session) execute(r *running) {
	defer s.w.inHandlers.Done()
	defer r.job.endReports()
	select {
	case s.w.slots <- struct{}{}:
	case <-r.ctx.Done():
		s.report(handlerResult{run: r, err: context.Cause(r.ctx)})
		return
	}
	if s.draining.Load() || r.ctx.Err() != nil {
		<-s.w.slots
		s.report(handlerResult{run: r, err: context.Cause(r.ctx)})
		return
	}
	ctx, span := s.w.startProcess(r.ctx, r.job)
	result, took, ran, err := s.w.call(ctx, r.job)
	endProcess(r.ctx, span, err)
	r.job.endReports() // before the outcome is queued: its reports go out ahead of it
	<-s.w.slots
	s.report(handlerResult{run: r, result: result, err: err, started: true, ran: ran, took: took})
}

func (s *session) report(res handlerResult) {
	select {
	case s.results <- res:
	case <-s.done:
		// Reading stopped is safe here: the loop set it before it closed done.
		if res.started && !res.run.stopped {
			s.log.Warn("jobqueue: dropping the result of a job whose stream ended (the server released it)", "job_id", res.run.job.ID)
		}
	}
}

func (s *session) finished(res handlerResult) {
	r := res.run
	id := r.job.ID
	if r.stopped {
		s.log.Debug("jobqueue: dropping the outcome of a job the server stopped", "job_id", id)
		return
	}
	if s.running[id] != r {
		if res.started {
			s.log.Warn("jobqueue: dropping the result of a job this worker gave up", "job_id", id)
		}
		return
	}
	delete(s.running, id)
	s.keeper.forget(id)
	if !res.started && !r.lost {
		return // never ran: the server releases it when the stream closes
	}
	if r.lost {
		s.log.Warn("jobqueue: settling a job whose lease was lost, only to free the stream's slot", "job_id", id)
	}
	st := settlementFor(r.job, res.result, res.err, durabilityToProto[s.w.settings.ackDurability])
	if res.ran {
		st.setHandlerDuration(res.took)
	}
	s.unconfirmed[id] = st
	s.out.settle(st)
}

// -- stopping -----------------------------------------------------------------------------

// startDrain stops taking jobs and returns the grace period's timer.
func (s *session) startDrain() <-chan time.Time {
	s.draining.Store(true)
	// A window of zero pauses delivery: each ack would otherwise make room for a job we
	// would not start (the server counts an attempt for it, then releases it at close).
	s.out.resubscribe(&jobqueuev1.Subscribe{MaxInFlight: 0})
	if len(s.running) > 0 {
		s.log.Info("jobqueue: stopping; waiting for running jobs", "running", len(s.running), "grace_period", s.w.settings.grace)
	}
	return time.After(s.w.settings.grace)
}

// stopHard cancels the handlers still running; their jobs are released with the stream.
func (s *session) stopHard() {
	s.hard = true
	if len(s.running) > 0 {
		s.log.Warn("jobqueue: grace period over; cancelling running jobs, the server gives them out again", "running", len(s.running))
	}
	for id, r := range s.running {
		r.cancel(ErrWorkerStopped)
		s.keeper.forget(id)
		delete(s.running, id)
	}
}

// abandonAll cancels the handlers still running when the stream ended: their tokens
// belong to the old stream, whose jobs the server released.
func (s *session) abandonAll(cause error) {
	if len(s.running) > 0 {
		s.log.Warn("jobqueue: the stream ended with jobs running; cancelling them and dropping their results", "running", len(s.running))
	}
	for id, r := range s.running {
		r.cancel(cause)
		delete(s.running, id)
	}
}
