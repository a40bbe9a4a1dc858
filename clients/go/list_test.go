package jobqueue_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
)

// countingClient is a client of the test server that counts its ListJobs calls.
func countingClient(t *testing.T) (*jobqueue.Client, *atomic.Int32) {
	t.Helper()
	newClient(t) // skips without a server
	calls := &atomic.Int32{}
	count := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if method == "/jobqueue.v1.JobQueueService/ListJobs" {
			calls.Add(1)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	client, err := jobqueue.Dial(serverAddr, jobqueue.WithDialOptions(grpc.WithUnaryInterceptor(count)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client, calls
}

func TestListJobsPagesThroughEveryJobInLeaseOrder(t *testing.T) {
	client, calls := countingClient(t)
	ctx, queue := testContext(t), uniqueQueue(t)
	batch := make([]jobqueue.BatchJob, 7)
	for i := range batch {
		batch[i] = jobqueue.BatchJob{Queue: queue, Payload: map[string]any{"i": i}}
	}
	results, err := client.EnqueueBatch(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Enqueue(ctx, queue, nil, jobqueue.WithDelay(time.Hour)); err != nil {
		t.Fatal(err)
	}

	var listed []string
	for job, err := range client.ListJobs(ctx, queue, jobqueue.StateQueued, jobqueue.WithPageSize(3)) {
		if err != nil {
			t.Fatal(err)
		}
		if job.State != jobqueue.StateQueued || job.Queue != queue {
			t.Errorf("listed %+v", job)
		}
		listed = append(listed, job.ID)
	}

	var want []string
	for _, r := range results {
		want = append(want, r.JobID)
	}
	if !slices.Equal(listed, want) {
		t.Errorf("listed %v, want %v", listed, want)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d ListJobs calls for 7 jobs by 3, want 3", n)
	}
}

func TestBreakingOutOfListJobsFetchesNoMorePages(t *testing.T) {
	client, calls := countingClient(t)
	ctx, queue := testContext(t), uniqueQueue(t)
	batch := make([]jobqueue.BatchJob, 5)
	for i := range batch {
		batch[i] = jobqueue.BatchJob{Queue: queue}
	}
	if _, err := client.EnqueueBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}

	seen := 0
	for _, err := range client.ListJobs(ctx, queue, jobqueue.StateQueued, jobqueue.WithPageSize(2)) {
		if err != nil {
			t.Fatal(err)
		}
		seen++
		if seen == 2 {
			break
		}
	}

	if seen != 2 || calls.Load() != 1 {
		t.Errorf("saw %d jobs in %d calls", seen, calls.Load())
	}
}

func TestListJobsOfAnEmptyStateYieldsNothing(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)

	for job, err := range client.ListJobs(ctx, queue, jobqueue.StateDead) {
		t.Errorf("yielded %v, %v", job, err)
	}
}

func TestListJobsYieldsItsErrorOnceAndStops(t *testing.T) {
	client, ctx := newClient(t), testContext(t)
	cases := []struct {
		queue string
		state jobqueue.JobState
		field string
	}{
		{"no spaces allowed", jobqueue.StateQueued, "queue"}, // refused by the server
		{"q", jobqueue.JobState("FINISHED"), "state"},        // refused before sending
	}
	for _, c := range cases {
		var errs []error
		for job, err := range client.ListJobs(ctx, c.queue, c.state) {
			if job != nil {
				t.Errorf("yielded a job: %+v", job)
			}
			errs = append(errs, err)
		}
		var e *jobqueue.Error
		if len(errs) != 1 || !errors.Is(errs[0], jobqueue.ErrInvalidArgument) || !errors.As(errs[0], &e) || e.Field != c.field {
			t.Errorf("%s/%s: errors %v", c.queue, c.state, errs)
		}
	}
}
