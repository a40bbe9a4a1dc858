package jobqueue_test

import (
	"testing"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
)

func TestAUniqueKeyReturnsThePendingJobAndIsFreeOnceItEnded(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)

	first, err := client.Enqueue(ctx, queue, map[string]any{"n": 1}, jobqueue.WithUniqueKey("invoice-7"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := client.Enqueue(ctx, queue, map[string]any{"n": 2}, jobqueue.WithUniqueKey("invoice-7"))
	if err != nil {
		t.Fatal(err)
	}
	batched, err := client.EnqueueBatch(ctx, []jobqueue.BatchJob{
		{Queue: queue, Options: []jobqueue.EnqueueOption{jobqueue.WithUniqueKey("invoice-7")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	job, err := client.GetStatus(ctx, first.JobID)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := client.Stats(ctx, queue)
	if err != nil {
		t.Fatal(err)
	}

	if first.Duplicate || !second.Duplicate || second.JobID != first.JobID {
		t.Errorf("first %+v, second %+v", first, second)
	}
	if len(batched) != 1 || !batched[0].Duplicate || batched[0].JobID != first.JobID {
		t.Errorf("in a batch: %+v", batched)
	}
	if job.UniqueKey != "invoice-7" || job.IdempotencyKey != "" || job.State != jobqueue.StateQueued || job.Payload["n"] != 1.0 {
		t.Errorf("job = %+v", job)
	}
	if len(stats) != 1 || stats[0].Queued != 1 {
		t.Errorf("the duplicates created jobs: %+v", stats)
	}

	// Once the job has ended, the key is free: the next enqueue makes a new job.
	if err := client.Cancel(ctx, first.JobID); err != nil {
		t.Fatal(err)
	}
	third, err := client.Enqueue(ctx, queue, map[string]any{"n": 3}, jobqueue.WithUniqueKey("invoice-7"))
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := client.GetStatus(ctx, third.JobID)
	if err != nil {
		t.Fatal(err)
	}

	if third.Duplicate || third.JobID == first.JobID {
		t.Errorf("after the cancel: %+v (first %s)", third, first.JobID)
	}
	if fresh.UniqueKey != "invoice-7" || fresh.State != jobqueue.StateQueued || fresh.Payload["n"] != 3.0 {
		t.Errorf("the new job = %+v", fresh)
	}
}

func TestAUniqueKeyIsPerQueueAndAJobWithoutOneHasNone(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)

	here, err := client.Enqueue(ctx, queue, nil, jobqueue.WithUniqueKey("k"))
	if err != nil {
		t.Fatal(err)
	}
	there, err := client.Enqueue(ctx, queue+"-other", nil, jobqueue.WithUniqueKey("k"))
	if err != nil {
		t.Fatal(err)
	}
	plain := enqueue(t, client, queue, nil)
	job, err := client.GetStatus(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}

	if here.Duplicate || there.Duplicate || there.JobID == here.JobID {
		t.Errorf("one key on two queues: %+v, %+v", here, there)
	}
	if job.UniqueKey != "" {
		t.Errorf("a job enqueued without a unique key has %q", job.UniqueKey)
	}
}
