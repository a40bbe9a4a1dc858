package jobqueue_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
)

// settleTime is how long a test waits for deliveries it expects not to come.
const settleTime = 300 * time.Millisecond

// enqueueGroup enqueues n jobs of group (none for "") in one EnqueueBatch call and returns
// their ids.
func enqueueGroup(t *testing.T, client *jobqueue.Client, queue, group string, n int) []string {
	t.Helper()
	jobs := make([]jobqueue.BatchJob, n)
	for i := range jobs {
		jobs[i] = jobqueue.BatchJob{Queue: queue, Payload: map[string]any{"group": group, "i": i}}
		if group != "" {
			jobs[i].Options = []jobqueue.EnqueueOption{jobqueue.WithGroupKey(group)}
		}
	}
	results, err := client.EnqueueBatch(testContext(t), jobs)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(results))
	for i, r := range results {
		ids[i] = r.JobID
	}
	return ids
}

func TestGroupMaxActiveOneRunsOneJobPerGroupAtATime(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)
	limits := jobqueue.QueueLimits{GroupMaxActive: 1}
	if err := client.SetQueueLimits(ctx, queue, limits); err != nil {
		t.Fatal(err)
	}
	if got := limitsOf(t, client, queue); got == nil || *got != limits {
		t.Fatalf("limits = %+v, want %+v", got, limits)
	}
	ids := append(enqueueGroup(t, client, queue, "a", 3), enqueueGroup(t, client, queue, "b", 3)...)
	job, err := client.GetStatus(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if job.GroupKey != "a" || job.State != jobqueue.StateQueued {
		t.Errorf("job = %+v", job)
	}

	// A worker that could take 10 jobs gets one per group; none is acked until the gate opens.
	gate := make(chan struct{})
	var mu sync.Mutex
	var delivered []*jobqueue.LeasedJob
	running, peak := map[string]int{}, map[string]int{}
	startWorker(t, client, queue, func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		group := job.Job.GroupKey
		mu.Lock()
		delivered = append(delivered, job)
		running[group]++
		peak[group] = max(peak[group], running[group])
		mu.Unlock()
		defer func() {
			mu.Lock()
			running[group]--
			mu.Unlock()
		}()
		select {
		case <-gate:
		case <-ctx.Done():
		}
		return nil, nil
	}, jobqueue.WithConcurrency(10))
	var opened sync.Once
	open := func() { opened.Do(func() { close(gate) }) }
	t.Cleanup(open) // before the worker's stop, should the test end early

	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(delivered)
	}
	eventually(t, "two jobs are delivered", func() bool { return count() >= 2 })
	time.Sleep(settleTime) // room for a wrong third delivery to arrive
	stats, err := client.Stats(ctx, queue)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	first := slices.Clone(delivered)
	mu.Unlock()
	open()
	for _, id := range ids {
		if job := waitFor(t, client, id); job.State != jobqueue.StateCompleted || job.GroupKey == "" {
			t.Errorf("job %s: %s, group %q", id, job.State, job.GroupKey)
		}
	}

	groups := []string{}
	for _, j := range first {
		groups = append(groups, j.Job.GroupKey)
	}
	slices.Sort(groups)
	if !slices.Equal(groups, []string{"a", "b"}) {
		t.Errorf("before any ack, delivered the groups %v, want [a b] (one job per group)", groups)
	}
	if len(stats) != 1 || stats[0].Active != 2 || stats[0].Queued != 4 {
		t.Errorf("before any ack: %+v, want 2 active and 4 queued", stats)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(delivered) != len(ids) || peak["a"] != 1 || peak["b"] != 1 {
		t.Errorf("%d deliveries, at most %v running at once per group", len(delivered), peak)
	}
}

func TestGroupsAreServedRoundRobin(t *testing.T) {
	client, queue := newClient(t), uniqueQueue(t)
	enqueueGroup(t, client, queue, "big", 200)
	small := make([]string, 10)
	for i := range small {
		small[i] = fmt.Sprintf("small-%d", i)
		enqueueGroup(t, client, queue, small[i], 5)
	}
	// Jobs without a group take their turn together, as one more group.
	enqueueGroup(t, client, queue, "", 5)

	var mu sync.Mutex
	var order []string
	done := make(chan struct{})
	startWorker(t, client, queue, func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		mu.Lock()
		defer mu.Unlock()
		if order = append(order, job.Job.GroupKey); len(order) == 255 {
			close(done)
		}
		return nil, nil
	}, jobqueue.WithConcurrency(4))
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("the 255 jobs were not all delivered")
	}

	mu.Lock()
	defer mu.Unlock()
	seen := map[string]int{}
	bigs := 0
	for _, group := range order {
		if group == "big" {
			if bigs++; bigs == 100 {
				break
			}
			continue
		}
		seen[group]++
	}
	for _, group := range append(small, "") {
		if seen[group] != 5 {
			t.Errorf("group %q: %d of its 5 jobs delivered before the 100th job of big", group, seen[group])
		}
	}
	if t.Failed() {
		t.Logf("delivery order: %v", order)
	}
}

func TestAGroupKeyOver256CharactersIsAnInvalidArgument(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)

	if _, err := client.Enqueue(ctx, queue, nil, jobqueue.WithGroupKey(strings.Repeat("g", 256))); err != nil {
		t.Fatalf("a key of 256 characters: %v", err)
	}
	_, err := client.Enqueue(ctx, queue, nil, jobqueue.WithGroupKey(strings.Repeat("g", 257)))

	var e *jobqueue.Error
	if !errors.Is(err, jobqueue.ErrInvalidArgument) || !errors.As(err, &e) || e.Field != "group_key" {
		t.Errorf("err = %v, want INVALID_ARGUMENT naming group_key", err)
	}
}

func TestGroupLimitsShowInStatsAndAreRemovedByZero(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)

	all := jobqueue.QueueLimits{RatePerSecond: 100, Burst: 10, MaxActive: 8, GroupRatePerSecond: 2.5, GroupBurst: 3, GroupMaxActive: 1}
	if err := client.SetQueueLimits(ctx, queue, all); err != nil {
		t.Fatal(err)
	}
	if got := limitsOf(t, client, queue); got == nil || *got != all {
		t.Errorf("limits = %+v, want %+v", got, all)
	}
	rate := jobqueue.QueueLimits{GroupRatePerSecond: 0.5}
	if err := client.SetQueueLimits(ctx, queue, rate); err != nil {
		t.Fatal(err)
	}
	if got := limitsOf(t, client, queue); got == nil || *got != rate {
		t.Errorf("limits = %+v, want %+v", got, rate)
	}
	if err := client.SetQueueLimits(ctx, queue, jobqueue.QueueLimits{}); err != nil {
		t.Fatal(err)
	}
	if got := limitsOf(t, client, queue); got != nil {
		t.Errorf("limits after removal = %+v", got)
	}
}
