package jobqueue

import (
	"maps"
	"math"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// DefaultKeepalive pings an otherwise silent connection every 30 s while a call (such as
// a worker's Lease stream, or a producer's EnqueueStream) is open, and drops it when a ping
// goes unanswered for 10 s, so a client notices a dead server or a vanished NAT mapping
// and reconnects. The server accepts pings every 10 s.
var DefaultKeepalive = keepalive.ClientParameters{
	Time:    30 * time.Second,
	Timeout: 10 * time.Second,
}

// Option configures Dial.
type Option func(*dialSettings)

type dialSettings struct {
	creds      credentials.TransportCredentials // nil: from the TLS options and variables
	security   securitySettings
	keepalive  keepalive.ClientParameters
	extra      []grpc.DialOption
	batching   Batching
	noBatching bool
	// tracerProvider: nil for otel.GetTracerProvider() (tracing.go).
	tracerProvider trace.TracerProvider
}

// WithTransportCredentials sets the connection's credentials, for what the TLS options
// (WithTLS, WithTLSCAFile, WithTLSClientCert, WithTLSServerName) do not cover. It wins over
// the JOBQ_TLS* variables (WithTransportCredentials(insecure.NewCredentials()) is plaintext
// whatever they say) and cannot be combined with the TLS options. Without either the
// connection is plaintext.
func WithTransportCredentials(creds credentials.TransportCredentials) Option {
	return func(s *dialSettings) { s.creds = creds }
}

// WithKeepalive replaces DefaultKeepalive.
func WithKeepalive(params keepalive.ClientParameters) Option {
	return func(s *dialSettings) { s.keepalive = params }
}

// WithDialOptions adds gRPC dial options (interceptors, authority, ...); they are applied
// after the package's own and so win over them.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(s *dialSettings) { s.extra = append(s.extra, opts...) }
}

func newDialSettings(opts []Option) dialSettings {
	s := dialSettings{
		keepalive: DefaultKeepalive,
		batching:  Batching{}.withDefaults(),
	}
	for _, opt := range opts {
		opt(&s)
	}
	return s
}

// grpcOptions builds Dial's options; getenv supplies the security settings no option gave.
func (s dialSettings) grpcOptions(getenv func(string) string) ([]grpc.DialOption, error) {
	creds, token, err := resolveSecurity(s.security, s.creds, getenv)
	if err != nil {
		return nil, err
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(s.keepalive),
	}
	if token != nil {
		opts = append(opts, grpc.WithPerRPCCredentials(token))
	}
	return append(opts, s.extra...), nil
}

// EnqueueOption configures one job given to Enqueue or EnqueueBatch.
type EnqueueOption interface {
	applyEnqueue(*enqueueSettings)
}

type enqueueOptionFunc func(*enqueueSettings)

func (f enqueueOptionFunc) applyEnqueue(s *enqueueSettings) { f(s) }

type enqueueSettings struct {
	priority       Priority
	delay          *time.Duration
	runAt          time.Time
	maxAttempts    int
	idempotencyKey string
	leaseDuration  time.Duration
	metadata       map[string]string
	payloadBytes   []byte
	backoff        *Backoff
	durability     Durability
	timeout        time.Duration
	startDeadline  time.Time
	uniqueKey      string
	groupKey       string
	partitionKey   string
	// Dependencies (dependencies.go).
	dependsOn           []string
	onDependencyFailure DependencyFailurePolicy
	ref                 string
	dependsOnRefs       []string
}

// WithPriority sets the job's priority level (default PriorityNormal).
func WithPriority(p Priority) EnqueueOption {
	return enqueueOptionFunc(func(s *enqueueSettings) { s.priority = p })
}

// WithDelay makes the job ready no earlier than d from now (by the server's clock).
func WithDelay(d time.Duration) EnqueueOption {
	return enqueueOptionFunc(func(s *enqueueSettings) { s.delay = &d })
}

// WithRunAt makes the job ready no earlier than t. Use at most one of WithDelay and
// WithRunAt.
func WithRunAt(t time.Time) EnqueueOption {
	return enqueueOptionFunc(func(s *enqueueSettings) { s.runAt = t })
}

// WithMaxAttempts sets how many deliveries the job is allowed before it is dead (server
// default 3).
func WithMaxAttempts(n int) EnqueueOption {
	return enqueueOptionFunc(func(s *enqueueSettings) { s.maxAttempts = n })
}

// WithIdempotencyKey makes a second enqueue with the same key on the same queue, within
// the server's idempotency window (default 24 h), return the first job instead of adding
// another (EnqueueResult.Duplicate is then true).
func WithIdempotencyKey(key string) EnqueueOption {
	return enqueueOptionFunc(func(s *enqueueSettings) { s.idempotencyKey = key })
}

// WithUniqueKey gives the job a unique key (at most 256 characters): while a job of the same
// queue with the same key is SCHEDULED, QUEUED or ACTIVE (retries included), an enqueue with
// it returns that job's id with EnqueueResult.Duplicate true and creates nothing, however
// long ago that job was enqueued. Once that job has ended (COMPLETED, DEAD or CANCELLED),
// the key is free again: unlike WithIdempotencyKey, it does not outlive the job.
// Job.UniqueKey reads it back.
func WithUniqueKey(key string) EnqueueOption {
	return enqueueOptionFunc(func(s *enqueueSettings) { s.uniqueKey = key })
}

// WithGroupKey puts the job in a group (at most 256 characters): a key the producer chooses,
// such as the customer it is for or the recipients' mail domain. A queue serves its groups
// round-robin: each lease takes one ready job from the next group in turn, so a group with
// 10,000 jobs waiting does not hold back one with 10. Jobs without a group take their turn
// together as one more group; within a group, high-priority jobs go first, then first in first
// out. The queue's group limits (QueueLimits.GroupRatePerSecond, GroupBurst, GroupMaxActive)
// bound each group on its own. Job.GroupKey reads it back.
func WithGroupKey(key string) EnqueueOption {
	return enqueueOptionFunc(func(s *enqueueSettings) { s.groupKey = key })
}

// WithPartitionKey gives the job a partition key (at most 256 characters), for a queue with
// more than one partition (CreateQueue): jobs with the same key go to the same partition, so
// they are leased in the order they were enqueued (first in first out per key, as in a queue
// of one partition). Without it a job goes to the partition its group, unique or idempotency
// key names (so those keep working across the queue), else to the next partition in turn.
// Adding partitions moves keys: the order per key holds among the jobs enqueued after. On a
// queue of one partition it changes nothing.
func WithPartitionKey(key string) EnqueueOption {
	return enqueueOptionFunc(func(s *enqueueSettings) { s.partitionKey = key })
}

// LeaseDurationOption is both an EnqueueOption and a WorkerOption; see WithLeaseDuration.
type LeaseDurationOption time.Duration

// WithLeaseDuration sets a lease length. Given to Enqueue, it is the job's own lease
// length, which wins over the worker's and the server's default (30 s). Given to
// NewWorker, it is the lease length of the jobs sent on the worker's stream that do not
// set their own. Workers extend leases while a handler runs, so this bounds how long a
// crashed or stuck worker keeps a job, not how long the job may run.
func WithLeaseDuration(d time.Duration) LeaseDurationOption { return LeaseDurationOption(d) }

func (d LeaseDurationOption) applyEnqueue(s *enqueueSettings) { s.leaseDuration = time.Duration(d) }

func (d LeaseDurationOption) applyWorker(s *workerSettings) { s.leaseDuration = time.Duration(d) }

// WithMetadata adds string pairs carried with the job (trace context, tenant, ...).
// Several WithMetadata options merge.
func WithMetadata(md map[string]string) EnqueueOption {
	return enqueueOptionFunc(func(s *enqueueSettings) {
		if s.metadata == nil {
			s.metadata = make(map[string]string, len(md))
		}
		maps.Copy(s.metadata, md)
	})
}

// WithBytes gives the job a binary payload, besides or instead of the JSON payload.
func WithBytes(b []byte) EnqueueOption {
	return enqueueOptionFunc(func(s *enqueueSettings) { s.payloadBytes = b })
}

// WithBackoff sets the job's retry delays; zero fields take the server's defaults.
func WithBackoff(b Backoff) EnqueueOption {
	return enqueueOptionFunc(func(s *enqueueSettings) { s.backoff = &b })
}

// WithExecutionTimeout bounds how long each attempt of the job may run (the server takes 1 s
// to 7 days): past it the worker running the job is told to stop (its handler's context is
// cancelled with the cause ErrJobTimedOut) and the attempt fails with "timed out after
// <N> s", retried after the backoff or DEAD like any failure, however often the lease was
// extended. Job.ExecutionTimeout reads it back.
func WithExecutionTimeout(d time.Duration) EnqueueOption {
	return enqueueOptionFunc(func(s *enqueueSettings) { s.timeout = d })
}

// WithStartDeadline makes a job that no worker has leased by t end CANCELLED, with the error
// "not started before its start deadline" (a t already past cancels it as soon as the server
// looks). Job.StartDeadline reads it back.
func WithStartDeadline(t time.Time) EnqueueOption {
	return enqueueOptionFunc(func(s *enqueueSettings) { s.startDeadline = t })
}

// buildEnqueueRequest turns Enqueue's arguments into the request; `prefix` goes before the
// names of fields in errors ("requests[3]." in a batch).
func buildEnqueueRequest(queue string, payload map[string]any, opts []EnqueueOption, prefix string) (*jobqueuev1.EnqueueRequest, error) {
	var s enqueueSettings
	for _, opt := range opts {
		opt.applyEnqueue(&s)
	}
	req := &jobqueuev1.EnqueueRequest{
		Queue:          queue,
		PayloadBytes:   s.payloadBytes,
		MaxAttempts:    int32(s.maxAttempts),
		IdempotencyKey: s.idempotencyKey,
		Metadata:       s.metadata,
		UniqueKey:      s.uniqueKey,
		GroupKey:       s.groupKey,
		PartitionKey:   s.partitionKey,
		DependsOn:      s.dependsOn,
		Ref:            s.ref,
		DependsOnRefs:  s.dependsOnRefs,
	}
	if s.maxAttempts < 0 || s.maxAttempts > math.MaxInt32 {
		return nil, invalidArgument(prefix+"max_attempts", "must be 0 (the server default) or more")
	}
	var err error
	if req.Payload, err = toStruct(payload, prefix+"payload"); err != nil {
		return nil, err
	}
	if s.priority != "" {
		p, ok := priorityToProto[s.priority]
		if !ok {
			return nil, invalidArgument(prefix+"priority", "is not a known priority")
		}
		req.Priority = p
	}
	if s.delay != nil {
		req.Delay = durationpb.New(*s.delay)
	}
	if !s.runAt.IsZero() {
		req.ScheduleTime = timestamppb.New(s.runAt)
	}
	if s.leaseDuration != 0 {
		req.LeaseDuration = durationpb.New(s.leaseDuration)
	}
	if s.backoff != nil {
		req.Backoff = s.backoff.toProto()
	}
	if s.timeout != 0 {
		req.Timeout = durationpb.New(s.timeout)
	}
	if !s.startDeadline.IsZero() {
		req.StartDeadline = timestamppb.New(s.startDeadline)
	}
	if req.Durability, err = s.durability.toProto(prefix + "durability"); err != nil {
		return nil, err
	}
	if req.OnDependencyFailure, err = s.onDependencyFailure.toProto(prefix + "on_dependency_failure"); err != nil {
		return nil, err
	}
	return req, nil
}

// BatchOption configures a whole EnqueueBatch call (WithDurability).
type BatchOption interface {
	applyBatch(*batchSettings)
}

type batchSettings struct {
	durability Durability
}
