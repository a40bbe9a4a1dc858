// Package jobqueue is the Go client of the jobqueue service: a Client for producers
// (Enqueue, EnqueueBatch, GetStatus, Stats, ListJobs, Cancel, Retry, PauseQueue,
// ResumeQueue, SetQueueLimits, CreateQueue, WatchJob, Wait) and a Worker that leases jobs on a gRPC stream, runs a handler per
// queue, extends leases while handlers run, and acks or fails each job.
//
// Producer:
//
//	client, err := jobqueue.Dial("localhost:50051")
//	if err != nil { ... }
//	defer client.Close()
//	res, err := client.Enqueue(ctx, "email", map[string]any{"to": "ada@example.com"},
//		jobqueue.WithMaxAttempts(5), jobqueue.WithDelay(time.Minute))
//	job, err := client.Wait(ctx, res.JobID) // job.State == jobqueue.StateCompleted, job.Result
//
// WithUniqueKey keeps one job per key pending or running: while a job of the queue with
// that unique key is SCHEDULED, QUEUED or ACTIVE, an enqueue with it returns that job
// (EnqueueResult.Duplicate); once the job has ended, the key is free again.
//
// Jobs can depend on other jobs: WithDependsOn(ids...) keeps a job WAITING (StateWaiting)
// until every one of them is COMPLETED, then queues it; WithOnDependencyFailure says what
// becomes of it when one ends DEAD or CANCELLED instead (DependencyFailureCancel, the
// default, DependencyFailureDeadLetter, DependencyFailureRunAnyway). Inside one
// EnqueueBatch call, jobs name each other with WithRef and WithDependsOnRefs before they
// have ids; here two parents and a child that runs once both have completed:
//
//	results, err := client.EnqueueBatch(ctx, []jobqueue.BatchJob{
//		{Queue: "fetch", Payload: map[string]any{"url": a}, Options: []jobqueue.EnqueueOption{jobqueue.WithRef("a")}},
//		{Queue: "fetch", Payload: map[string]any{"url": b}, Options: []jobqueue.EnqueueOption{jobqueue.WithRef("b")}},
//		{Queue: "merge", Options: []jobqueue.EnqueueOption{jobqueue.WithDependsOnRefs("a", "b")}},
//	})
//
// The child's handler finds its parents' ids in job.Job.DependsOn, and their results with
// GetStatus on each.
//
// SetQueueLimits bounds how fast (QueueLimits.RatePerSecond, Burst) and how much
// (QueueLimits.MaxActive) of a queue runs, across every server and worker; Stats shows the
// limits (QueueStats.Limits), and a zero QueueLimits removes them.
//
// WithGroupKey puts a job in a group (the customer it is for, the recipients' mail domain): a
// queue serves its groups round-robin, one ready job from each in turn, so a customer with
// 10,000 jobs waiting does not hold back one with 10 (jobs without a group take their turn
// together, as one more group). QueueLimits.GroupRatePerSecond, GroupBurst and GroupMaxActive
// bound each group on its own; here one running job per customer at a time:
//
//	err := client.SetQueueLimits(ctx, "email", jobqueue.QueueLimits{GroupMaxActive: 1})
//	res, err := client.Enqueue(ctx, "email", payload, jobqueue.WithGroupKey("acme"))
//
// The handler finds the group in job.Job.GroupKey.
//
// CreateQueue splits a busy queue into partitions (1 to 64) stored apart, on a Redis cluster
// each on the node of its own hash slot; it is still one queue to every other method, and
// Stats shows how many it has (QueueStats.Partitions). WithPartitionKey sends the jobs of one
// key to one partition, so they are leased in the order they were enqueued:
//
//	res, err := client.CreateQueue(ctx, "orders", 8) // res.Changed: made or grown now
//	_, err = client.Enqueue(ctx, "orders", payload, jobqueue.WithPartitionKey("order-1234"))
//
// Concurrent Enqueue calls are gathered into batches, sent on an EnqueueStream (or as
// EnqueueBatch calls to an older server), each caller still getting its own id or error
// (WithBatching, WithoutBatching, Client.Flush; see Batching).
//
// Worker, stopping gracefully on SIGTERM or Ctrl-C (signal handling is the caller's):
//
//	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
//	defer stop()
//	worker := jobqueue.NewWorker(client, []string{"email"}, jobqueue.WithConcurrency(8))
//	worker.Handle("email", func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
//		if err := send(ctx, job.Payload); err != nil {
//			return nil, err // retried after the job's backoff
//		}
//		return map[string]any{"sent": true}, nil
//	})
//	if err := worker.Run(ctx); err != nil { ... } // returns after the graceful stop
//
// A handler reports how far it is with job.Progress and job.Log (producers see them in
// GetStatus and WatchJob). When the server stops a running job (Cancel, or an attempt past its
// WithExecutionTimeout), the handler's ctx is cancelled with the cause ErrJobCancelled or
// ErrJobTimedOut, and nothing is settled for the job.
//
// When ctx is cancelled, Run takes no more jobs, lets running handlers finish for up to
// the grace period (WithGracePeriod), then cancels the rest (their jobs go back to the
// queue), sends the last acks and closes the stream.
//
// Errors wrap the gRPC status. Each reason of the contract's ErrorReason enum has its own
// sentinel error (ErrInvalidArgument, ErrNotFound, ErrLeaseLost, ErrWrongState,
// ErrDurabilityUnavailable, ErrFsyncNotConfirmed, ErrReplicationNotConfirmed,
// ErrStoreUnavailable, ErrStoreFull, ErrServerShuttingDown, ErrInternal, ErrTokenMissing,
// ErrTokenInvalid, ErrTokenExpired, ErrRoleNotAllowed, ErrQueueNotAllowed,
// ErrTokenNotFound, ErrTokenLimitReached, ErrQueueLimitReached, ErrScheduleNotFound,
// ErrScheduleExists, ErrScheduleLimitReached, ErrWebhookNotFound, ErrWebhookLimitReached),
// and ErrUnavailable, ErrResourceExhausted, ErrUnauthenticated and ErrPermissionDenied match
// by status code; match them with errors.Is, or take an error apart with errors.As into
// *Error (Code, Reason, Field, Message). status.FromError works on them too.
//
// TLS, mutual TLS and a bearer token are options of Dial (WithTLS, WithTLSCAFile,
// WithTLSClientCert, WithTLSServerName, WithToken), filled from the JOBQ_TLS* and
// JOBQ_TOKEN environment variables when not given. With an admin token, CreateToken,
// ListTokens and RevokeToken manage API tokens.
//
// Recurring jobs are schedules: CreateSchedule, GetSchedule, ListSchedules,
// UpdateSchedule, DeleteSchedule, PauseSchedule and ResumeSchedule (see Schedule).
//
// Failure alerts are webhooks: CreateWebhook, ListWebhooks and DeleteWebhook (see Webhook)
// have the servers POST signed JSON to an HTTP endpoint when a job dies or a queue passes a
// threshold.
//
// OpenTelemetry: Enqueue and EnqueueBatch make "send <queue>" producer spans, whose context
// rides in the job's metadata (traceparent), and the Worker a "process <queue>" consumer span
// per handler run, its child. They go to the global tracer provider or the one given with
// WithTracerProvider, and cost next to nothing until an SDK provider is installed.
//
// Writes can wait for Redis's disk or its replicas: WithDurability(DurabilityFsynced or
// DurabilityReplicated) on Enqueue and EnqueueBatch, WithAckDurability on a Worker.
//
// Payloads and results are JSON objects carried as google.protobuf.Struct: numbers are
// doubles (integers beyond 2^53 lose precision) and come back as float64.
package jobqueue
