package jobqueue_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
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

func TestListJobsSendsItsFiltersOnEveryPageAndFollowsEmptyPages(t *testing.T) {
	client, fake := startFakeServer(t)
	after := time.Date(2025, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	before := after.Add(90 * time.Minute)
	fake.pages = []*jobqueuev1.ListJobsResponse{
		{Jobs: []*jobqueuev1.Job{{Id: "q:1", State: jobqueuev1.JobState_JOB_STATE_QUEUED}}, NextPageToken: "t1"},
		{NextPageToken: "t2"}, // examined its share of jobs, none matched
		{NextPageToken: "t3"},
		{Jobs: []*jobqueuev1.Job{{Id: "q:7", State: jobqueuev1.JobState_JOB_STATE_QUEUED}}},
	}

	var ids []string
	for job, err := range client.ListJobs(testContext(t), "q", jobqueue.StateQueued, jobqueue.WithPageSize(1),
		jobqueue.WithCreatedAfter(after), jobqueue.WithCreatedBefore(before),
		jobqueue.WithMetadataFilter("customer", "acme"), jobqueue.WithMetadataFilter("region", "us"),
		jobqueue.WithMetadataFilter("region", "eu")) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, job.ID)
	}

	if !slices.Equal(ids, []string{"q:1", "q:7"}) {
		t.Errorf("listed %v, want [q:1 q:7]", ids)
	}
	requests := fake.listed()
	var tokens []string
	for _, req := range requests {
		tokens = append(tokens, req.GetPageToken())
		if req.GetQueue() != "q" || req.GetState() != jobqueuev1.JobState_JOB_STATE_QUEUED || req.GetPageSize() != 1 ||
			!req.GetCreatedAfter().AsTime().Equal(after) || !req.GetCreatedBefore().AsTime().Equal(before) ||
			!maps.Equal(req.GetMetadata(), map[string]string{"customer": "acme", "region": "eu"}) {
			t.Errorf("request %v", req)
		}
	}
	if !slices.Equal(tokens, []string{"", "t1", "t2", "t3"}) {
		t.Errorf("page tokens sent %q, want the 4 pages' in order", tokens)
	}
}

func TestListJobsWithoutFiltersSendsNone(t *testing.T) {
	client, fake := startFakeServer(t)

	for job, err := range client.ListJobs(testContext(t), "q", jobqueue.StateDead,
		jobqueue.WithCreatedAfter(time.Time{}), jobqueue.WithCreatedBefore(time.Time{})) {
		t.Errorf("yielded %v, %v", job, err)
	}

	requests := fake.listed()
	if len(requests) != 1 || requests[0].CreatedAfter != nil || requests[0].CreatedBefore != nil || requests[0].Metadata != nil {
		t.Errorf("requests %v", requests)
	}
}

func TestListJobsStopsOnAnEmptyPageThatRepeatsItsToken(t *testing.T) {
	client, fake := startFakeServer(t)
	fake.pages = []*jobqueuev1.ListJobsResponse{{NextPageToken: "x"}, {NextPageToken: "x"}, {NextPageToken: "x"}}

	for job, err := range client.ListJobs(testContext(t), "q", jobqueue.StateQueued, jobqueue.WithMetadataFilter("k", "v")) {
		t.Errorf("yielded %v, %v", job, err)
	}

	if n := fake.count("ListJobs"); n != 2 {
		t.Errorf("%d ListJobs calls, want 2 (the second made no progress)", n)
	}
}

func TestListJobsFiltersByMetadataAndEnqueueTimeAcrossPages(t *testing.T) {
	client, calls := countingClient(t)
	ctx, queue := testContext(t), uniqueQueue(t)
	metadata := []map[string]string{
		{"customer": "acme", "region": "eu"},
		{"customer": "globex"},
		{"customer": "acme"},
		{"customer": "acme", "region": "eu"},
		nil,
		{"customer": "acme", "region": "us"},
	}
	ids := make([]string, len(metadata))
	created := make([]time.Time, len(metadata))
	for i, md := range metadata {
		if i > 0 {
			time.Sleep(5 * time.Millisecond) // distinct create times (the server keeps milliseconds)
		}
		ids[i] = enqueue(t, client, queue, map[string]any{"i": i}, jobqueue.WithMetadata(md))
		job, err := client.GetStatus(ctx, ids[i])
		if err != nil {
			t.Fatal(err)
		}
		created[i] = job.CreateTime
		if i > 0 && !created[i].After(created[i-1]) {
			t.Fatalf("job %d was created at %v, not after job %d at %v", i, created[i], i-1, created[i-1])
		}
	}

	cases := []struct {
		name string
		opts []jobqueue.ListOption
		want []int // indexes of ids, in lease order
	}{
		{"customer", []jobqueue.ListOption{jobqueue.WithMetadataFilter("customer", "acme")}, []int{0, 2, 3, 5}},
		{"customer and region", []jobqueue.ListOption{
			jobqueue.WithMetadataFilter("customer", "acme"), jobqueue.WithMetadataFilter("region", "eu"),
		}, []int{0, 3}},
		// created_after is inclusive, created_before exclusive.
		{"time", []jobqueue.ListOption{jobqueue.WithCreatedAfter(created[1]), jobqueue.WithCreatedBefore(created[4])}, []int{1, 2, 3}},
		{"after only", []jobqueue.ListOption{jobqueue.WithCreatedAfter(created[4])}, []int{4, 5}},
		{"time and customer", []jobqueue.ListOption{
			jobqueue.WithCreatedAfter(created[1]), jobqueue.WithCreatedBefore(created[4]),
			jobqueue.WithMetadataFilter("customer", "acme"),
		}, []int{2, 3}},
		{"no match", []jobqueue.ListOption{jobqueue.WithMetadataFilter("customer", "initech")}, nil},
	}
	for _, c := range cases {
		calls.Store(0)
		var listed []string
		opts := append([]jobqueue.ListOption{jobqueue.WithPageSize(1)}, c.opts...)
		for job, err := range client.ListJobs(ctx, queue, jobqueue.StateQueued, opts...) {
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			listed = append(listed, job.ID)
		}
		var want []string
		for _, i := range c.want {
			want = append(want, ids[i])
		}
		if !slices.Equal(listed, want) {
			t.Errorf("%s: listed %v, want %v", c.name, listed, want)
		}
		if n := int(calls.Load()); n < max(len(want), 1) {
			t.Errorf("%s: %d ListJobs calls for %d jobs by 1", c.name, n, len(want))
		}
	}
}

func TestListJobsRefusesAnEmptyTimeWindow(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)
	at := time.Now()

	var errs []error
	for _, err := range client.ListJobs(ctx, queue, jobqueue.StateQueued, jobqueue.WithCreatedAfter(at), jobqueue.WithCreatedBefore(at)) {
		errs = append(errs, err)
	}

	var e *jobqueue.Error
	if len(errs) != 1 || !errors.Is(errs[0], jobqueue.ErrInvalidArgument) || !errors.As(errs[0], &e) || e.Field != "created_before" {
		t.Errorf("errors %v", errs)
	}
}
