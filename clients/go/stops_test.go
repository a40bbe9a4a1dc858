package jobqueue_test

import (
	"context"
	"strings"
	"testing"
	"time"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
)

// Stops against the real server: Cancel of a running job, an execution timeout, a start
// deadline.

func TestCancellingARunningJobStopsItsHandlerAndTheWorkerGoesOn(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)
	started := make(chan string, 1)
	cause := make(chan error, 1)
	startWorker(t, client, queue, func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		if job.Payload["block"] != true {
			return map[string]any{"next": true}, nil
		}
		started <- job.ID
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return map[string]any{"too": "late"}, nil // dropped
	}, jobqueue.WithConcurrency(1))
	id := enqueue(t, client, queue, map[string]any{"block": true})
	awaitValue(t, started, "the handler to start")

	if err := client.Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}

	if err := awaitValue(t, cause, "the handler's cancellation"); err != jobqueue.ErrJobCancelled {
		t.Errorf("cause = %v", err)
	}
	// With a window of one, the next job runs only once the stopped one's slot is free.
	next := waitFor(t, client, enqueue(t, client, queue, nil))
	if next.State != jobqueue.StateCompleted || next.Result["next"] != true {
		t.Errorf("next job = %+v", next)
	}
	done, err := client.GetStatus(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if done.State != jobqueue.StateCancelled || done.Result != nil || done.Attempts != 1 || done.FinishTime.IsZero() {
		t.Errorf("cancelled job = %+v", done)
	}
}

func TestAnAttemptPastItsExecutionTimeoutIsStoppedAndFailsAsTimedOut(t *testing.T) {
	client, queue := newClient(t), uniqueQueue(t)
	cause := make(chan error, 1)
	startWorker(t, client, queue, func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return map[string]any{"too": "late"}, nil // dropped
	})

	id := enqueue(t, client, queue, nil, jobqueue.WithExecutionTimeout(time.Second), jobqueue.WithMaxAttempts(1))

	if err := awaitValue(t, cause, "the handler's cancellation"); err != jobqueue.ErrJobTimedOut {
		t.Errorf("cause = %v", err)
	}
	done := waitFor(t, client, id)
	if done.State != jobqueue.StateDead || !strings.Contains(done.LastError, "timed out") || len(done.Errors) != 1 ||
		done.Result != nil || done.ExecutionTimeout != time.Second {
		t.Errorf("job = %+v", done)
	}
}

func TestAJobNotLeasedBeforeItsStartDeadlineIsCancelled(t *testing.T) {
	for name, offset := range map[string]time.Duration{
		"in the past":                   -time.Minute,
		"a second ahead with no worker": time.Second,
	} {
		t.Run(name, func(t *testing.T) {
			client, queue := newClient(t), uniqueQueue(t)
			deadline := time.Now().Add(offset)

			done := waitFor(t, client, enqueue(t, client, queue, nil, jobqueue.WithStartDeadline(deadline)))

			if done.State != jobqueue.StateCancelled || done.Attempts != 0 || !strings.Contains(done.LastError, "start deadline") {
				t.Errorf("job = %+v", done)
			}
			// Read back as the server stores it, to the millisecond at least.
			if d := done.StartDeadline.Sub(deadline); d > time.Millisecond || d < -time.Millisecond {
				t.Errorf("start deadline %s, want %s", done.StartDeadline, deadline)
			}
		})
	}
}
