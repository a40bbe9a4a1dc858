package jobqueue_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// limitsOf reads the queue's limits from Stats.
func limitsOf(t *testing.T, client *jobqueue.Client, queue string) *jobqueue.QueueLimits {
	t.Helper()
	stats, err := client.Stats(testContext(t), queue)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 1 || stats[0].Queue != queue {
		t.Fatalf("Stats(%s) = %+v", queue, stats)
	}
	return stats[0].Limits
}

func TestQueueLimitsShowInStatsHoldBackJobsAndAreRemovedByZero(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)
	if got := limitsOf(t, client, queue); got != nil {
		t.Fatalf("limits of a new queue = %+v", got)
	}

	// The queue need not hold jobs yet; the limits come back as set.
	all := jobqueue.QueueLimits{RatePerSecond: 2.5, Burst: 3, MaxActive: 4}
	if err := client.SetQueueLimits(ctx, queue, all); err != nil {
		t.Fatal(err)
	}
	if got := limitsOf(t, client, queue); got == nil || *got != all {
		t.Errorf("limits = %+v, want %+v", got, all)
	}
	// New limits replace the old ones whole.
	one := jobqueue.QueueLimits{MaxActive: 1}
	if err := client.SetQueueLimits(ctx, queue, one); err != nil {
		t.Fatal(err)
	}
	if got := limitsOf(t, client, queue); got == nil || *got != one {
		t.Errorf("limits = %+v, want %+v", got, one)
	}

	// Two jobs wait before a worker that could take both: it gets one at a time.
	ids := []string{enqueue(t, client, queue, map[string]any{"i": 0}), enqueue(t, client, queue, map[string]any{"i": 1})}
	gate := make(chan struct{})
	var now, peak atomic.Int32
	startWorker(t, client, queue, func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		n := now.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		defer now.Add(-1)
		select {
		case <-gate:
		case <-ctx.Done():
		}
		return nil, nil
	}, jobqueue.WithConcurrency(2))
	var opened sync.Once
	open := func() { opened.Do(func() { close(gate) }) }
	t.Cleanup(open) // before the worker's stop, should the test end early

	// The lease script leases both jobs in one call, or one: Stats, read while the first
	// handler runs, tells which.
	eventually(t, "a handler runs", func() bool { return now.Load() >= 1 })
	stats, err := client.Stats(ctx, queue)
	if err != nil {
		t.Fatal(err)
	}
	open()
	for _, id := range ids {
		if job := waitFor(t, client, id); job.State != jobqueue.StateCompleted {
			t.Errorf("job %s is %s", id, job.State)
		}
	}

	if stats[0].Active != 1 || stats[0].Queued != 1 {
		t.Errorf("while the first job ran: %+v (max_active is 1)", stats[0])
	}
	if peak.Load() != 1 {
		t.Errorf("%d handlers ran at once", peak.Load())
	}

	// All zero removes them.
	if err := client.SetQueueLimits(ctx, queue, jobqueue.QueueLimits{}); err != nil {
		t.Fatal(err)
	}
	if got := limitsOf(t, client, queue); got != nil {
		t.Errorf("limits after removal = %+v", got)
	}
}

func TestBadQueueLimitsAreAnInvalidArgumentNamingTheField(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)
	cases := []struct {
		queue  string
		limits jobqueue.QueueLimits
		field  string
	}{
		{queue, jobqueue.QueueLimits{MaxActive: -1}, "limits.max_active"},
		{queue, jobqueue.QueueLimits{MaxActive: 1_000_001}, "limits.max_active"},
		{queue, jobqueue.QueueLimits{Burst: 5}, "limits.burst"},
		{queue, jobqueue.QueueLimits{RatePerSecond: 1, Burst: -1}, "limits.burst"},
		{queue, jobqueue.QueueLimits{RatePerSecond: -1}, "limits.rate_per_second"},
		{queue, jobqueue.QueueLimits{RatePerSecond: math.NaN()}, "limits.rate_per_second"},
		{queue, jobqueue.QueueLimits{GroupMaxActive: -1}, "limits.group_max_active"},
		{queue, jobqueue.QueueLimits{GroupMaxActive: 1_000_001}, "limits.group_max_active"},
		{queue, jobqueue.QueueLimits{GroupBurst: 5}, "limits.group_burst"},
		{queue, jobqueue.QueueLimits{RatePerSecond: 1, GroupBurst: 5}, "limits.group_burst"},
		{queue, jobqueue.QueueLimits{GroupRatePerSecond: 1, GroupBurst: -1}, "limits.group_burst"},
		{queue, jobqueue.QueueLimits{GroupRatePerSecond: -1}, "limits.group_rate_per_second"},
		{queue, jobqueue.QueueLimits{GroupRatePerSecond: math.Inf(1)}, "limits.group_rate_per_second"},
		{"bad queue", jobqueue.QueueLimits{MaxActive: 1}, "queue"},
		{"", jobqueue.QueueLimits{MaxActive: 1}, "queue"},
	}
	for _, c := range cases {
		err := client.SetQueueLimits(ctx, c.queue, c.limits)

		var e *jobqueue.Error
		if !errors.As(err, &e) || !errors.Is(err, jobqueue.ErrInvalidArgument) {
			t.Fatalf("SetQueueLimits(%q, %+v): %v", c.queue, c.limits, err)
		}
		if e.Field != c.field || e.Reason != jobqueuev1.ErrorReason_INVALID_ARGUMENT ||
			e.Code != codes.InvalidArgument || status.Code(err) != codes.InvalidArgument {
			t.Errorf("SetQueueLimits(%q, %+v): error %+v, want the field %s", c.queue, c.limits, e, c.field)
		}
	}
	if got := limitsOf(t, client, queue); got != nil {
		t.Errorf("a refused call set the limits %+v", got)
	}
}

func TestSetQueueLimitsSendsTheLimitsAndRefusesCountsBeyondInt32BeforeSending(t *testing.T) {
	conn := &recordingConn{reply: &jobqueuev1.SetQueueLimitsResponse{}}
	client := jobqueue.New(conn, jobqueue.WithoutBatching())

	all := jobqueue.QueueLimits{RatePerSecond: 0.5, Burst: 2, MaxActive: 3, GroupRatePerSecond: 0.25, GroupBurst: 4, GroupMaxActive: 1}
	if err := client.SetQueueLimits(context.Background(), "q", all); err != nil {
		t.Fatal(err)
	}
	if err := client.SetQueueLimits(context.Background(), "q", jobqueue.QueueLimits{}); err != nil {
		t.Fatal(err)
	}
	want := []proto.Message{
		&jobqueuev1.SetQueueLimitsRequest{Queue: "q", Limits: &jobqueuev1.QueueLimits{
			RatePerSecond: 0.5, Burst: 2, MaxActive: 3, GroupRatePerSecond: 0.25, GroupBurst: 4, GroupMaxActive: 1,
		}},
		&jobqueuev1.SetQueueLimitsRequest{Queue: "q", Limits: &jobqueuev1.QueueLimits{}},
	}
	if len(conn.requests) != len(want) || !proto.Equal(conn.requests[0], want[0]) || !proto.Equal(conn.requests[1], want[1]) {
		t.Errorf("requests = %v\nwant %v", conn.requests, want)
	}

	for field, limits := range map[string]jobqueue.QueueLimits{
		"limits.burst":            {RatePerSecond: 1, Burst: math.MaxInt32 + 1},
		"limits.max_active":       {MaxActive: math.MinInt32 - 1},
		"limits.group_burst":      {GroupRatePerSecond: 1, GroupBurst: math.MaxInt32 + 1},
		"limits.group_max_active": {GroupMaxActive: math.MaxInt32 + 1},
	} {
		err := client.SetQueueLimits(context.Background(), "q", limits)
		var e *jobqueue.Error
		if !errors.As(err, &e) || !errors.Is(err, jobqueue.ErrInvalidArgument) || e.Field != field {
			t.Errorf("%+v: %v, want ErrInvalidArgument on %s", limits, err, field)
		}
	}
	if len(conn.requests) != len(want) {
		t.Errorf("%d requests sent for counts beyond int32", len(conn.requests)-len(want))
	}
}
