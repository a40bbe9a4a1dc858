package jobqueue_test

import (
	"context"
	"testing"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
)

func TestProgressAndLogLinesShowInGetStatusWhileTheJobRuns(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)
	release := make(chan struct{})
	startWorker(t, client, queue, func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		job.Progress(40, "copying")
		job.Log("first line")
		job.Log("second line")
		select {
		case <-release:
			return map[string]any{"copied": true}, nil
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	})
	id := enqueue(t, client, queue, nil)

	var running *jobqueue.Job
	eventually(t, "GetStatus shows the progress and both lines", func() bool {
		job, err := client.GetStatus(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		running = job
		return job.Progress != nil && len(job.Logs) == 2
	})
	close(release)

	if running.State != jobqueue.StateActive || running.Progress.Percent != 40 || running.Progress.Message != "copying" ||
		running.Progress.Time.IsZero() {
		t.Errorf("progress = %+v (job %s)", running.Progress, running.State)
	}
	if running.Logs[0].Line != "first line" || running.Logs[1].Line != "second line" || running.Logs[0].Time.IsZero() {
		t.Errorf("logs = %+v", running.Logs)
	}
	if done := waitFor(t, client, id); done.State != jobqueue.StateCompleted || done.Result["copied"] != true {
		t.Errorf("job = %+v", done)
	}
}
