package jobqueue_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

var quickRetries = jobqueue.WithBackoff(jobqueue.Backoff{InitialDelay: 10 * time.Millisecond, NoJitter: true})

// logRecorder keeps the worker's log messages, so a test can wait for one.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	line := rec.Level.String() + " " + rec.Message
	rec.Attrs(func(a slog.Attr) bool {
		line += " " + a.String()
		return true
	})
	r.mu.Lock()
	r.msgs = append(r.msgs, line)
	r.mu.Unlock()
	return nil
}

func (r *logRecorder) has(substr string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if strings.Contains(m, substr) {
			return true
		}
	}
	return false
}

func (r *logRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.msgs, "\n")
}

type runningWorker struct {
	*jobqueue.Worker
	logs *logRecorder
	stop func() error // cancels Run's context and returns what Run returned
}

// startWorker runs a worker for queue with handler h until the test ends (or stop).
func startWorker(t *testing.T, client *jobqueue.Client, queue string, h jobqueue.HandlerFunc, opts ...jobqueue.WorkerOption) *runningWorker {
	t.Helper()
	return startWorkerOn(t, client, []string{queue}, h, opts...)
}

// startWorkerOn is startWorker for several queues (in order of preference), with h for each.
func startWorkerOn(t *testing.T, client *jobqueue.Client, queues []string, h jobqueue.HandlerFunc, opts ...jobqueue.WorkerOption) *runningWorker {
	t.Helper()
	logs := &logRecorder{}
	opts = append([]jobqueue.WorkerOption{jobqueue.WithLogger(slog.New(logs)), jobqueue.WithWorkerID("go-test")}, opts...)
	w := jobqueue.NewWorker(client, queues, opts...)
	for _, queue := range queues {
		w.Handle(queue, h)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(waitTimeout):
				runErr = errors.New("Run did not return after its context was cancelled")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("worker: %v", err)
		}
		if t.Failed() {
			t.Logf("worker log:\n%s", logs)
		}
	})
	select {
	case <-w.Ready():
	case err := <-done:
		t.Fatalf("the worker ended before subscribing: %v", err)
	case <-time.After(waitTimeout):
		t.Fatal("the worker did not subscribe")
	}
	return &runningWorker{Worker: w, logs: logs, stop: stop}
}

func waitFor(t *testing.T, client *jobqueue.Client, jobID string) *jobqueue.Job {
	t.Helper()
	job, err := client.Wait(testContext(t), jobID)
	if err != nil {
		t.Fatalf("waiting for %s: %v", jobID, err)
	}
	return job
}

func enqueue(t *testing.T, client *jobqueue.Client, queue string, payload map[string]any, opts ...jobqueue.EnqueueOption) string {
	t.Helper()
	res, err := client.Enqueue(testContext(t), queue, payload, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return res.JobID
}

func TestAWorkerAcksTheHandlersResult(t *testing.T) {
	client, queue := newClient(t), uniqueQueue(t)
	seen := make(chan *jobqueue.LeasedJob, 1)
	startWorker(t, client, queue, func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		seen <- job
		return map[string]any{"sum": job.Payload["a"].(float64) + 1}, nil
	})

	id := enqueue(t, client, queue, map[string]any{"a": 41}, jobqueue.WithMetadata(map[string]string{"k": "v"}), jobqueue.WithBytes([]byte{7}))
	done := waitFor(t, client, id)

	if done.State != jobqueue.StateCompleted || done.Result["sum"] != 42.0 || done.Attempts != 1 || done.FinishTime.IsZero() {
		t.Errorf("job = %+v", done)
	}
	job := <-seen
	if job.ID != id || job.Queue != queue || job.Attempt != 1 || job.MaxAttempts != 3 || job.Metadata["k"] != "v" ||
		string(job.PayloadBytes) != "\x07" || job.LeaseToken == "" || job.Job.WorkerID != "go-test" {
		t.Errorf("leased job = %+v", job)
	}
	if !job.Deadline().After(job.Job.StartTime) {
		t.Errorf("deadline %s is not after the start %s", job.Deadline(), job.Job.StartTime)
	}
}

func TestAFailingJobIsRetriedUntilItIsDead(t *testing.T) {
	client, queue := newClient(t), uniqueQueue(t)
	startWorker(t, client, queue, func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		return nil, fmt.Errorf("attempt %d failed", job.Attempt)
	})

	done := waitFor(t, client, enqueue(t, client, queue, nil, jobqueue.WithMaxAttempts(3), quickRetries))

	if done.State != jobqueue.StateDead || done.Attempts != 3 || len(done.Errors) != 3 {
		t.Fatalf("job = %+v", done)
	}
	for i, e := range done.Errors {
		if e.Attempt != i+1 || e.Message != fmt.Sprintf("attempt %d failed", i+1) {
			t.Errorf("error %d = %+v", i, e)
		}
	}
	if done.LastError != "attempt 3 failed" {
		t.Errorf("last error = %q", done.LastError)
	}
}

func TestAFlakyJobCompletesOnALaterAttempt(t *testing.T) {
	client, queue := newClient(t), uniqueQueue(t)
	startWorker(t, client, queue, func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		if job.Attempt < 2 {
			panic("flaky upstream") // a panic fails the attempt like an error
		}
		return map[string]any{"attempt": job.Attempt}, nil
	})

	done := waitFor(t, client, enqueue(t, client, queue, nil, quickRetries))

	if done.State != jobqueue.StateCompleted || done.Attempts != 2 || done.Result["attempt"] != 2.0 ||
		len(done.Errors) != 1 || !strings.Contains(done.Errors[0].Message, "flaky upstream") {
		t.Errorf("job = %+v", done)
	}
}

func TestANonRetryableErrorMakesTheJobDeadAtOnce(t *testing.T) {
	client, queue := newClient(t), uniqueQueue(t)
	startWorker(t, client, queue, func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		return nil, fmt.Errorf("validating: %w", jobqueue.NonRetryable(errors.New("no such address")))
	})

	done := waitFor(t, client, enqueue(t, client, queue, nil, jobqueue.WithMaxAttempts(5), quickRetries))

	if done.State != jobqueue.StateDead || done.Attempts != 1 || done.LastError != "validating: no such address" {
		t.Errorf("job = %+v", done)
	}
}

func TestTheLeaseIsExtendedWhileALongHandlerRuns(t *testing.T) {
	client, queue := newClient(t), uniqueQueue(t)
	deadlines := make(chan [2]time.Time, 1) // at the start and at the end
	startWorker(t, client, queue, func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		first := job.Deadline()
		select {
		case <-time.After(2500 * time.Millisecond): // 2.5 leases
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
		deadlines <- [2]time.Time{first, job.Deadline()}
		return map[string]any{"slept": true}, nil
	})

	done := waitFor(t, client, enqueue(t, client, queue, nil, jobqueue.WithLeaseDuration(time.Second)))

	if done.State != jobqueue.StateCompleted || done.Attempts != 1 || done.Result["slept"] != true || len(done.Errors) != 0 {
		t.Fatalf("job = %+v", done)
	}
	if d := <-deadlines; !d[1].After(d[0].Add(time.Second)) {
		t.Errorf("the deadline went from %s to %s", d[0], d[1])
	}
}

func TestNeverMoreJobsRunThanTheConcurrency(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)
	gate := make(chan struct{})
	var now, peak atomic.Int32
	startWorker(t, client, queue, func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		n := now.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		defer now.Add(-1)
		<-gate
		return nil, nil
	}, jobqueue.WithConcurrency(2))
	var ids []string
	for i := range 6 {
		ids = append(ids, enqueue(t, client, queue, map[string]any{"i": i}))
	}

	eventually(t, "two handlers run", func() bool { return now.Load() == 2 })
	stats, err := client.Stats(ctx, queue)
	if err != nil {
		t.Fatal(err)
	}
	close(gate)
	for _, id := range ids {
		if job := waitFor(t, client, id); job.State != jobqueue.StateCompleted {
			t.Errorf("job %s is %s", id, job.State)
		}
	}

	if stats[0].Active != 2 || stats[0].Queued != 4 {
		t.Errorf("while blocked: %+v (the window is the concurrency)", stats[0])
	}
	if peak.Load() != 2 {
		t.Errorf("%d handlers ran at once", peak.Load())
	}
}

func TestAGracefulStopLetsTheRunningJobFinishAndTakesNoOther(t *testing.T) {
	client, queue := newClient(t), uniqueQueue(t)
	gate := make(chan struct{})
	started := make(chan string, 10)
	w := startWorker(t, client, queue, func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		started <- job.ID
		select {
		case <-gate:
			return map[string]any{"drained": true}, nil
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}, jobqueue.WithConcurrency(1))
	running := enqueue(t, client, queue, nil)
	if id := <-started; id != running {
		t.Fatalf("started %s", id)
	}
	waiting := enqueue(t, client, queue, nil)

	stopped := make(chan error, 1)
	go func() { stopped <- w.stop() }()
	eventually(t, "the worker drains", func() bool { return w.logs.has("waiting for running jobs") })
	close(gate)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}

	done, err := client.GetStatus(testContext(t), running)
	if err != nil {
		t.Fatal(err)
	}
	if done.State != jobqueue.StateCompleted || done.Result["drained"] != true || done.Attempts != 1 {
		t.Errorf("running job = %+v", done)
	}
	if len(started) != 0 {
		t.Errorf("a stopping worker started %s", <-started)
	}
	eventually(t, "the waiting job is queued", func() bool {
		job, err := client.GetStatus(testContext(t), waiting)
		return err == nil && job.State == jobqueue.StateQueued
	})
}

func TestAHardStopCancelsTheHandlerAndReleasesTheJob(t *testing.T) {
	client, queue := newClient(t), uniqueQueue(t)
	started := make(chan struct{})
	cause := make(chan error, 1)
	w := startWorker(t, client, queue, func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		close(started)
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return map[string]any{"too": "late"}, nil
	}, jobqueue.WithGracePeriod(100*time.Millisecond))
	id := enqueue(t, client, queue, nil)
	<-started

	if err := w.stop(); err != nil {
		t.Fatal(err)
	}

	if err := <-cause; !errors.Is(err, jobqueue.ErrWorkerStopped) {
		t.Errorf("cause = %v", err)
	}
	eventually(t, "the job is released", func() bool {
		job, err := client.GetStatus(testContext(t), id)
		return err == nil && job.State == jobqueue.StateQueued && job.Attempts == 1 && job.Result == nil
	})
}

func TestALostLeaseCancelsTheHandlerAndFreesItsSlot(t *testing.T) {
	client, queue := newClient(t), uniqueQueue(t)
	leased := make(chan *jobqueue.LeasedJob, 1)
	cause := make(chan error, 1)
	startWorker(t, client, queue, func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		if job.Payload["block"] != true {
			return map[string]any{"next": true}, nil
		}
		leased <- job
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return nil, context.Cause(ctx)
	}, jobqueue.WithConcurrency(1))
	first := enqueue(t, client, queue, map[string]any{"block": true}, jobqueue.WithLeaseDuration(time.Second))
	job := <-leased

	// Someone else settles the job with its token: the worker's next extend is refused.
	_, err := client.Stub().Ack(testContext(t), &jobqueuev1.AckRequest{JobId: job.ID, LeaseToken: job.LeaseToken})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-cause; !errors.Is(err, jobqueue.ErrLeaseLost) {
		t.Errorf("cause = %v", err)
	}
	// With a window of one, the next job runs only if the lost job's slot was freed.
	next := waitFor(t, client, enqueue(t, client, queue, nil))

	if next.State != jobqueue.StateCompleted || next.Result["next"] != true {
		t.Errorf("next job = %+v", next)
	}
	if done, _ := client.GetStatus(testContext(t), first); done.State != jobqueue.StateCompleted || len(done.Errors) != 0 {
		t.Errorf("the refused fail changed the job: %+v", done)
	}
}

// proxy forwards TCP connections to the server and can cut them all, like a network
// failure, while still accepting new ones.
type proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	return p
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func TestAfterTheStreamDropsTheWorkerReconnectsAndDropsTheOldResult(t *testing.T) {
	newClient(t) // skips without a server
	p := startProxy(t, serverAddr)
	client, err := jobqueue.Dial(p.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	queue := uniqueQueue(t)
	firstStarted := make(chan struct{})
	cause := make(chan error, 1)
	w := startWorker(t, client, queue, func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		if job.Attempt > 1 {
			return map[string]any{"from": "new stream"}, nil
		}
		close(firstStarted)
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return map[string]any{"from": "old stream"}, nil // dropped: its token died with the stream
	}, jobqueue.WithConcurrency(1))
	id := enqueue(t, client, queue, nil)
	<-firstStarted

	p.cut()

	if err := <-cause; !errors.Is(err, jobqueue.ErrLeaseLost) {
		t.Errorf("cause = %v", err)
	}
	// The server released the job when the stream ended; the new stream gets it again.
	done := waitFor(t, client, id)
	if done.State != jobqueue.StateCompleted || done.Attempts != 2 || done.Result["from"] != "new stream" {
		t.Errorf("job = %+v", done)
	}
	if !w.logs.has("reconnecting") {
		t.Errorf("no reconnect logged:\n%s", w.logs)
	}
}
