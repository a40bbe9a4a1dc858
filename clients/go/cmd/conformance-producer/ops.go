package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
)

// command is one line of the kit: an op and its arguments (absent ones are zero).
type command struct {
	Op         string         `json:"op"`
	Queue      string         `json:"queue"`
	Payload    map[string]any `json:"payload"`
	Options    options        `json:"options"`
	Jobs       []batchJob     `json:"jobs"`
	Durability string         `json:"durability"`
	JobID      string         `json:"job_id"`
	State      string         `json:"state"`
	PageSize   int            `json:"page_size"`
	TimeoutMS  float64        `json:"timeout_ms"`
}

type batchJob struct {
	Queue   string         `json:"queue"`
	Payload map[string]any `json:"payload"`
	Options options        `json:"options"`
}

type options struct {
	Priority       string            `json:"priority"`
	DelayMS        *float64          `json:"delay_ms"`
	MaxAttempts    int               `json:"max_attempts"`
	IdempotencyKey string            `json:"idempotency_key"`
	Metadata       map[string]string `json:"metadata"`
	Durability     string            `json:"durability"`
}

// timeout bounds the command's call: a wait's own timeout, or callTimeout.
func (c command) timeout() time.Duration {
	if c.Op == "wait" && c.TimeoutMS > 0 {
		return milliseconds(c.TimeoutMS)
	}
	return callTimeout
}

func milliseconds(ms float64) time.Duration {
	return time.Duration(ms * float64(time.Millisecond))
}

// run carries out one command through the library and returns the "ok" value.
func run(ctx context.Context, client *jobqueue.Client, c command) (any, error) {
	switch c.Op {
	case "enqueue":
		res, err := client.Enqueue(ctx, c.Queue, c.Payload, c.Options.library()...)
		return enqueued(res), err
	case "enqueue_batch":
		return enqueueBatch(ctx, client, c)
	case "get":
		job, err := client.GetStatus(ctx, c.JobID)
		return jobOf(job), err
	case "stats":
		return stats(ctx, client, c.Queue)
	case "list_jobs":
		return listJobs(ctx, client, c)
	case "cancel":
		return nil, client.Cancel(ctx, c.JobID)
	case "retry":
		return nil, client.Retry(ctx, c.JobID)
	case "wait":
		job, err := client.Wait(ctx, c.JobID)
		return jobOf(job), err
	}
	return nil, errUnknownOp
}

// library turns the kit's options into the package's, unchecked: the library validates
// them (an unknown priority or durability is its INVALID_ARGUMENT).
func (o options) library() []jobqueue.EnqueueOption {
	var opts []jobqueue.EnqueueOption
	if o.Priority != "" {
		opts = append(opts, jobqueue.WithPriority(jobqueue.Priority(strings.ToUpper(o.Priority))))
	}
	if o.DelayMS != nil {
		opts = append(opts, jobqueue.WithDelay(milliseconds(*o.DelayMS)))
	}
	if o.MaxAttempts != 0 {
		opts = append(opts, jobqueue.WithMaxAttempts(o.MaxAttempts))
	}
	if o.IdempotencyKey != "" {
		opts = append(opts, jobqueue.WithIdempotencyKey(o.IdempotencyKey))
	}
	if o.Metadata != nil {
		opts = append(opts, jobqueue.WithMetadata(o.Metadata))
	}
	if o.Durability != "" {
		opts = append(opts, jobqueue.WithDurability(durability(o.Durability)))
	}
	return opts
}

func durability(name string) jobqueue.Durability {
	return jobqueue.Durability(strings.ToUpper(name))
}

func enqueueBatch(ctx context.Context, client *jobqueue.Client, c command) (any, error) {
	jobs := make([]jobqueue.BatchJob, 0, len(c.Jobs))
	for _, j := range c.Jobs {
		jobs = append(jobs, jobqueue.BatchJob{Queue: j.Queue, Payload: j.Payload, Options: j.Options.library()})
	}
	var opts []jobqueue.BatchOption
	if c.Durability != "" {
		opts = append(opts, jobqueue.WithDurability(durability(c.Durability)))
	}
	results, err := client.EnqueueBatch(ctx, jobs, opts...)
	if err != nil {
		return nil, err
	}
	answers := make([]enqueueAnswer, 0, len(results))
	for _, r := range results {
		answers = append(answers, enqueued(r))
	}
	return answers, nil
}

func stats(ctx context.Context, client *jobqueue.Client, queue string) (any, error) {
	all, err := client.Stats(ctx, queue)
	if err != nil {
		return nil, err
	}
	answers := make([]statsAnswer, 0, len(all))
	for _, s := range all {
		answers = append(answers, statsAnswer{s.Queue, s.Queued, s.Scheduled, s.Active, s.Completed, s.Dead, s.Cancelled})
	}
	return answers, nil
}

// listJobs reads every page through the library's own paging.
func listJobs(ctx context.Context, client *jobqueue.Client, c command) (any, error) {
	ids := []string{}
	state := jobqueue.JobState(strings.ToUpper(c.State))
	for job, err := range client.ListJobs(ctx, c.Queue, state, jobqueue.WithPageSize(c.PageSize)) {
		if err != nil {
			return nil, err
		}
		ids = append(ids, job.ID)
	}
	return ids, nil
}

var errUnknownOp = fmt.Errorf("unknown op")
