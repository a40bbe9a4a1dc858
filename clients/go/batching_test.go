package jobqueue_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
)

// A batch that waits for a test, not for its linger.
var patient = jobqueue.Batching{Linger: time.Hour}

func TestConcurrentEnqueuesTravelAsStreamMessagesOfAtMost32JobsEachGettingItsOwnJob(t *testing.T) {
	log := newCallLog(t)
	client, ctx, queue := batchingClient(t, "", jobqueue.Batching{}, log), testContext(t), uniqueQueue(t)
	const callers, each = 64, 25
	ids := make([][]string, callers)
	var wg sync.WaitGroup
	for g := range callers {
		wg.Go(func() {
			for i := range each {
				res, err := client.Enqueue(ctx, queue, map[string]any{"g": g, "i": i})
				if err != nil {
					t.Error(err)
					return
				}
				ids[g] = append(ids[g], res.JobID)
			}
		})
	}
	wg.Wait()

	seen := map[string]bool{}
	for g := range callers {
		for i, id := range ids[g] {
			job, err := client.GetStatus(ctx, id)
			if err != nil || seen[id] || job.Payload["g"] != float64(g) || job.Payload["i"] != float64(i) {
				t.Fatalf("job %s of caller %d, call %d: %+v (%v); seen before: %v", id, g, i, job, err, seen[id])
			}
			seen[id] = true
		}
	}
	if len(seen) != callers*each {
		t.Errorf("%d jobs, want %d", len(seen), callers*each)
	}
	messages := log.carrying(queue)
	t.Logf("%d jobs in %d stream messages", callers*each, len(messages))
	for _, m := range messages {
		if m.method != "EnqueueStream" || len(m.queues) > 32 {
			t.Fatalf("%s of %d jobs, want stream messages of at most 32", m.method, len(m.queues))
		}
	}
	if len(messages)*4 > callers*each {
		t.Errorf("%d messages for %d jobs: batching should need far fewer", len(messages), callers*each)
	}
	if n := log.streamsOpened(); n != 1 {
		t.Errorf("%d streams opened, want one", n)
	}
}

func TestABatchRefusedForOneJobFailsOnlyThatCallerAndSendsTheRest(t *testing.T) {
	log := newCallLog(t)
	client, ctx := batchingClient(t, "", jobqueue.Batching{Linger: time.Hour, MaxJobs: 5}, log), testContext(t)
	good, bad := uniqueQueue(t), uniqueQueue(t)+"-bad"
	held := holdABatch(t, client, log)

	var goods []<-chan outcome
	for range 4 {
		goods = append(goods, enqueueAsync(ctx, client, good))
	}
	// The server refuses a metadata value over 4,096 characters; the client does not check.
	badOne := enqueueAsync(ctx, client, bad, jobqueue.WithMetadata(map[string]string{"k": strings.Repeat("v", 5000)}))
	// The fifth job filled the batch, which went out at once; its answer comes after the held one's.
	eventually(t, "the full batch is sent", func() bool { return len(log.sent(good)) == 1 })
	log.releaseHeld()

	refused := receive(t, badOne).err
	var e *jobqueue.Error
	if !errors.Is(refused, jobqueue.ErrInvalidArgument) || !errors.As(refused, &e) || e.Field != "metadata['k']" || !strings.HasPrefix(e.Message, "metadata['k']: ") {
		t.Fatalf("err = %v (%+v), want INVALID_ARGUMENT on metadata['k']", refused, e)
	}
	if field := badRequestField(t, refused); field != "metadata['k']" {
		t.Errorf("the status's BadRequest names %q", field)
	}
	for _, ch := range goods {
		o := receive(t, ch)
		if o.err != nil {
			t.Fatal(o.err)
		}
		if job, err := client.GetStatus(ctx, o.res.JobID); err != nil || job.Queue != good {
			t.Errorf("job %s: %+v (%v)", o.res.JobID, job, err)
		}
	}
	calls := log.carrying(good)
	if len(calls) != 2 || len(calls[0].queues) != 5 || calls[0].err == nil || len(calls[1].queues) != 4 || calls[1].err != nil ||
		calls[0].method != "EnqueueStream" || calls[1].method != "EnqueueStream" {
		t.Errorf("calls = %+v, want a refused stream message of 5, then one of the 4 good jobs", calls)
	}
	if o := receive(t, held); o.err != nil {
		t.Error(o.err)
	}
}

func badRequestField(t *testing.T, err error) string {
	t.Helper()
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) > 0 {
			return br.GetFieldViolations()[0].GetField()
		}
	}
	return ""
}

func TestABatchRefusedAsAWholeFailsEveryCaller(t *testing.T) {
	log := newCallLog(t)
	client := batchingClient(t, serverWithoutAOF(t), jobqueue.Batching{Linger: time.Hour, MaxJobs: 3}, log)
	ctx, queue, fsynced := testContext(t), uniqueQueue(t), jobqueue.WithDurability(jobqueue.DurabilityFsynced)
	held := holdABatch(t, client, log, fsynced)

	var callers []<-chan outcome
	for range 3 {
		callers = append(callers, enqueueAsync(ctx, client, queue, fsynced))
	}
	eventually(t, "the full batch is sent", func() bool { return len(log.sent(queue)) == 1 })
	log.releaseHeld()

	for _, ch := range callers {
		if o := receive(t, ch); !errors.Is(o.err, jobqueue.ErrDurabilityUnavailable) || o.res.JobID != "" {
			t.Errorf("outcome %+v, want ErrDurabilityUnavailable", o)
		}
	}
	if calls := log.carrying(queue); len(calls) != 1 || len(calls[0].queues) != 3 {
		t.Errorf("calls = %+v, want one batch of the 3 jobs", calls)
	}
	if stats, err := client.Stats(ctx, queue); err != nil || (len(stats) == 1 && stats[0].Queued != 0) {
		t.Errorf("stats %+v (%v): nothing should be written", stats, err)
	}
	receive(t, held)
}

func TestTwoCallersWithOneIdempotencyKeyInOneBatchGetOneJob(t *testing.T) {
	log := newCallLog(t)
	client, ctx, queue := batchingClient(t, "", jobqueue.Batching{Linger: time.Hour, MaxJobs: 2}, log), testContext(t), uniqueQueue(t)
	held := holdABatch(t, client, log)

	a := enqueueAsync(ctx, client, queue, jobqueue.WithIdempotencyKey("order-1"))
	b := enqueueAsync(ctx, client, queue, jobqueue.WithIdempotencyKey("order-1"))
	eventually(t, "the full batch is sent", func() bool { return len(log.sent(queue)) == 1 })
	log.releaseHeld()

	oa, ob := receive(t, a), receive(t, b)
	if oa.err != nil || ob.err != nil || oa.res.JobID != ob.res.JobID || oa.res.Duplicate == ob.res.Duplicate {
		t.Errorf("outcomes %+v and %+v, want one job, one of them the duplicate", oa, ob)
	}
	if calls := log.carrying(queue); len(calls) != 1 || len(calls[0].queues) != 2 {
		t.Errorf("calls = %+v, want one batch of both", calls)
	}
	receive(t, held)
}

func TestACallCancelledBeforeItsJobIsSentRemovesTheJob(t *testing.T) {
	log := newCallLog(t)
	client, ctx := batchingClient(t, "", patient, log), testContext(t)
	kept, dropped := uniqueQueue(t), uniqueQueue(t)+"-dropped"
	held := holdABatch(t, client, log)
	keptOne := enqueueAsync(ctx, client, kept)
	cancelCtx, cancel := context.WithCancel(ctx)
	droppedOne := enqueueAsync(cancelCtx, client, dropped)
	waitPending(t, client, 2)

	cancel()

	if o := receive(t, droppedOne); !errors.Is(o.err, context.Canceled) {
		t.Errorf("the cancelled call returned %+v, want context.Canceled", o)
	}
	waitPending(t, client, 1)
	log.releaseHeld()
	if o := receive(t, keptOne); o.err != nil {
		t.Fatal(o.err)
	}
	receive(t, held)
	if calls := log.sent(dropped); len(calls) != 0 {
		t.Errorf("the cancelled job was sent: %+v", calls)
	}
	if stats, _ := client.Stats(ctx, dropped); len(stats) == 1 && stats[0].Queued != 0 {
		t.Errorf("the cancelled job was written: %+v", stats)
	}
}

// A unary call carries a deadline to the server; a stream message has none of its own (the
// client waits for its answer up to the same deadline).
func TestAnEnqueueBatchCallCarriesTheEarliestDeadlineOfItsCallers(t *testing.T) {
	log := newCallLog(t)
	client, queue := batchingClient(t, serverWithoutStream(t), patient, log), uniqueQueue(t)
	held := holdABatch(t, client, log)
	soon := time.Now().Add(30 * time.Minute)
	later, cancelLater := context.WithDeadline(context.Background(), soon.Add(30*time.Minute))
	defer cancelLater()
	sooner, cancelSooner := context.WithDeadline(context.Background(), soon)
	defer cancelSooner()
	a, b := enqueueAsync(later, client, queue), enqueueAsync(sooner, client, queue)
	waitPending(t, client, 2)

	log.releaseHeld()

	receive(t, held)
	if oa, ob := receive(t, a), receive(t, b); oa.err != nil || ob.err != nil {
		t.Fatal(oa.err, ob.err)
	}
	calls := log.carrying(queue)
	if len(calls) != 1 || len(calls[0].queues) != 2 || !calls[0].deadline.Equal(soon) {
		t.Errorf("calls = %+v, want one batch with the deadline %s", calls, soon)
	}
}

func TestJobsOfDifferentDurabilityNeverShareABatch(t *testing.T) {
	log := newCallLog(t)
	client, ctx, queue := batchingClient(t, "", patient, log), testContext(t), uniqueQueue(t)
	levels := []jobqueue.Durability{"", jobqueue.DurabilityApplied, jobqueue.DurabilityFsynced}
	var held, callers []<-chan outcome
	for _, d := range levels {
		held = append(held, holdABatch(t, client, log, jobqueue.WithDurability(d)))
	}
	for _, d := range levels {
		for range 2 {
			callers = append(callers, enqueueAsync(ctx, client, queue, jobqueue.WithDurability(d)))
		}
	}
	waitPending(t, client, len(callers))

	log.releaseHeld()

	for _, ch := range append(held, callers...) {
		if o := receive(t, ch); o.err != nil {
			t.Fatal(o.err)
		}
	}
	calls := log.carrying(queue)
	for _, c := range calls {
		if len(c.queues) != 2 || c.durabilities[0] != c.durabilities[1] {
			t.Errorf("a call of %d jobs at levels %v, want 2 at one level", len(c.queues), c.durabilities)
		}
	}
	if len(calls) != len(levels) {
		t.Errorf("%d calls, want one per durability level: %+v", len(calls), calls)
	}
	if n := log.streamsOpened(); n != len(levels) {
		t.Errorf("%d streams opened, want one per durability level", n)
	}
}

func TestABatchInFlightHoldsUpNoOtherDurabilityLevel(t *testing.T) {
	log := newCallLog(t)
	client, ctx, queue := batchingClient(t, "", patient, log), testContext(t), uniqueQueue(t)
	held := holdABatch(t, client, log, jobqueue.WithDurability(jobqueue.DurabilityFsynced))

	// Sent at once, although an fsynced batch is in flight and the linger is an hour.
	if _, err := client.Enqueue(ctx, queue, nil, jobqueue.WithDurability(jobqueue.DurabilityApplied)); err != nil {
		t.Fatal(err)
	}
	log.releaseHeld()
	receive(t, held)
}

func TestFlushSendsWaitingJobsAndWaitsForTheBatchesInFlight(t *testing.T) {
	log := newCallLog(t)
	client, ctx, queue := batchingClient(t, "", patient, log), testContext(t), uniqueQueue(t)
	held := holdABatch(t, client, log)
	a, b := enqueueAsync(ctx, client, queue), enqueueAsync(ctx, client, queue)
	waitPending(t, client, 2)

	flushed := make(chan error, 1)
	go func() { flushed <- client.Flush(ctx) }()

	eventually(t, "the waiting jobs are sent", func() bool { return len(log.sent(queue)) == 1 })
	select {
	case err := <-flushed:
		t.Fatalf("Flush returned (%v) while a batch is in flight", err)
	default:
	}
	log.releaseHeld()
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if len(log.carrying(log.holdQueue)) != 1 {
		t.Error("Flush returned before the held batch was answered")
	}
	for _, ch := range []<-chan outcome{held, a, b} {
		if o := receive(t, ch); o.err != nil {
			t.Error(o.err)
		}
	}
}

func TestFlushGivesUpWithItsContext(t *testing.T) {
	log := newCallLog(t)
	client := batchingClient(t, "", patient, log)
	held := holdABatch(t, client, log)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	if err := client.Flush(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Flush = %v, want context.Canceled", err)
	}
	log.releaseHeld()
	receive(t, held)
}

func TestCloseSendsWaitingJobsFirst(t *testing.T) {
	log := newCallLog(t)
	client, ctx, queue := batchingClient(t, "", patient, log), testContext(t), uniqueQueue(t)
	held := holdABatch(t, client, log)
	waiting := enqueueAsync(ctx, client, queue)
	waitPending(t, client, 1)

	closed := make(chan error, 1)
	go func() { closed <- client.Close() }()
	eventually(t, "the waiting job is sent", func() bool { return len(log.sent(queue)) == 1 })
	log.releaseHeld()

	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	for _, ch := range []<-chan outcome{held, waiting} {
		if o := receive(t, ch); o.err != nil || o.res.JobID == "" {
			t.Errorf("outcome %+v", o)
		}
	}
	if _, err := client.Enqueue(ctx, queue, nil); err == nil {
		t.Error("Enqueue after Close succeeded")
	}
}

func TestWithoutBatchingEachEnqueueIsItsOwnCall(t *testing.T) {
	log := newCallLog(t)
	if serverAddr == "" {
		t.Skip(skipReason)
	}
	client, err := jobqueue.Dial(serverAddr, jobqueue.WithoutBatching(), jobqueue.WithDialOptions(grpc.WithUnaryInterceptor(log.intercept)))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, queue := testContext(t), uniqueQueue(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10 {
				if _, err := client.Enqueue(ctx, queue, nil); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()

	calls := log.carrying(queue)
	for _, c := range calls {
		if c.method != "Enqueue" {
			t.Fatalf("a %s call", c.method)
		}
	}
	if len(calls) != 80 {
		t.Errorf("%d calls for 80 jobs", len(calls))
	}
	if err := client.Flush(ctx); err != nil {
		t.Errorf("Flush without batching: %v", err)
	}
}

func TestACallerWhoseDeadlinePassesUnansweredGetsDeadlineExceededAndTheStreamGoesOn(t *testing.T) {
	addr, valkeyAddr := serverOnValkey(t)
	log := newCallLog(t)
	client, ctx, queue := batchingClient(t, addr, jobqueue.Batching{}, log), testContext(t), uniqueQueue(t)
	if _, err := client.Enqueue(ctx, queue, nil); err != nil { // opens the stream
		t.Fatal(err)
	}
	pauseWrites(t, valkeyAddr, 700*time.Millisecond) // the server answers late

	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err := client.Enqueue(short, queue, nil)

	var e *jobqueue.Error
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &e) || !strings.Contains(e.Message, "may still be enqueued") {
		t.Fatalf("err = %v, want DEADLINE_EXCEEDED saying the job may still be enqueued", err)
	}
	if _, err := client.Enqueue(ctx, queue, nil); err != nil {
		t.Fatalf("an enqueue after the deadline passed: %v", err)
	}
	if n := log.streamsOpened(); n != 1 {
		t.Errorf("%d streams opened: the one the late batch was on should have gone on", n)
	}
	// The late job was written after all, as its caller was told it may be.
	eventually(t, "three jobs are queued", func() bool {
		stats, err := client.Stats(ctx, queue)
		return err == nil && len(stats) == 1 && stats[0].Queued == 3
	})
}

func TestAServerWithoutEnqueueStreamGetsEnqueueBatchCallsByTheCallsNumbers(t *testing.T) {
	log := newCallLog(t)
	client, ctx, queue := batchingClient(t, serverWithoutStream(t), patient, log), testContext(t), uniqueQueue(t)
	held := holdABatch(t, client, log) // tries the stream, then goes as a plain Enqueue
	const callers = 40                 // more than a stream message's 32: one call takes them all
	var outcomes []<-chan outcome
	for range callers {
		outcomes = append(outcomes, enqueueAsync(ctx, client, queue))
	}
	waitPending(t, client, callers)

	log.releaseHeld()

	check := newClient(t) // the test server itself: the older one only enqueues
	for _, ch := range append(outcomes, held) {
		o := receive(t, ch)
		if o.err != nil {
			t.Fatal(o.err)
		}
		if _, err := check.GetStatus(ctx, o.res.JobID); err != nil {
			t.Errorf("job %s: %v", o.res.JobID, err)
		}
	}
	if calls := log.carrying(queue); len(calls) != 1 || calls[0].method != "EnqueueBatch" || len(calls[0].queues) != callers {
		t.Errorf("calls = %+v, want one EnqueueBatch of the %d jobs", calls, callers)
	}
	if calls := log.carrying(log.holdQueue); len(calls) != 1 || calls[0].method != "Enqueue" {
		t.Errorf("the held job's calls: %+v, want one Enqueue", calls)
	}
	if _, err := client.Enqueue(ctx, queue, nil); err != nil {
		t.Fatal(err)
	}
	if n := log.streamsOpened(); n != 1 {
		t.Errorf("%d streams opened: UNIMPLEMENTED should be remembered after the first", n)
	}
}

func TestAJobLargerThanMaxBytesGoesAsItsOwnEnqueueCall(t *testing.T) {
	log := newCallLog(t)
	client, ctx, queue := batchingClient(t, "", jobqueue.Batching{MaxBytes: 200}, log), testContext(t), uniqueQueue(t)

	if _, err := client.Enqueue(ctx, queue, map[string]any{"pad": strings.Repeat("x", 1000)}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Enqueue(ctx, queue, nil); err != nil {
		t.Fatal(err)
	}

	calls := log.carrying(queue)
	if len(calls) != 2 || calls[0].method != "Enqueue" || calls[1].method != "EnqueueStream" {
		t.Errorf("calls = %+v, want the large job as an Enqueue call, the small one on the stream", calls)
	}
}
