package jobqueue_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
)

// parentsSeen is what a child's handler found: its job as leased, and each parent's result
// by GetStatus.
type parentsSeen struct {
	job     *jobqueue.LeasedJob
	results map[string]map[string]any
	err     error
}

// runParentsAndChild starts a worker on queue that completes each parent with {"parent": id}
// and, for child, reads its parents' results with GetStatus (sent on the channel).
func runParentsAndChild(t *testing.T, client *jobqueue.Client, queue, child string) <-chan parentsSeen {
	t.Helper()
	seen := make(chan parentsSeen, 1)
	startWorker(t, client, queue, func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		if job.ID != child {
			return map[string]any{"parent": job.ID}, nil
		}
		s := parentsSeen{job: job, results: map[string]map[string]any{}}
		for _, id := range job.Job.DependsOn {
			parent, err := client.GetStatus(ctx, id)
			if err != nil {
				s.err = err
				break
			}
			s.results[id] = parent.Result
		}
		seen <- s
		return map[string]any{"child": true}, nil
	})
	return seen
}

func TestAChildWaitsForItsParentAndReadsItsResult(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)

	a := enqueue(t, client, queue, map[string]any{"n": 1})
	b := enqueue(t, client, queue, map[string]any{"n": 2}, jobqueue.WithDependsOn(a))
	child, err := client.GetStatus(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if child.State != jobqueue.StateWaiting {
		t.Fatalf("the child is %s, want WAITING (does the server support dependencies?): %+v", child.State, child)
	}
	if !slices.Equal(child.DependsOn, []string{a}) || child.OnDependencyFailure != "" {
		t.Errorf("child: depends on %v, policy %q", child.DependsOn, child.OnDependencyFailure)
	}
	stats, err := client.Stats(ctx, queue)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 1 || stats[0].Waiting != 1 || stats[0].Queued != 1 {
		t.Errorf("stats = %+v", stats)
	}
	var waiting []string
	for job, err := range client.ListJobs(ctx, queue, jobqueue.StateWaiting) {
		if err != nil {
			t.Fatal(err)
		}
		waiting = append(waiting, job.ID)
	}
	if !slices.Equal(waiting, []string{b}) {
		t.Errorf("ListJobs of WAITING = %v, want [%s]", waiting, b)
	}

	seen := runParentsAndChild(t, client, queue, b)
	parent := waitFor(t, client, a)
	done := waitFor(t, client, b)

	if parent.State != jobqueue.StateCompleted || parent.Result["parent"] != a {
		t.Errorf("parent = %+v", parent)
	}
	if done.State != jobqueue.StateCompleted || done.Result["child"] != true || done.StartTime.Before(parent.FinishTime) {
		t.Errorf("child = %+v (parent finished %s)", done, parent.FinishTime)
	}
	s := <-seen
	if s.err != nil {
		t.Fatal(s.err)
	}
	if !slices.Equal(s.job.Job.DependsOn, []string{a}) || s.results[a]["parent"] != a {
		t.Errorf("the child's handler saw depends_on %v and results %v", s.job.Job.DependsOn, s.results)
	}
}

func TestABatchWithRefsEnqueuesAGraph(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)

	results, err := client.EnqueueBatch(ctx, []jobqueue.BatchJob{
		{Queue: queue, Payload: map[string]any{"n": "a"}, Options: []jobqueue.EnqueueOption{jobqueue.WithRef("a")}},
		{Queue: queue, Payload: map[string]any{"n": "b"}, Options: []jobqueue.EnqueueOption{jobqueue.WithRef("b")}},
		{Queue: queue, Payload: map[string]any{"n": "c"}, Options: []jobqueue.EnqueueOption{
			jobqueue.WithDependsOnRefs("a", "b"), jobqueue.WithOnDependencyFailure(jobqueue.DependencyFailureDeadLetter),
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := results[0].JobID, results[1].JobID, results[2].JobID
	child, err := client.GetStatus(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if child.State != jobqueue.StateWaiting {
		t.Fatalf("the child is %s, want WAITING (does the server resolve refs?): %+v", child.State, child)
	}
	parents := slices.Sorted(slices.Values(child.DependsOn))
	if want := slices.Sorted(slices.Values([]string{a, b})); !slices.Equal(parents, want) ||
		child.OnDependencyFailure != jobqueue.DependencyFailureDeadLetter {
		t.Errorf("child: depends on %v (want %v), policy %q", child.DependsOn, want, child.OnDependencyFailure)
	}

	seen := runParentsAndChild(t, client, queue, c)
	done := waitFor(t, client, c)

	if done.State != jobqueue.StateCompleted {
		t.Errorf("child = %+v", done)
	}
	s := <-seen
	if s.err != nil {
		t.Fatal(s.err)
	}
	if len(s.results) != 2 || s.results[a]["parent"] != a || s.results[b]["parent"] != b {
		t.Errorf("the child's handler saw results %v", s.results)
	}
}

func TestABatchWhoseRefsFormACycleIsRefusedWhole(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)

	results, err := client.EnqueueBatch(ctx, []jobqueue.BatchJob{
		{Queue: queue},
		{Queue: queue, Options: []jobqueue.EnqueueOption{jobqueue.WithRef("x"), jobqueue.WithDependsOnRefs("y")}},
		{Queue: queue, Options: []jobqueue.EnqueueOption{jobqueue.WithRef("y"), jobqueue.WithDependsOnRefs("x")}},
	})

	var e *jobqueue.Error
	if !errors.Is(err, jobqueue.ErrInvalidArgument) || !errors.As(err, &e) || len(results) != 0 ||
		(e.Field != "requests[1].depends_on_refs" && e.Field != "requests[2].depends_on_refs") {
		t.Fatalf("EnqueueBatch = %v, %v; want INVALID_ARGUMENT naming requests[1 or 2].depends_on_refs", results, err)
	}
	stats, err := client.Stats(ctx, queue)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stats {
		if s.Queued+s.Waiting+s.Scheduled != 0 {
			t.Errorf("the refused batch wrote jobs: %+v", s)
		}
	}
}

func TestAnUnknownParentIsNotFound(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)

	_, err := client.Enqueue(ctx, queue, nil, jobqueue.WithDependsOn(queue+":01ARZ3NDEKTSV4RRFFQ69G5FAV"))

	var e *jobqueue.Error
	if !errors.Is(err, jobqueue.ErrNotFound) || !errors.As(err, &e) || e.Field != "depends_on[0]" {
		t.Errorf("err = %v, want NOT_FOUND naming depends_on[0]", err)
	}
}

func TestAFailedParentEndsItsChildrenAsTheirPoliciesSay(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)

	parent := enqueue(t, client, queue, nil)
	cancelled := enqueue(t, client, queue, nil, jobqueue.WithDependsOn(parent))
	dead := enqueue(t, client, queue, nil, jobqueue.WithDependsOn(parent),
		jobqueue.WithOnDependencyFailure(jobqueue.DependencyFailureDeadLetter))
	anyway := enqueue(t, client, queue, nil, jobqueue.WithDependsOn(parent),
		jobqueue.WithOnDependencyFailure(jobqueue.DependencyFailureRunAnyway))
	for _, id := range []string{cancelled, dead, anyway} {
		if job, err := client.GetStatus(ctx, id); err != nil || job.State != jobqueue.StateWaiting {
			t.Fatalf("a child is %+v (%v), want WAITING (does the server support dependencies?)", job, err)
		}
	}
	if err := client.Cancel(ctx, parent); err != nil {
		t.Fatal(err)
	}

	reason := "dependency " + parent + " ended CANCELLED"
	if job := waitFor(t, client, cancelled); job.State != jobqueue.StateCancelled || !strings.Contains(job.LastError, reason) {
		t.Errorf("with the default policy: %s, %q; want CANCELLED, %q", job.State, job.LastError, reason)
	}
	if job := waitFor(t, client, dead); job.State != jobqueue.StateDead || !strings.Contains(job.LastError, reason) {
		t.Errorf("with DependencyFailureDeadLetter: %s, %q; want DEAD, %q", job.State, job.LastError, reason)
	}
	var last *jobqueue.Job
	eventually(t, "the run-anyway child is queued", func() bool {
		job, err := client.GetStatus(ctx, anyway)
		last = job
		return err == nil && job.State == jobqueue.StateQueued
	})
	if last.OnDependencyFailure != jobqueue.DependencyFailureRunAnyway {
		t.Errorf("run-anyway child = %+v", last)
	}
}

func TestABatchedEnqueueWithAnUnknownParentFailsOnlyThatCaller(t *testing.T) {
	log := newCallLog(t)
	client, ctx := batchingClient(t, "", jobqueue.Batching{Linger: time.Hour, MaxJobs: 5}, log), testContext(t)
	good, bad := uniqueQueue(t), uniqueQueue(t)+"-bad"
	parent := enqueue(t, client, good, nil)
	held := holdABatch(t, client, log)

	var goods []<-chan outcome
	for range 4 {
		goods = append(goods, enqueueAsync(ctx, client, good, jobqueue.WithDependsOn(parent)))
	}
	badOne := enqueueAsync(ctx, client, bad, jobqueue.WithDependsOn(bad+":01ARZ3NDEKTSV4RRFFQ69G5FAV"))
	// The fifth job filled the batch, which went out at once; its answer comes after the held one's.
	eventually(t, "the full batch is sent", func() bool { return len(log.sent(good)) == 1 })
	log.releaseHeld()

	refused := receive(t, badOne).err
	var e *jobqueue.Error
	if !errors.Is(refused, jobqueue.ErrNotFound) || !errors.As(refused, &e) || e.Field != "depends_on[0]" || !strings.HasPrefix(e.Message, "depends_on[0]: ") {
		t.Fatalf("err = %v (%+v), want NOT_FOUND on depends_on[0]", refused, e)
	}
	for _, ch := range goods {
		o := receive(t, ch)
		if o.err != nil {
			t.Fatal(o.err)
		}
		if job, err := client.GetStatus(ctx, o.res.JobID); err != nil || job.State != jobqueue.StateWaiting || !slices.Equal(job.DependsOn, []string{parent}) {
			t.Errorf("job %s: %+v (%v)", o.res.JobID, job, err)
		}
	}
	if o := receive(t, held); o.err != nil {
		t.Error(o.err)
	}
	// The refused message wrote nothing: the four jobs sent again were written once.
	stats, err := client.Stats(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 1 || stats[0].Waiting != 4 || stats[0].Queued != 1 {
		t.Errorf("stats = %+v, want the parent queued and 4 waiting", stats)
	}
}
