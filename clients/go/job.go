package jobqueue

import (
	"encoding/json"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// JobState is where a job is in its life cycle.
type JobState string

// The job states (see docs/state-machine.md).
const (
	// StateUnspecified is never returned by the server.
	StateUnspecified JobState = "UNSPECIFIED"
	// StateWaiting: waiting for the jobs it depends on (WithDependsOn, WithDependsOnRefs);
	// it becomes QUEUED (or SCHEDULED) once every one of them is COMPLETED, or ends as its
	// WithOnDependencyFailure says when one does not.
	StateWaiting JobState = "WAITING"
	// StateScheduled: waiting for its schedule time (delayed, or backing off after a failure).
	StateScheduled JobState = "SCHEDULED"
	// StateQueued: ready to be leased.
	StateQueued JobState = "QUEUED"
	// StateActive: leased by a worker that has not settled it yet.
	StateActive JobState = "ACTIVE"
	// StateCompleted: acked; Job.Result holds what the worker returned.
	StateCompleted JobState = "COMPLETED"
	// StateDead: out of attempts, failed non-retryably, or a job it depends on failed
	// (DependencyFailureDeadLetter); Job.Errors holds the history.
	StateDead JobState = "DEAD"
	// StateCancelled: cancelled (Client.Cancel), not leased before its start deadline, or a
	// job it depends on failed (DependencyFailureCancel).
	StateCancelled JobState = "CANCELLED"
)

// Terminal reports whether the job will not run again unless someone calls Retry.
func (s JobState) Terminal() bool {
	return s == StateCompleted || s == StateDead || s == StateCancelled
}

var stateFromProto = map[jobqueuev1.JobState]JobState{
	jobqueuev1.JobState_JOB_STATE_UNSPECIFIED: StateUnspecified,
	jobqueuev1.JobState_JOB_STATE_SCHEDULED:   StateScheduled,
	jobqueuev1.JobState_JOB_STATE_QUEUED:      StateQueued,
	jobqueuev1.JobState_JOB_STATE_ACTIVE:      StateActive,
	jobqueuev1.JobState_JOB_STATE_COMPLETED:   StateCompleted,
	jobqueuev1.JobState_JOB_STATE_DEAD:        StateDead,
	jobqueuev1.JobState_JOB_STATE_CANCELLED:   StateCancelled,
	jobqueuev1.JobState_JOB_STATE_WAITING:     StateWaiting,
}

var stateToProto = func() map[JobState]jobqueuev1.JobState {
	m := make(map[JobState]jobqueuev1.JobState, len(stateFromProto))
	for p, s := range stateFromProto {
		m[s] = p
	}
	return m
}()

// Priority orders ready jobs inside one queue.
type Priority string

// The priority levels: every high job is leased before any normal job, every normal job
// before any low job; within a level, first in first out.
const (
	PriorityLow    Priority = "LOW"
	PriorityNormal Priority = "NORMAL"
	PriorityHigh   Priority = "HIGH"
)

var priorityToProto = map[Priority]jobqueuev1.Priority{
	PriorityLow:    jobqueuev1.Priority_PRIORITY_LOW,
	PriorityNormal: jobqueuev1.Priority_PRIORITY_NORMAL,
	PriorityHigh:   jobqueuev1.Priority_PRIORITY_HIGH,
}

func priorityFromProto(p jobqueuev1.Priority) Priority {
	for k, v := range priorityToProto {
		if v == p {
			return k
		}
	}
	return PriorityNormal
}

// Backoff says how long a failed job waits before its next attempt:
// min(MaxDelay, InitialDelay * Multiplier^(failures-1)), of which a random fraction up to
// Jitter is taken off. Zero fields take the server's defaults (1 s, 1 h, 2, 0.2).
type Backoff struct {
	InitialDelay time.Duration
	MaxDelay     time.Duration
	Multiplier   float64
	Jitter       float64
	// NoJitter makes the delays exact.
	NoJitter bool
}

func (b Backoff) toProto() *jobqueuev1.BackoffPolicy {
	p := &jobqueuev1.BackoffPolicy{Multiplier: b.Multiplier, Jitter: b.Jitter, NoJitter: b.NoJitter}
	if b.InitialDelay != 0 {
		p.InitialDelay = durationpb.New(b.InitialDelay)
	}
	if b.MaxDelay != 0 {
		p.MaxDelay = durationpb.New(b.MaxDelay)
	}
	return p
}

func backoffFromProto(p *jobqueuev1.BackoffPolicy) *Backoff {
	if p == nil {
		return nil
	}
	return &Backoff{
		InitialDelay: durationOf(p.GetInitialDelay()),
		MaxDelay:     durationOf(p.GetMaxDelay()),
		Multiplier:   p.GetMultiplier(),
		Jitter:       p.GetJitter(),
		NoJitter:     p.GetNoJitter(),
	}
}

// JobError records one failed attempt.
type JobError struct {
	Attempt int
	Message string
	Time    time.Time
}

// JobProgress is how far a running job said it was (LeasedJob.Progress).
type JobProgress struct {
	// Percent is 0 to 100.
	Percent float64
	// Message says what the job is doing.
	Message string
	// Time is when the server received it.
	Time time.Time
}

// JobLogLine is one line a job's handler logged (LeasedJob.Log).
type JobLogLine struct {
	// Line is the line as logged, at most 1,024 characters.
	Line string
	// Time is when the server received it.
	Time time.Time
}

// Job is everything the queue knows about one job. Times the job does not have are zero.
type Job struct {
	ID    string
	Queue string
	State JobState
	// Payload is the JSON payload given at enqueue (numbers are float64, as in
	// encoding/json); nil when the job has none.
	Payload      map[string]any
	PayloadBytes []byte
	Priority     Priority
	// Attempts counts deliveries so far (an attempt is counted when the job is leased).
	Attempts    int
	MaxAttempts int
	CreateTime  time.Time
	// ScheduleTime is when the job becomes (or became) ready: delayed jobs and retries.
	ScheduleTime time.Time
	// StartTime is when the current or last attempt was leased.
	StartTime time.Time
	// FinishTime is when the job reached COMPLETED, DEAD or CANCELLED.
	FinishTime time.Time
	// Result is what the worker returned with its ack; nil when it returned none.
	Result    map[string]any
	LastError string
	// Errors has one entry per failed attempt, oldest first.
	Errors         []JobError
	Metadata       map[string]string
	LeaseDuration  time.Duration
	Backoff        *Backoff
	IdempotencyKey string
	// WorkerID is the worker holding the current lease (ACTIVE only).
	WorkerID string
	// ExecutionTimeout is the longest an attempt may run (WithExecutionTimeout); 0 is no
	// limit.
	ExecutionTimeout time.Duration
	// StartDeadline is when the job ends CANCELLED if no worker has leased it
	// (WithStartDeadline); zero is none.
	StartDeadline time.Time
	// Progress is the latest progress its handler reported (LeasedJob.Progress); nil when
	// none was.
	Progress *JobProgress
	// Logs are the last 100 lines its handlers logged (LeasedJob.Log), oldest first.
	Logs []JobLogLine
	// UniqueKey is the unique key given at enqueue (WithUniqueKey); "" is none.
	UniqueKey string
	// DependsOn are the ids of the jobs this one waits for (WithDependsOn, and
	// WithDependsOnRefs resolved to ids); nil when none. GetStatus on each gives its result.
	DependsOn []string
	// OnDependencyFailure is what becomes of the job when one of DependsOn fails
	// (WithOnDependencyFailure); "" when it has no dependencies or took the default,
	// DependencyFailureCancel.
	OnDependencyFailure DependencyFailurePolicy
	// GroupKey is the group given at enqueue (WithGroupKey); "" is none.
	GroupKey string
}

func jobFromProto(p *jobqueuev1.Job) *Job {
	if p == nil {
		return nil
	}
	j := &Job{
		ID:                  p.GetId(),
		Queue:               p.GetQueue(),
		State:               stateFromProto[p.GetState()],
		Payload:             mapOf(p.GetPayload()),
		PayloadBytes:        p.GetPayloadBytes(),
		Priority:            priorityFromProto(p.GetPriority()),
		Attempts:            int(p.GetAttempts()),
		MaxAttempts:         int(p.GetMaxAttempts()),
		CreateTime:          timeOf(p.GetCreateTime()),
		ScheduleTime:        timeOf(p.GetScheduleTime()),
		StartTime:           timeOf(p.GetStartTime()),
		FinishTime:          timeOf(p.GetFinishTime()),
		Result:              mapOf(p.GetResult()),
		LastError:           p.GetLastError(),
		Metadata:            p.GetMetadata(),
		LeaseDuration:       durationOf(p.GetLeaseDuration()),
		Backoff:             backoffFromProto(p.GetBackoff()),
		IdempotencyKey:      p.GetIdempotencyKey(),
		WorkerID:            p.GetWorkerId(),
		ExecutionTimeout:    durationOf(p.GetTimeout()),
		StartDeadline:       timeOf(p.GetStartDeadline()),
		UniqueKey:           p.GetUniqueKey(),
		DependsOn:           p.GetDependsOn(),
		OnDependencyFailure: dependencyFailureFromProto(p.GetOnDependencyFailure()),
		GroupKey:            p.GetGroupKey(),
	}
	if pr := p.GetProgress(); pr != nil {
		j.Progress = &JobProgress{Percent: pr.GetPercent(), Message: pr.GetMessage(), Time: timeOf(pr.GetTime())}
	}
	for _, l := range p.GetLogs() {
		j.Logs = append(j.Logs, JobLogLine{Line: l.GetLine(), Time: timeOf(l.GetTime())})
	}
	if j.State == "" {
		j.State = StateUnspecified
	}
	for _, e := range p.GetErrors() {
		j.Errors = append(j.Errors, JobError{Attempt: int(e.GetAttempt()), Message: e.GetMessage(), Time: timeOf(e.GetTime())})
	}
	return j
}

// QueueStats counts one queue's jobs by state.
type QueueStats struct {
	Queue     string
	Queued    int64
	Scheduled int64
	Active    int64
	// Waiting counts jobs waiting for the jobs they depend on (StateWaiting).
	Waiting int64
	// Completed, Dead and Cancelled count jobs still inside the retention window.
	Completed int64
	Dead      int64
	Cancelled int64
	// OldestQueuedAge is the age of the oldest ready job (zero when none is ready).
	OldestQueuedAge time.Duration
	// Paused is true while the queue is paused (PauseQueue): its ready jobs are not leased.
	Paused bool
	// Limits are the queue's rate and concurrency limits (SetQueueLimits); nil when it has
	// none.
	Limits *QueueLimits
	// Partitions is how many partitions the queue has (CreateQueue): 1 for a queue never
	// split, 0 from a server without partitioned queues.
	Partitions int
}

func statsFromProto(p *jobqueuev1.QueueStats) QueueStats {
	return QueueStats{
		Queue:           p.GetQueue(),
		Queued:          p.GetQueued(),
		Scheduled:       p.GetScheduled(),
		Active:          p.GetActive(),
		Waiting:         p.GetWaiting(),
		Completed:       p.GetCompleted(),
		Dead:            p.GetDead(),
		Cancelled:       p.GetCancelled(),
		OldestQueuedAge: durationOf(p.GetOldestQueuedAge()),
		Paused:          p.GetPaused(),
		Limits:          queueLimitsFromProto(p.GetLimits()),
		Partitions:      int(p.GetPartitions()),
	}
}

func timeOf(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

func durationOf(d *durationpb.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.AsDuration()
}

func mapOf(s *structpb.Struct) map[string]any {
	if s == nil {
		return nil
	}
	return s.AsMap()
}

// toStruct converts a JSON-like map to a Struct. Values structpb takes directly (nil,
// bool, numbers, string, []any, map[string]any) are converted as they are; anything else
// (structs, typed slices and maps, json.Number, ...) goes through encoding/json. Struct
// numbers are doubles: integers beyond 2^53 lose precision.
func toStruct(m map[string]any, field string) (*structpb.Struct, error) {
	if m == nil {
		return nil, nil
	}
	if s, err := structpb.NewStruct(m); err == nil {
		return s, nil
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, invalidArgument(field, "is not JSON-compatible: "+err.Error())
	}
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		return nil, invalidArgument(field, "is not a JSON object: "+err.Error())
	}
	s, err := structpb.NewStruct(generic)
	if err != nil {
		return nil, invalidArgument(field, "is not JSON-compatible: "+err.Error())
	}
	return s, nil
}
