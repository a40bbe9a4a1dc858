package jobqueue

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// Client calls the JobQueueService. It is safe for concurrent use; share one per process:
// concurrent Enqueue calls are gathered into batches (see Batching).
type Client struct {
	stub    jobqueuev1.JobQueueServiceClient
	conn    *grpc.ClientConn // set when Dial made the connection, so Close closes it
	batcher *batcher         // nil when batching is off
	tracer  trace.Tracer     // makes the producer spans, and its workers' process spans
}

// Dial makes a client for the server at target ("host:port", or any gRPC target such as
// "dns:///jobs.internal:50051"). The connection is made lazily and kept alive (see
// DefaultKeepalive). It is plaintext unless TLS is asked for (WithTLS, WithTLSCAFile,
// WithTLSClientCert, WithTLSServerName, WithTransportCredentials), and calls carry a token
// when WithToken gives one; the JOBQ_TOKEN and JOBQ_TLS* environment variables fill what
// no option gave. A bad setting (an unreadable or invalid PEM file, a certificate without
// its key) is an error here, naming the file and the option or variable. Close the client
// when done.
func Dial(target string, opts ...Option) (*Client, error) {
	s := newDialSettings(opts)
	dialOpts, err := s.grpcOptions(os.Getenv)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(target, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("jobqueue: dial %s: %w", target, err)
	}
	client := newClient(conn, s)
	client.conn = conn
	return client, nil
}

// New makes a client on a connection the caller owns (and closes). Of the options, only
// WithBatching, WithoutBatching and WithTracerProvider apply: the connection's credentials
// and token are the caller's (grpc.WithTransportCredentials, grpc.WithPerRPCCredentials),
// and New reads no environment variable.
func New(conn grpc.ClientConnInterface, opts ...Option) *Client {
	return newClient(conn, newDialSettings(opts))
}

func newClient(conn grpc.ClientConnInterface, s dialSettings) *Client {
	client := &Client{stub: jobqueuev1.NewJobQueueServiceClient(conn), tracer: newTracer(s.tracerProvider)}
	if !s.noBatching {
		client.batcher = newBatcher(client.stub, s.batching)
	}
	return client
}

// Close sends the jobs waiting in batches and waits for their answers (see Flush), ends the
// EnqueueStreams (half-closed, then awaited for up to 5 s), then closes the connection Dial
// made (not one given to New). Later Enqueue calls go out alone, and fail once the
// connection is closed.
func (c *Client) Close() error {
	if c.batcher != nil {
		c.batcher.close()
	}
	if c.conn == nil {
		return nil
	}
	return c.conn.Close()
}

// Flush sends the jobs waiting in batches at once and waits until every batch in flight
// is answered, or until ctx ends (its error is returned then). Each job's caller gets
// its answer from Enqueue as usual; Flush only hurries them.
func (c *Client) Flush(ctx context.Context) error {
	if c.batcher == nil {
		return nil
	}
	return c.batcher.flush(ctx)
}

// Stub returns the generated gRPC client, for calls this package does not wrap.
func (c *Client) Stub() jobqueuev1.JobQueueServiceClient { return c.stub }

// EnqueueResult names an enqueued job.
type EnqueueResult struct {
	JobID string
	// Duplicate is true when the idempotency key matched an earlier job, or the unique key
	// a job still pending or running (WithUniqueKey): its id is returned and nothing new was
	// created.
	Duplicate bool
}

// Enqueue adds one job to queue. The payload is a JSON-like object (nil for none); Struct
// numbers are doubles, so integers beyond 2^53 lose precision.
//
// With batching on (the default), concurrent calls share batches, sent as messages on an
// EnqueueStream (EnqueueBatch calls on a server without it): each still gets its own id or
// error, named as for a single enqueue. A batch is answered within the earliest deadline of
// its callers' contexts, and does not carry their values (such as outgoing gRPC metadata):
// use WithoutBatching, or a per-connection interceptor, for those. A call whose context ends
// before its job is sent removes the job; one whose deadline passes after that gets
// DEADLINE_EXCEEDED, and the job may still be enqueued.
//
// WithRef and WithDependsOnRefs are refused here (ErrInvalidArgument naming "ref" or
// "depends_on_refs"), as the server refuses them on a single enqueue: refs name jobs of one
// EnqueueBatch call. A job depends on jobs enqueued before with WithDependsOn.
//
// With a recording tracer provider (WithTracerProvider), the call has a "send <queue>"
// producer span, whose context goes in the job's metadata (unless it holds a traceparent
// already) and, when the job goes in a call of its own (WithoutBatching), in the call's gRPC
// metadata.
func (c *Client) Enqueue(ctx context.Context, queue string, payload map[string]any, opts ...EnqueueOption) (EnqueueResult, error) {
	ctx, send := c.startSend(ctx, queue, 0)
	res, err := c.enqueue(ctx, queue, payload, opts, send)
	send.end(res.JobID, err)
	return res, err
}

func (c *Client) enqueue(ctx context.Context, queue string, payload map[string]any, opts []EnqueueOption, send sendSpan) (EnqueueResult, error) {
	req, err := buildEnqueueRequest(queue, payload, opts, "")
	if err != nil {
		return EnqueueResult{}, err
	}
	if err := refusedRefs(req); err != nil {
		return EnqueueResult{}, err
	}
	send.inject(req)
	if c.batcher != nil {
		// A batch is shared by many callers: it carries their contexts in the jobs'
		// metadata, not in its call's.
		return c.batcher.enqueue(ctx, req)
	}
	return unaryEnqueue(ctx, c.stub, req)
}

// BatchJob is one job for EnqueueBatch.
type BatchJob struct {
	Queue   string
	Payload map[string]any
	Options []EnqueueOption
}

// MaxBatch is how many jobs EnqueueBatch sends per call: a server's default max_batch.
const MaxBatch = 1000

// EnqueueBatch adds many jobs, MaxBatch per call: each call is validated whole before any of
// its jobs is written, and the results come in the order of the jobs. When a later call
// fails, the jobs of the earlier ones stay enqueued. Field names in errors are prefixed with
// the job's index in jobs ("requests[1203].queue").
//
// Jobs of one call can depend on each other before they have ids: name a job with WithRef,
// and make others depend on it with WithDependsOnRefs; the server resolves the refs within
// the call, and refuses it whole (nothing written) for an unknown or duplicate ref or a
// cycle. A batch that uses refs is therefore sent as one call: one of more than MaxBatch
// jobs is refused before anything is sent (ErrInvalidArgument naming "requests").
//
// With a recording tracer provider, the call has one producer span ("send <queue>", or
// "send" for jobs of several queues), whose context goes in each job's metadata (unless it
// holds a traceparent already) and in the gRPC metadata of each call.
func (c *Client) EnqueueBatch(ctx context.Context, jobs []BatchJob, opts ...BatchOption) ([]EnqueueResult, error) {
	ctx, send := c.startSend(ctx, batchQueue(jobs), len(jobs))
	results, err := c.enqueueBatch(ctx, jobs, opts, send)
	send.end("", err)
	return results, err
}

func (c *Client) enqueueBatch(ctx context.Context, jobs []BatchJob, opts []BatchOption, send sendSpan) ([]EnqueueResult, error) {
	var s batchSettings
	for _, opt := range opts {
		opt.applyBatch(&s)
	}
	durability, err := s.durability.toProto("durability")
	if err != nil {
		return nil, err
	}
	requests := make([]*jobqueuev1.EnqueueRequest, 0, len(jobs))
	for i, job := range jobs {
		one, err := buildEnqueueRequest(job.Queue, job.Payload, job.Options, fmt.Sprintf("requests[%d].", i))
		if err != nil {
			return nil, err
		}
		send.inject(one)
		requests = append(requests, one)
	}
	if err := refusedRefBatch(requests); err != nil {
		return nil, err
	}
	results := make([]EnqueueResult, 0, len(jobs))
	for offset := 0; offset < len(requests); offset += MaxBatch {
		batch := requests[offset:min(offset+MaxBatch, len(requests))]
		resp, err := c.stub.EnqueueBatch(ctx, &jobqueuev1.EnqueueBatchRequest{Requests: batch, Durability: durability})
		if err != nil {
			return results, shiftField(wrapError(err), offset)
		}
		for _, r := range resp.GetResponses() {
			results = append(results, EnqueueResult{JobID: r.GetJobId(), Duplicate: r.GetDuplicate()})
		}
	}
	return results, nil
}

// shiftField renumbers "requests[i]" in a batch's error by the batch's offset in the whole list.
func shiftField(err error, offset int) error {
	var e *Error
	if offset == 0 || !errors.As(err, &e) || !strings.HasPrefix(e.Field, "requests[") {
		return err
	}
	index, rest, found := strings.Cut(strings.TrimPrefix(e.Field, "requests["), "]")
	n, convErr := strconv.Atoi(index)
	if !found || convErr != nil {
		return err
	}
	shifted := *e
	shifted.Field = fmt.Sprintf("requests[%d]%s", n+offset, rest)
	shifted.Message = strings.Replace(e.Message, e.Field, shifted.Field, 1)
	return &shifted
}

// GetStatus returns the job with the given id (ErrNotFound when there is none).
func (c *Client) GetStatus(ctx context.Context, jobID string) (*Job, error) {
	resp, err := c.stub.GetStatus(ctx, &jobqueuev1.GetStatusRequest{JobId: jobID})
	if err != nil {
		return nil, wrapError(err)
	}
	return jobFromProto(resp.GetJob()), nil
}

// Stats counts jobs by state for queue, or for every known queue when queue is "".
// The entries are sorted by queue name.
func (c *Client) Stats(ctx context.Context, queue string) ([]QueueStats, error) {
	var stats []QueueStats
	token := ""
	for { // every queue comes a page (up to 1,000) at a time
		resp, err := c.stub.Stats(ctx, &jobqueuev1.StatsRequest{Queue: queue, PageToken: token})
		if err != nil {
			return nil, wrapError(err)
		}
		for _, q := range resp.GetQueues() {
			stats = append(stats, statsFromProto(q))
		}
		token = resp.GetNextPageToken()
		if token == "" {
			return stats, nil
		}
	}
}

// Cancel ends a waiting, scheduled, queued or active job as CANCELLED (ErrWrongState for a
// finished one). A waiting, scheduled or queued job is never leased; the worker running an
// active one is told to stop it (its handler's context is cancelled with the cause
// ErrJobCancelled), and its ack or fail is refused. A server older than these stops refuses an active job with ErrWrongState.
func (c *Client) Cancel(ctx context.Context, jobID string) error {
	_, err := c.stub.Cancel(ctx, &jobqueuev1.CancelRequest{JobId: jobID})
	return wrapError(err)
}

// Retry sends a dead or cancelled job back to its queue with its attempts reset
// (ErrWrongState for a job in any other state).
func (c *Client) Retry(ctx context.Context, jobID string) error {
	_, err := c.stub.Retry(ctx, &jobqueuev1.RetryRequest{JobId: jobID})
	return wrapError(err)
}

// PauseQueue stops delivery from queue on every server: none of its jobs is leased until
// ResumeQueue. Enqueues still work, and jobs already leased finish. It returns false when
// the queue was paused already. It takes the admin role on a server with --auth.
func (c *Client) PauseQueue(ctx context.Context, queue string) (bool, error) {
	resp, err := c.stub.PauseQueue(ctx, &jobqueuev1.PauseQueueRequest{Queue: queue})
	if err != nil {
		return false, wrapError(err)
	}
	return resp.GetChanged(), nil
}

// ResumeQueue lets the jobs of a paused queue be leased again and wakes the workers waiting
// on it. It returns false when the queue was not paused. It takes the admin role on a
// server with --auth.
func (c *Client) ResumeQueue(ctx context.Context, queue string) (bool, error) {
	resp, err := c.stub.ResumeQueue(ctx, &jobqueuev1.ResumeQueueRequest{Queue: queue})
	if err != nil {
		return false, wrapError(err)
	}
	return resp.GetChanged(), nil
}

// CreateQueueResult is what CreateQueue made of a queue.
type CreateQueueResult struct {
	Queue string
	// Partitions is how many partitions the queue has now.
	Partitions int
	// Changed is true when the call made the queue or added partitions to it, false when the
	// queue had that many already.
	Changed bool
}

// CreateQueue declares queue with its number of partitions: 1 to 64, 0 meaning 1. Queues need
// not be created (the first enqueue makes one with a single partition), but a busy one can be
// split: a partitioned queue is still one queue to producers, workers and every method, while
// its partitions are stored apart (on a Redis cluster, each on the node of its own hash slot),
// so one hot queue spans many nodes. WithPartitionKey keeps jobs of one key in order.
// Creating an existing queue again with more partitions adds them; with as many changes
// nothing (Changed false); with fewer is ErrInvalidArgument naming "partitions", as is a count
// out of range ("queue" for a bad queue name). It takes the admin role on a server with --auth.
func (c *Client) CreateQueue(ctx context.Context, queue string, partitions int) (CreateQueueResult, error) {
	if partitions < math.MinInt32 || partitions > math.MaxInt32 {
		return CreateQueueResult{}, invalidArgument("partitions", "must be from 1 to 64, or 0 for 1")
	}
	resp, err := c.stub.CreateQueue(ctx, &jobqueuev1.CreateQueueRequest{Queue: queue, Partitions: int32(partitions)})
	if err != nil {
		return CreateQueueResult{}, wrapError(err)
	}
	return CreateQueueResult{Queue: resp.GetQueue(), Partitions: int(resp.GetPartitions()), Changed: resp.GetChanged()}, nil
}

// QueueLimits bound how fast and how much of a queue runs, across every server and worker
// (Redis enforces them when jobs are leased). The Group fields bound each group of the queue
// (WithGroupKey) on its own, on top of the queue's limits. Jobs a limit holds back stay QUEUED
// and are leased as the limit allows, without workers polling for them. The zero value is no
// limit.
type QueueLimits struct {
	// RatePerSecond is the most jobs leased per second, on average (a token bucket refilled
	// at this rate); 0 is no limit. At most 1,000,000.
	RatePerSecond float64
	// Burst is the most jobs leased at once after an idle time (the bucket's size); 0 is the
	// larger of 1 and RatePerSecond. It applies to a rate: set RatePerSecond too. At most
	// 1,000,000.
	Burst int
	// MaxActive is the most jobs of the queue ACTIVE at once, across every worker; 0 is no
	// limit. At most 1,000,000.
	MaxActive int
	// GroupRatePerSecond is RatePerSecond for each group (WithGroupKey) separately: the most
	// jobs of one group leased per second, each group with a token bucket of its own; 0 is no
	// limit. At most 1,000,000.
	GroupRatePerSecond float64
	// GroupBurst is the size of each group's bucket; 0 is the larger of 1 and
	// GroupRatePerSecond. It applies to a rate: set GroupRatePerSecond too. At most 1,000,000.
	GroupBurst int
	// GroupMaxActive is the most jobs of one group ACTIVE at once (1: one running job per
	// customer); 0 is no limit. At most 1,000,000.
	GroupMaxActive int
}

// toProto builds the message; a count the message cannot carry (beyond int32) is refused
// here, named and worded as the server names and words its own refusals of the values it
// gets (negative ones, or over 1,000,000).
func (l QueueLimits) toProto() (*jobqueuev1.QueueLimits, error) {
	if l.Burst < math.MinInt32 || l.Burst > math.MaxInt32 {
		return nil, invalidArgument("limits.burst", "must be from 0 to 1,000,000")
	}
	if l.MaxActive < math.MinInt32 || l.MaxActive > math.MaxInt32 {
		return nil, invalidArgument("limits.max_active", "must be from 0 to 1,000,000")
	}
	if l.GroupBurst < math.MinInt32 || l.GroupBurst > math.MaxInt32 {
		return nil, invalidArgument("limits.group_burst", "must be from 0 to 1,000,000")
	}
	if l.GroupMaxActive < math.MinInt32 || l.GroupMaxActive > math.MaxInt32 {
		return nil, invalidArgument("limits.group_max_active", "must be from 0 to 1,000,000")
	}
	return &jobqueuev1.QueueLimits{
		RatePerSecond:      l.RatePerSecond,
		Burst:              int32(l.Burst),
		MaxActive:          int32(l.MaxActive),
		GroupRatePerSecond: l.GroupRatePerSecond,
		GroupBurst:         int32(l.GroupBurst),
		GroupMaxActive:     int32(l.GroupMaxActive),
	}, nil
}

func queueLimitsFromProto(p *jobqueuev1.QueueLimits) *QueueLimits {
	if p == nil {
		return nil
	}
	return &QueueLimits{
		RatePerSecond:      p.GetRatePerSecond(),
		Burst:              int(p.GetBurst()),
		MaxActive:          int(p.GetMaxActive()),
		GroupRatePerSecond: p.GetGroupRatePerSecond(),
		GroupBurst:         int(p.GetGroupBurst()),
		GroupMaxActive:     int(p.GetGroupMaxActive()),
	}
}

// SetQueueLimits sets queue's rate and concurrency limits on every server, replacing the ones
// it had (the queue need not hold jobs yet); a zero QueueLimits removes them. They hold from
// the next lease on: jobs already leased are not affected. Stats shows them
// (QueueStats.Limits). The group limits (GroupRatePerSecond, GroupBurst, GroupMaxActive)
// bound each group of the queue (WithGroupKey) on its own, besides the queue's. A bad value is
// ErrInvalidArgument with Error.Field naming it ("limits.rate_per_second", "limits.burst",
// "limits.max_active", "limits.group_rate_per_second", "limits.group_burst",
// "limits.group_max_active"; "queue" for a bad queue name): each must be from 0 to 1,000,000,
// Burst needs RatePerSecond and GroupBurst needs GroupRatePerSecond. It takes the admin role
// on a server with --auth.
func (c *Client) SetQueueLimits(ctx context.Context, queue string, limits QueueLimits) error {
	p, err := limits.toProto()
	if err != nil {
		return err
	}
	_, err = c.stub.SetQueueLimits(ctx, &jobqueuev1.SetQueueLimitsRequest{Queue: queue, Limits: p})
	return wrapError(err)
}
