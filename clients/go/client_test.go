package jobqueue_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

func TestEnqueueThenGetStatusShowsTheJob(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)

	res, err := client.Enqueue(ctx, queue, map[string]any{"to": "ada", "n": 3, "tags": []string{"x"}},
		jobqueue.WithPriority(jobqueue.PriorityHigh),
		jobqueue.WithMaxAttempts(5),
		jobqueue.WithMetadata(map[string]string{"tenant": "t1"}),
		jobqueue.WithBytes([]byte("raw")),
		jobqueue.WithLeaseDuration(45*time.Second),
		jobqueue.WithBackoff(jobqueue.Backoff{InitialDelay: 2 * time.Second, NoJitter: true}),
	)
	if err != nil {
		t.Fatal(err)
	}
	job, err := client.GetStatus(ctx, res.JobID)
	if err != nil {
		t.Fatal(err)
	}

	if job.ID != res.JobID || job.Queue != queue || job.State != jobqueue.StateQueued || job.Priority != jobqueue.PriorityHigh {
		t.Errorf("job = %+v", job)
	}
	if job.Payload["to"] != "ada" || job.Payload["n"] != 3.0 || string(job.PayloadBytes) != "raw" || job.Metadata["tenant"] != "t1" {
		t.Errorf("payload %v, bytes %q, metadata %v", job.Payload, job.PayloadBytes, job.Metadata)
	}
	if job.MaxAttempts != 5 || job.Attempts != 0 || job.LeaseDuration != 45*time.Second || job.Backoff.InitialDelay != 2*time.Second {
		t.Errorf("job = %+v, backoff %+v", job, job.Backoff)
	}
	if job.CreateTime.IsZero() || !job.FinishTime.IsZero() {
		t.Errorf("create %s, finish %s", job.CreateTime, job.FinishTime)
	}
}

func TestAnIdempotencyKeyReturnsTheFirstJob(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)

	first, err := client.Enqueue(ctx, queue, nil, jobqueue.WithIdempotencyKey("order-1"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := client.Enqueue(ctx, queue, nil, jobqueue.WithIdempotencyKey("order-1"))
	if err != nil {
		t.Fatal(err)
	}

	if first.Duplicate || !second.Duplicate || second.JobID != first.JobID {
		t.Errorf("first %+v, second %+v", first, second)
	}
}

func TestEnqueueBatchAndStatsCountByState(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)

	results, err := client.EnqueueBatch(ctx, []jobqueue.BatchJob{
		{Queue: queue, Payload: map[string]any{"i": 1}},
		{Queue: queue, Payload: map[string]any{"i": 2}},
		{Queue: queue, Options: []jobqueue.EnqueueOption{jobqueue.WithDelay(time.Hour)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	stats, err := client.Stats(ctx, queue)
	if err != nil {
		t.Fatal(err)
	}

	if len(results) != 3 || results[0].JobID == results[1].JobID {
		t.Errorf("results = %+v", results)
	}
	if len(stats) != 1 || stats[0].Queue != queue || stats[0].Queued != 2 || stats[0].Scheduled != 1 || stats[0].Active != 0 {
		t.Errorf("stats = %+v", stats)
	}
	all, err := client.Stats(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range all {
		found = found || s.Queue == queue
	}
	if !found {
		t.Errorf("Stats for every queue lacks %s: %+v", queue, all)
	}
}

func TestCancelAndRetryMoveAJobAndRefuseTheWrongState(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)
	res, err := client.Enqueue(ctx, queue, nil, jobqueue.WithDelay(time.Hour))
	if err != nil {
		t.Fatal(err)
	}

	if err := client.Retry(ctx, res.JobID); !errors.Is(err, jobqueue.ErrWrongState) {
		t.Errorf("retry of a scheduled job: %v", err)
	}
	if err := client.Cancel(ctx, res.JobID); err != nil {
		t.Fatal(err)
	}
	cancelled, _ := client.Wait(ctx, res.JobID) // terminal at once
	if cancelled.State != jobqueue.StateCancelled || cancelled.FinishTime.IsZero() {
		t.Errorf("after cancel: %+v", cancelled)
	}
	if err := client.Cancel(ctx, res.JobID); !errors.Is(err, jobqueue.ErrWrongState) {
		t.Errorf("second cancel: %v", err)
	}
	if err := client.Retry(ctx, res.JobID); err != nil {
		t.Fatal(err)
	}
	retried, _ := client.GetStatus(ctx, res.JobID)
	if retried.State != jobqueue.StateQueued {
		t.Errorf("after retry: %s", retried.State)
	}
}

func TestAnInvalidQueueIsAnInvalidArgumentNamingTheField(t *testing.T) {
	client, ctx := newClient(t), testContext(t)

	_, err := client.Enqueue(ctx, "no spaces allowed", nil)

	var e *jobqueue.Error
	if !errors.As(err, &e) || !errors.Is(err, jobqueue.ErrInvalidArgument) {
		t.Fatalf("err = %v", err)
	}
	if e.Field != "queue" || e.Reason != jobqueuev1.ErrorReason_INVALID_ARGUMENT || e.Code != codes.InvalidArgument || status.Code(err) != codes.InvalidArgument {
		t.Errorf("error = %+v", e)
	}
}

func TestABatchErrorNamesTheRequest(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)

	_, err := client.EnqueueBatch(ctx, []jobqueue.BatchJob{
		{Queue: queue},
		{Queue: queue, Options: []jobqueue.EnqueueOption{jobqueue.WithDelay(time.Second), jobqueue.WithRunAt(time.Now())}},
	})

	var e *jobqueue.Error
	if !errors.As(err, &e) || e.Field != "requests[1].delay" {
		t.Fatalf("err = %v (%+v)", err, e)
	}
	stats, _ := client.Stats(ctx, queue)
	if len(stats) == 1 && stats[0].Queued != 0 {
		t.Errorf("a bad batch wrote jobs: %+v", stats)
	}
}

func TestABatchOverMaxBatchGoesInSeveralCallsAndNamesTheJobByItsIndexInTheWholeList(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)
	jobs := make([]jobqueue.BatchJob, jobqueue.MaxBatch+5)
	for i := range jobs {
		jobs[i] = jobqueue.BatchJob{Queue: queue, Payload: map[string]any{"i": i}}
	}

	results, err := client.EnqueueBatch(ctx, jobs)
	if err != nil || len(results) != len(jobs) {
		t.Fatalf("EnqueueBatch of %d jobs: %d results, err %v", len(jobs), len(results), err)
	}

	// The server refuses a metadata value over 4,096 characters: the error comes from the second
	// call, and names the job by its index in the whole list.
	jobs[jobqueue.MaxBatch+2].Options = []jobqueue.EnqueueOption{
		jobqueue.WithMetadata(map[string]string{"k": strings.Repeat("v", 5000)}),
	}
	results, err = client.EnqueueBatch(ctx, jobs)
	var e *jobqueue.Error
	if !errors.As(err, &e) || e.Field != fmt.Sprintf("requests[%d].metadata['k']", jobqueue.MaxBatch+2) {
		t.Fatalf("err = %v (%+v)", err, e)
	}
	if len(results) != jobqueue.MaxBatch {
		t.Errorf("the first call's %d results should be returned with the error, got %d", jobqueue.MaxBatch, len(results))
	}
}

func TestAnUnknownJobIsNotFound(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)

	_, err := client.GetStatus(ctx, queue+":01ARZ3NDEKTSV4RRFFQ69G5FAV")

	var e *jobqueue.Error
	if !errors.Is(err, jobqueue.ErrNotFound) || !errors.As(err, &e) || e.Reason != jobqueuev1.ErrorReason_JOB_NOT_FOUND {
		t.Errorf("err = %v", err)
	}
	if err := client.Cancel(ctx, queue+":01ARZ3NDEKTSV4RRFFQ69G5FAV"); !errors.Is(err, jobqueue.ErrNotFound) {
		t.Errorf("cancel: %v", err)
	}
}

func TestWaitGivesUpWithItsContext(t *testing.T) {
	client, queue := newClient(t), uniqueQueue(t)
	res, err := client.Enqueue(testContext(t), queue, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()

	_, err = client.Wait(ctx, res.JobID)

	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
}

func TestStatsOfEveryQueueReadsEveryPage(t *testing.T) {
	client, ctx, prefix := newClient(t), testContext(t), uniqueQueue(t)

	// More queues than one Stats page holds (1,000), in two batches of at most 1,000 jobs.
	var names []string
	for i := 0; i < 1001; i++ {
		names = append(names, fmt.Sprintf("%s-%04d", prefix, i))
	}
	for start := 0; start < len(names); start += 1000 {
		var jobs []jobqueue.BatchJob
		for _, name := range names[start:min(start+1000, len(names))] {
			jobs = append(jobs, jobqueue.BatchJob{Queue: name})
		}
		if _, err := client.EnqueueBatch(ctx, jobs); err != nil {
			t.Fatal(err)
		}
	}
	all, err := client.Stats(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, s := range all {
		seen[s.Queue] = true
	}
	for _, name := range names {
		if !seen[name] {
			t.Fatalf("Stats for every queue lacks %s (%d queues seen)", name, len(all))
		}
	}
}
