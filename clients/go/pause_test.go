package jobqueue_test

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

func TestAPausedQueueTakesJobsButDeliversNoneUntilResumed(t *testing.T) {
	client, ctx := newClient(t), testContext(t)
	paused, running := uniqueQueue(t)+"-paused", uniqueQueue(t)+"-running"
	seen := make(chan *jobqueue.LeasedJob, 10)
	// Subscribed before the pause, preferring the queue it pauses, one job at a time.
	startWorkerOn(t, client, []string{paused, running}, func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		seen <- job
		return map[string]any{"queue": job.Queue}, nil
	}, jobqueue.WithConcurrency(1))

	if changed, err := client.PauseQueue(ctx, paused); err != nil || !changed {
		t.Fatalf("PauseQueue: changed %v, err %v", changed, err)
	}
	if changed, err := client.PauseQueue(ctx, paused); err != nil || changed {
		t.Fatalf("PauseQueue of a paused queue: changed %v, err %v", changed, err)
	}
	held := enqueue(t, client, paused, nil) // enqueues still work
	stats, err := client.Stats(ctx, paused)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 1 || stats[0].Queue != paused || !stats[0].Paused || stats[0].Queued != 1 {
		t.Errorf("stats while paused = %+v", stats)
	}

	// A job enqueued after the held one, on a queue the worker likes less, is delivered and
	// done: had the pause not held, the worker would have leased the held job first.
	other := waitFor(t, client, enqueue(t, client, running, nil))
	job, err := client.GetStatus(ctx, held)
	if err != nil {
		t.Fatal(err)
	}

	if other.State != jobqueue.StateCompleted || other.Result["queue"] != running {
		t.Errorf("the running queue's job = %+v", other)
	}
	if job.State != jobqueue.StateQueued || job.Attempts != 0 || job.WorkerID != "" {
		t.Errorf("the paused queue's job = %+v", job)
	}
	if got := <-seen; got.Queue != running || len(seen) != 0 {
		t.Errorf("while paused the worker got %s from %s, then %d more", got.ID, got.Queue, len(seen))
	}

	if changed, err := client.ResumeQueue(ctx, paused); err != nil || !changed {
		t.Fatalf("ResumeQueue: changed %v, err %v", changed, err)
	}
	if changed, err := client.ResumeQueue(ctx, paused); err != nil || changed {
		t.Fatalf("ResumeQueue of a running queue: changed %v, err %v", changed, err)
	}
	done := waitFor(t, client, held)

	if done.State != jobqueue.StateCompleted || done.Attempts != 1 || done.Result["queue"] != paused {
		t.Errorf("the resumed queue's job = %+v", done)
	}
	stats, err = client.Stats(ctx, paused)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 1 || stats[0].Paused || stats[0].Completed != 1 {
		t.Errorf("stats after resume = %+v", stats)
	}
}

func TestPauseAndResumeOfAnInvalidQueueAreAnInvalidArgumentNamingTheField(t *testing.T) {
	client, ctx := newClient(t), testContext(t)
	calls := []struct {
		name string
		call func(context.Context, string) (bool, error)
	}{
		{"PauseQueue", client.PauseQueue},
		{"ResumeQueue", client.ResumeQueue},
	}
	for _, c := range calls {
		for _, queue := range []string{"bad queue", ""} {
			changed, err := c.call(ctx, queue)

			var e *jobqueue.Error
			if !errors.As(err, &e) || !errors.Is(err, jobqueue.ErrInvalidArgument) {
				t.Fatalf("%s(%q): changed %v, err %v", c.name, queue, changed, err)
			}
			if changed || e.Field != "queue" || e.Reason != jobqueuev1.ErrorReason_INVALID_ARGUMENT ||
				e.Code != codes.InvalidArgument || status.Code(err) != codes.InvalidArgument {
				t.Errorf("%s(%q): changed %v, error %+v", c.name, queue, changed, e)
			}
		}
	}
}
