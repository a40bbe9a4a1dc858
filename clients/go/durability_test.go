package jobqueue_test

import (
	"context"
	"errors"
	"testing"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
)

// The test server's embedded Valkey has its append-only file on, so it can confirm fsyncs.

func TestAnFsyncedEnqueueIsAnsweredOnceOnDisk(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)

	one, err := client.Enqueue(ctx, queue, map[string]any{"n": 1}, jobqueue.WithDurability(jobqueue.DurabilityFsynced))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := client.EnqueueBatch(ctx, []jobqueue.BatchJob{
		{Queue: queue},
		{Queue: queue, Options: []jobqueue.EnqueueOption{jobqueue.WithDurability(jobqueue.DurabilityApplied)}},
	}, jobqueue.WithDurability(jobqueue.DurabilityFsynced))
	if err != nil {
		t.Fatal(err)
	}

	job, err := client.GetStatus(ctx, one.JobID)
	if err != nil || job.State != jobqueue.StateQueued || len(batch) != 2 {
		t.Errorf("job %+v (%v), batch %+v", job, err, batch)
	}
}

func TestAnUnknownDurabilityIsRefusedBeforeSending(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)
	sometimes := jobqueue.WithDurability("SOMETIMES")

	_, one := client.Enqueue(ctx, queue, nil, sometimes)
	_, batch := client.EnqueueBatch(ctx, []jobqueue.BatchJob{{Queue: queue}}, sometimes)
	_, inBatch := client.EnqueueBatch(ctx, []jobqueue.BatchJob{{Queue: queue}, {Queue: queue, Options: []jobqueue.EnqueueOption{sometimes}}})

	for _, c := range []struct {
		err   error
		field string
	}{{one, "durability"}, {batch, "durability"}, {inBatch, "requests[1].durability"}} {
		var e *jobqueue.Error
		if !errors.Is(c.err, jobqueue.ErrInvalidArgument) || !errors.As(c.err, &e) || e.Field != c.field {
			t.Errorf("err = %v, want INVALID_ARGUMENT on %s", c.err, c.field)
		}
	}
	if stats, _ := client.Stats(ctx, queue); len(stats) == 1 && stats[0].Queued != 0 {
		t.Errorf("jobs were written: %+v", stats)
	}
}

func TestAWorkerAcksAtTheDurabilityItWasGiven(t *testing.T) {
	client, queue := newClient(t), uniqueQueue(t)
	startWorker(t, client, queue, func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		return map[string]any{"saved": true}, nil
	}, jobqueue.WithAckDurability(jobqueue.DurabilityFsynced))

	done := waitFor(t, client, enqueue(t, client, queue, nil))

	if done.State != jobqueue.StateCompleted || done.Result["saved"] != true || len(done.Errors) != 0 {
		t.Errorf("job = %+v", done)
	}
}
