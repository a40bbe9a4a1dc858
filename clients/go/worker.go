package jobqueue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
)

// HandlerFunc runs one job. Returning (result, nil) acks the job with result (nil for
// none; it must convert to a JSON object). Returning an error fails the attempt: the job
// is retried after its backoff while it has attempts left, goes to DEAD at once when the
// error is marked with NonRetryable, and is retried after a set delay with RetryAfter. A
// panic fails the attempt like an error.
//
// ctx is cancelled when the server stops the job: context.Cause is then ErrJobCancelled
// (Client.Cancel was called while it ran; the job is CANCELLED) or ErrJobTimedOut (the attempt
// ran past the job's execution timeout, WithExecutionTimeout; the server failed it). The
// worker then settles nothing for the job and drops whatever the handler returns; the
// handler's slot is taken by the next job once it returns. ctx is also cancelled when the
// job's lease is lost (context.Cause is then an error matching ErrLeaseLost: the job went to
// someone else, so its result would be refused) and when the worker stops hard
// (context.Cause is ErrWorkerStopped). A graceful stop does not cancel it.
//
// job.Progress and job.Log report how far the job is and what it does while it runs.
type HandlerFunc func(ctx context.Context, job *LeasedJob) (map[string]any, error)

// ErrWorkerStopped is the cause of a handler's context cancellation when the worker's
// grace period ran out.
var ErrWorkerStopped = errors.New("jobqueue: worker stopped before the handler finished")

// errStreamEnded is the cause of a handler's cancellation when its stream ended: the
// server released the job, so its result is dropped.
var errStreamEnded = fmt.Errorf("%w: the Lease stream ended and the server released the job", ErrLeaseLost)

const (
	// DefaultConcurrency is the number of jobs a worker runs at once unless WithConcurrency
	// says otherwise.
	DefaultConcurrency = 10
	// DefaultGracePeriod is how long a stopping worker waits for running handlers.
	DefaultGracePeriod = 30 * time.Second
	// handlerExitWait bounds how long Run waits, after cancelling them, for handlers that
	// ignore their context.
	handlerExitWait = time.Second
)

// queueName is the grammar of queue names (EnqueueRequest.queue in the contract).
var queueName = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// WorkerOption configures NewWorker.
type WorkerOption interface {
	applyWorker(*workerSettings)
}

type workerOptionFunc func(*workerSettings)

func (f workerOptionFunc) applyWorker(s *workerSettings) { f(s) }

type workerSettings struct {
	concurrency   int
	grace         time.Duration
	workerID      string
	leaseDuration time.Duration
	ackDurability Durability
	logger        *slog.Logger
}

// WithConcurrency sets how many jobs run at once; it is also the stream's credit window
// (max_in_flight), so the server never sends a job that would have to wait. Default 10.
func WithConcurrency(n int) WorkerOption {
	return workerOptionFunc(func(s *workerSettings) { s.concurrency = n })
}

// WithGracePeriod sets how long a stopping worker lets running handlers finish before it
// cancels them (default 30 s; 0 cancels them at once).
func WithGracePeriod(d time.Duration) WorkerOption {
	return workerOptionFunc(func(s *workerSettings) { s.grace = d })
}

// WithWorkerID names the worker on the jobs it holds (default host:pid:random).
func WithWorkerID(id string) WorkerOption {
	return workerOptionFunc(func(s *workerSettings) { s.workerID = id })
}

// WithLogger sets where the worker logs (default slog.Default()).
func WithLogger(l *slog.Logger) WorkerOption {
	return workerOptionFunc(func(s *workerSettings) { s.logger = l })
}

// Worker leases jobs from some queues on one Lease stream and runs a handler for each, at
// most the concurrency at a time. While a handler runs its lease is extended; its outcome
// is acked or failed on the stream. When the stream breaks, the worker reconnects with
// exponential backoff and full jitter (100 ms doubling to 10 s, reset after 30 s
// connected); handlers still running on the lost stream are cancelled and their results
// dropped, because the server released their jobs when the stream ended.
//
// Register handlers with Handle, then call Run once.
type Worker struct {
	client   *Client
	queues   []string
	handlers map[string]HandlerFunc
	settings workerSettings
	log      *slog.Logger

	slots      chan struct{}  // one per running handler
	inHandlers sync.WaitGroup // handler goroutines, across streams
	ready      chan struct{}
	readyOnce  sync.Once
	started    atomic.Bool
	backoff    *reconnectBackoff
}

// NewWorker makes a worker for queues (in order of preference). Register a handler for
// each with Handle before calling Run.
func NewWorker(client *Client, queues []string, opts ...WorkerOption) *Worker {
	s := workerSettings{concurrency: DefaultConcurrency, grace: DefaultGracePeriod}
	for _, opt := range opts {
		opt.applyWorker(&s)
	}
	if s.workerID == "" {
		s.workerID = defaultWorkerID()
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	return &Worker{
		client:   client,
		queues:   append([]string(nil), queues...),
		handlers: make(map[string]HandlerFunc),
		settings: s,
		log:      s.logger.With("worker_id", s.workerID),
		ready:    make(chan struct{}),
		backoff:  newReconnectBackoff(),
	}
}

// Handle registers the handler for a queue's jobs, replacing any earlier one. A queue not
// given to NewWorker is added to the subscription, after the others. Call Handle before
// Run.
func (w *Worker) Handle(queue string, h HandlerFunc) {
	if _, ok := w.handlers[queue]; !ok && !contains(w.queues, queue) {
		w.queues = append(w.queues, queue)
	}
	w.handlers[queue] = h
}

// ID returns the worker id the stream subscribes with.
func (w *Worker) ID() string { return w.settings.workerID }

// Ready is closed once the worker's first stream has subscribed.
func (w *Worker) Ready() <-chan struct{} { return w.ready }

func contains(items []string, item string) bool {
	for _, it := range items {
		if it == item {
			return true
		}
	}
	return false
}

func defaultWorkerID() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(suffix))
}

// validate fails fast on what the server would refuse.
func (w *Worker) validate() error {
	if len(w.queues) == 0 {
		return invalidArgument("queues", "subscribe to at least one queue")
	}
	for i, q := range w.queues {
		if !queueName.MatchString(q) {
			return invalidArgument(fmt.Sprintf("queues[%d]", i), "must be 1 to 128 of letters, digits, '-', '_', '.' and ':'")
		}
		if w.handlers[q] == nil {
			return invalidArgument(fmt.Sprintf("queues[%d]", i), "has no handler: call Handle("+q+", ...)")
		}
	}
	if w.settings.concurrency < 1 {
		return invalidArgument("concurrency", "must be at least 1")
	}
	if w.settings.grace < 0 {
		return invalidArgument("grace_period", "must not be negative")
	}
	_, err := w.settings.ackDurability.toProto("ack_durability")
	return err
}

// Run runs the worker until ctx is cancelled, then stops gracefully: it takes no more
// jobs, lets running handlers finish for up to the grace period (then cancels them, and
// the server gives their jobs out again), sends the last acks and closes the stream. It
// returns nil after a stop, or an error that reconnecting cannot fix (an invalid
// subscription, a missing handler, refused credentials).
//
// Stopping on SIGTERM is the caller's: run it under signal.NotifyContext.
func (w *Worker) Run(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return errors.New("jobqueue: Worker.Run called more than once")
	}
	if err := w.validate(); err != nil {
		return err
	}
	w.slots = make(chan struct{}, w.settings.concurrency)
	defer w.waitForHandlers()
	for {
		began := time.Now()
		err := newSession(w).run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if fatal(err) {
			return err
		}
		w.backoff.connectionEnded(time.Since(began))
		delay := w.backoff.next()
		w.log.Warn("jobqueue: lease stream ended; reconnecting", "error", err, "delay", delay)
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
	}
}

// fatal reports errors that reconnecting would only repeat.
func fatal(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case codes.InvalidArgument, codes.Unimplemented, codes.Unauthenticated, codes.PermissionDenied:
		return true
	}
	return false
}

// waitForHandlers waits a little for handlers that outlived their stream (they were
// cancelled); a handler that ignores its context is left running.
func (w *Worker) waitForHandlers() {
	done := make(chan struct{})
	go func() {
		w.inHandlers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(handlerExitWait):
		w.log.Warn("jobqueue: some handlers ignored their cancelled context and are still running")
	}
}

func (w *Worker) markReady() {
	w.readyOnce.Do(func() { close(w.ready) })
}

// call runs the handler, turning a panic into an error, and says how long it ran (on the
// monotonic clock, from just before the call to its return or panic); ran is false when
// there was no handler to call.
func (w *Worker) call(ctx context.Context, job *LeasedJob) (result map[string]any, took time.Duration, ran bool, err error) {
	h := w.handlers[job.Queue]
	if h == nil {
		return nil, 0, false, NonRetryable(fmt.Errorf("no handler for queue %q", job.Queue))
	}
	began := time.Now()
	defer func() {
		took, ran = time.Since(began), true
		if p := recover(); p != nil {
			w.log.Error("jobqueue: handler panicked", "job_id", job.ID, "panic", p)
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	result, err = h(ctx, job)
	return // took and ran are set by the deferred function
}
