package jobqueue_test

import (
	"context"
	"errors"
	"testing"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
)

func TestWatchJobYieldsTheJobsStatesThroughToCompletedAndEnds(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)
	id := enqueue(t, client, queue, nil)
	release := make(chan struct{})

	var seen []*jobqueue.Job
	for job, err := range client.WatchJob(ctx, id) {
		if err != nil {
			t.Fatalf("after %d jobs: %v", len(seen), err)
		}
		seen = append(seen, job)
		switch {
		case len(seen) == 1: // the job as it is now: start a worker for it
			startWorker(t, client, queue, func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
				job.Progress(50, "halfway")
				select {
				case <-release:
					return map[string]any{"watched": true}, nil
				case <-ctx.Done():
					return nil, context.Cause(ctx)
				}
			})
		case job.Progress != nil && job.Progress.Percent == 50:
			select {
			case <-release:
			default:
				close(release) // a change of progress was seen: let the job finish
			}
		}
	}

	var states []jobqueue.JobState
	for _, job := range seen {
		states = append(states, job.State)
	}
	last := seen[len(seen)-1]
	if states[0] != jobqueue.StateQueued || last.State != jobqueue.StateCompleted || last.Result["watched"] != true || last.ID != id {
		t.Errorf("states %v, last %+v", states, last)
	}
	sawActive, sawProgress := false, false
	for _, job := range seen[:len(seen)-1] {
		sawActive = sawActive || job.State == jobqueue.StateActive
		sawProgress = sawProgress || (job.State == jobqueue.StateActive && job.Progress != nil && job.Progress.Message == "halfway")
	}
	if !sawActive || !sawProgress {
		t.Errorf("states %v: no active job with its progress", states)
	}
}

func TestWaitReturnsTheCompletedJob(t *testing.T) {
	client, queue := newClient(t), uniqueQueue(t)
	startWorker(t, client, queue, func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		return map[string]any{"twice": job.Payload["n"].(float64) * 2}, nil
	})

	job, err := client.Wait(testContext(t), enqueue(t, client, queue, map[string]any{"n": 21}))

	if err != nil || job.State != jobqueue.StateCompleted || job.Result["twice"] != 42.0 {
		t.Errorf("job %+v, err %v", job, err)
	}
}

func TestWatchingAnUnknownJobIsNotFound(t *testing.T) {
	client, queue := newClient(t), uniqueQueue(t)
	unknown := queue + ":01ARZ3NDEKTSV4RRFFQ69G5FAV"

	n := 0
	for job, err := range client.WatchJob(testContext(t), unknown) {
		n++
		if job != nil || !errors.Is(err, jobqueue.ErrNotFound) {
			t.Errorf("yielded %+v, %v", job, err)
		}
	}
	if n != 1 {
		t.Errorf("%d values yielded", n)
	}
	if _, err := client.Wait(testContext(t), unknown); !errors.Is(err, jobqueue.ErrNotFound) {
		t.Errorf("Wait: %v", err)
	}
}
