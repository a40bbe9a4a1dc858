package jobqueue

import (
	"context"
	"math"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// CatchUpPolicy says which ticks a schedule makes jobs for when it finds ticks it missed
// (no server was running, or Redis was unreachable, when they came). The zero value, "",
// is unset: CatchUpSkip.
type CatchUpPolicy string

// The catch-up policies.
const (
	// CatchUpSkip: missed ticks make no job. A tick is missed when it is more than a minute
	// late.
	CatchUpSkip CatchUpPolicy = "SKIP"
	// CatchUpOnce: the missed ticks make one job together (for the latest of them).
	CatchUpOnce CatchUpPolicy = "ONCE"
	// CatchUpAll: every missed tick makes its own job, oldest first, up to
	// Schedule.CatchUpLimit (the latest ones); older missed ticks make none.
	CatchUpAll CatchUpPolicy = "ALL"
)

var catchUpToProto = map[CatchUpPolicy]jobqueuev1.CatchUpPolicy{
	"":          jobqueuev1.CatchUpPolicy_CATCH_UP_POLICY_UNSPECIFIED,
	CatchUpSkip: jobqueuev1.CatchUpPolicy_CATCH_UP_POLICY_SKIP,
	CatchUpOnce: jobqueuev1.CatchUpPolicy_CATCH_UP_POLICY_ONCE,
	CatchUpAll:  jobqueuev1.CatchUpPolicy_CATCH_UP_POLICY_ALL,
}

// catchUpFromProto is the policy of a stored schedule; "" (unset, which is CatchUpSkip)
// for UNSPECIFIED and for a value this version of the package does not know.
func catchUpFromProto(p jobqueuev1.CatchUpPolicy) CatchUpPolicy {
	for k, v := range catchUpToProto {
		if v == p {
			return k
		}
	}
	return ""
}

// Schedule is a recurring job (docs/schedules.md): a named definition that makes one job
// from its template (Queue, Payload, PayloadBytes, Priority, MaxAttempts, Backoff,
// LeaseDuration, Metadata, ExecutionTimeout, UniqueKey, PartitionKey, which mean what
// Enqueue's arguments and options mean) at each tick of a cron expression or a fixed
// interval. Whichever server notices a tick first makes its job, and exactly one is made per
// tick however many servers run: each carries the idempotency key "schedule:<name>:<tick in
// ms since the epoch>". Set exactly one of Cron and Interval. Zero fields are unset and take
// the server's defaults.
type Schedule struct {
	// Name is 1 to 128 of letters, digits, '-', '_', '.' and ':', unique among schedules.
	Name string
	// Cron is a cron expression in TimeZone: five fields (minute hour day-of-month month
	// day-of-week), or six with seconds first, or "@hourly", "@daily", "@weekly",
	// "@monthly", "@yearly". Ticks never come closer than one second.
	Cron string
	// Interval is a fixed interval, at least one second: ticks at StartTime (the creation
	// when unset) plus whole multiples of it.
	Interval time.Duration
	// TimeZone is the IANA time zone of Cron, such as "Europe/Paris"; "" is UTC. Ticks
	// follow the zone's wall clock: a time skipped when clocks go forward ticks that much
	// later (02:30 becomes 03:30), and a time that happens twice when they go back ticks
	// once, the first time. Not allowed with Interval.
	TimeZone string

	// Queue is the queue each job goes to. Required.
	Queue string
	// Payload is each job's JSON payload (nil for none), as Enqueue takes it.
	Payload map[string]any
	// PayloadBytes is each job's binary payload, besides or instead of Payload (WithBytes).
	PayloadBytes []byte
	// Priority is each job's priority level; "" is PriorityNormal.
	Priority Priority
	// MaxAttempts is how many deliveries each job is allowed before it is dead; 0 is the
	// server default (3).
	MaxAttempts int
	// Backoff sets each job's retry delays; nil, or zero fields, take the defaults.
	Backoff *Backoff
	// LeaseDuration is each job's own lease length (WithLeaseDuration); 0 is unset.
	LeaseDuration time.Duration
	// Metadata are string pairs carried with each job.
	Metadata map[string]string
	// ExecutionTimeout is the longest an attempt of each job may run
	// (WithExecutionTimeout); 0 is no limit.
	ExecutionTimeout time.Duration
	// UniqueKey, when set, is each job's unique key (WithUniqueKey): while the job of an
	// earlier tick is still SCHEDULED, QUEUED or ACTIVE, a tick makes no new job, so ticks do
	// not pile up behind a slow job. "" is none.
	UniqueKey string
	// PartitionKey is each job's partition key (WithPartitionKey); "" is none.
	PartitionKey string

	// StartTime: no tick before it; zero is no lower bound.
	StartTime time.Time
	// EndTime: no tick after it; zero is none.
	EndTime time.Time
	// CatchUp says what happens to ticks missed during downtime; "" is CatchUpSkip.
	CatchUp CatchUpPolicy
	// CatchUpLimit is, with CatchUpAll, the most missed ticks made up at once: 1 to 1,000;
	// 0 is 100.
	CatchUpLimit int
}

// ScheduleInfo is a schedule as the server stores it: its definition and the fields only
// the server sets. Times it does not have are zero.
type ScheduleInfo struct {
	// Schedule is the definition; change it and give it to UpdateSchedule.
	Schedule
	// Paused is true between PauseSchedule and ResumeSchedule.
	Paused bool
	// NextRunTime is the next tick; zero when the schedule is paused or past its EndTime.
	NextRunTime time.Time
	// LastRunTime is the latest tick that made a job; zero before the first.
	LastRunTime time.Time
	// LastJobID is the id of the job the latest tick made; "" before the first.
	LastJobID string
	// CreateTime is when CreateSchedule made the schedule.
	CreateTime time.Time
	// UpdateTime is the last CreateSchedule, UpdateSchedule, PauseSchedule or
	// ResumeSchedule.
	UpdateTime time.Time
}

// toProto builds the message for CreateSchedule and UpdateSchedule. What the server could
// not be told (both Cron and Interval, which share a oneof), or that this package does not
// know (a priority or catch-up policy outside the constants), or that does not fit the
// message (a payload that is not JSON, numbers beyond int32) is refused here, named as the
// server names fields.
func (s Schedule) toProto() (*jobqueuev1.Schedule, error) {
	const prefix = "schedule."
	p := &jobqueuev1.Schedule{
		Name:     s.Name,
		TimeZone: s.TimeZone,
		Template: &jobqueuev1.JobTemplate{
			Queue:        s.Queue,
			PayloadBytes: s.PayloadBytes,
			Metadata:     s.Metadata,
			UniqueKey:    s.UniqueKey,
			PartitionKey: s.PartitionKey,
		},
	}
	switch {
	case s.Cron != "" && s.Interval != 0:
		return nil, invalidArgument(prefix+"cron", "set exactly one of Cron and Interval")
	case s.Cron != "":
		p.Timing = &jobqueuev1.Schedule_Cron{Cron: s.Cron}
	case s.Interval != 0:
		p.Timing = &jobqueuev1.Schedule_Interval{Interval: durationpb.New(s.Interval)}
	}
	t := p.Template
	var err error
	if t.Payload, err = toStruct(s.Payload, prefix+"template.payload"); err != nil {
		return nil, err
	}
	if s.Priority != "" {
		priority, ok := priorityToProto[s.Priority]
		if !ok {
			return nil, invalidArgument(prefix+"template.priority", "is not a known priority")
		}
		t.Priority = priority
	}
	if s.MaxAttempts < 0 || s.MaxAttempts > math.MaxInt32 {
		return nil, invalidArgument(prefix+"template.max_attempts", "must be 0 (the server default) or more")
	}
	t.MaxAttempts = int32(s.MaxAttempts)
	if s.Backoff != nil {
		t.Backoff = s.Backoff.toProto()
	}
	if s.LeaseDuration != 0 {
		t.LeaseDuration = durationpb.New(s.LeaseDuration)
	}
	if s.ExecutionTimeout != 0 {
		t.Timeout = durationpb.New(s.ExecutionTimeout)
	}
	if !s.StartTime.IsZero() {
		p.StartTime = timestamppb.New(s.StartTime)
	}
	if !s.EndTime.IsZero() {
		p.EndTime = timestamppb.New(s.EndTime)
	}
	catchUp, ok := catchUpToProto[s.CatchUp]
	if !ok {
		return nil, invalidArgument(prefix+"catch_up", "is not a known catch-up policy: use CatchUpSkip, CatchUpOnce or CatchUpAll")
	}
	p.CatchUp = catchUp
	if s.CatchUpLimit < 0 || s.CatchUpLimit > math.MaxInt32 {
		return nil, invalidArgument(prefix+"catch_up_limit", "must be 1 to 1,000, or 0 for the default")
	}
	p.CatchUpLimit = int32(s.CatchUpLimit)
	return p, nil
}

func scheduleInfoFromProto(p *jobqueuev1.Schedule) ScheduleInfo {
	t := p.GetTemplate()
	return ScheduleInfo{
		Schedule: Schedule{
			Name:             p.GetName(),
			Cron:             p.GetCron(),
			Interval:         durationOf(p.GetInterval()),
			TimeZone:         p.GetTimeZone(),
			Queue:            t.GetQueue(),
			Payload:          mapOf(t.GetPayload()),
			PayloadBytes:     t.GetPayloadBytes(),
			Priority:         priorityFromProto(t.GetPriority()),
			MaxAttempts:      int(t.GetMaxAttempts()),
			Backoff:          backoffFromProto(t.GetBackoff()),
			LeaseDuration:    durationOf(t.GetLeaseDuration()),
			Metadata:         t.GetMetadata(),
			ExecutionTimeout: durationOf(t.GetTimeout()),
			UniqueKey:        t.GetUniqueKey(),
			PartitionKey:     t.GetPartitionKey(),
			StartTime:        timeOf(p.GetStartTime()),
			EndTime:          timeOf(p.GetEndTime()),
			CatchUp:          catchUpFromProto(p.GetCatchUp()),
			CatchUpLimit:     int(p.GetCatchUpLimit()),
		},
		Paused:      p.GetPaused(),
		NextRunTime: timeOf(p.GetNextRunTime()),
		LastRunTime: timeOf(p.GetLastRunTime()),
		LastJobID:   p.GetLastJobId(),
		CreateTime:  timeOf(p.GetCreateTime()),
		UpdateTime:  timeOf(p.GetUpdateTime()),
	}
}

// CreateSchedule adds a recurring job and returns it as stored, with its first tick
// (NextRunTime). Like every schedule method, it needs an admin token whose patterns include
// "*" on a server with --auth. ErrScheduleExists when the name is taken (use
// UpdateSchedule to change a schedule); ErrScheduleLimitReached when the server holds as
// many schedules as it allows (max_schedules); ErrInvalidArgument, with Error.Field naming
// the field ("schedule.cron", "schedule.template.queue", ...), for a bad definition. Both
// Cron and Interval set, an unknown Priority or CatchUp, a negative MaxAttempts or
// CatchUpLimit, or a Payload that is not JSON is refused before sending.
func (c *Client) CreateSchedule(ctx context.Context, s Schedule) (ScheduleInfo, error) {
	p, err := s.toProto()
	if err != nil {
		return ScheduleInfo{}, err
	}
	resp, err := c.stub.CreateSchedule(ctx, &jobqueuev1.CreateScheduleRequest{Schedule: p})
	if err != nil {
		return ScheduleInfo{}, wrapError(err)
	}
	return scheduleInfoFromProto(resp.GetSchedule()), nil
}

// GetSchedule returns the schedule with the given name, with its next and last run
// (ErrScheduleNotFound when there is none). It takes an admin token for "*" on a server
// with --auth.
func (c *Client) GetSchedule(ctx context.Context, name string) (ScheduleInfo, error) {
	resp, err := c.stub.GetSchedule(ctx, &jobqueuev1.GetScheduleRequest{Name: name})
	if err != nil {
		return ScheduleInfo{}, wrapError(err)
	}
	return scheduleInfoFromProto(resp.GetSchedule()), nil
}

// ListSchedules returns every schedule, sorted by name, fetched a page (the server's
// default, 100) at a time. It takes an admin token for "*" on a server with --auth.
func (c *Client) ListSchedules(ctx context.Context) ([]ScheduleInfo, error) {
	var schedules []ScheduleInfo
	req := &jobqueuev1.ListSchedulesRequest{}
	for {
		resp, err := c.stub.ListSchedules(ctx, req)
		if err != nil {
			return nil, wrapError(err)
		}
		for _, p := range resp.GetSchedules() {
			schedules = append(schedules, scheduleInfoFromProto(p))
		}
		// An empty page cannot make progress: stop rather than loop on its token.
		if resp.GetNextPageToken() == "" || len(resp.GetSchedules()) == 0 {
			return schedules, nil
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

// UpdateSchedule replaces the definition of the schedule named s.Name with s, whole: a
// field left zero is unset, not kept, so start from GetSchedule's ScheduleInfo.Schedule.
// The schedule keeps its name, its paused state and its last run; its ticks are counted
// anew from the later of now and the last run. It returns the schedule as stored now.
// ErrScheduleNotFound when there is no such schedule; the rest is as for CreateSchedule.
func (c *Client) UpdateSchedule(ctx context.Context, s Schedule) (ScheduleInfo, error) {
	p, err := s.toProto()
	if err != nil {
		return ScheduleInfo{}, err
	}
	resp, err := c.stub.UpdateSchedule(ctx, &jobqueuev1.UpdateScheduleRequest{Schedule: p})
	if err != nil {
		return ScheduleInfo{}, wrapError(err)
	}
	return scheduleInfoFromProto(resp.GetSchedule()), nil
}

// DeleteSchedule removes the schedule with the given name; the jobs it made stay.
// ErrScheduleNotFound when there is none. It takes an admin token for "*" on a server with
// --auth.
func (c *Client) DeleteSchedule(ctx context.Context, name string) error {
	_, err := c.stub.DeleteSchedule(ctx, &jobqueuev1.DeleteScheduleRequest{Name: name})
	return wrapError(err)
}

// PauseSchedule stops a schedule's ticks until ResumeSchedule. It returns false when the
// schedule was paused already (nothing changes then). ErrScheduleNotFound when there is no
// such schedule. It takes an admin token for "*" on a server with --auth.
func (c *Client) PauseSchedule(ctx context.Context, name string) (bool, error) {
	resp, err := c.stub.PauseSchedule(ctx, &jobqueuev1.PauseScheduleRequest{Name: name})
	if err != nil {
		return false, wrapError(err)
	}
	return resp.GetChanged(), nil
}

// ResumeSchedule starts a paused schedule again from its next tick after now: the ticks
// that passed while it was paused are not made up. It returns false when the schedule was
// not paused. ErrScheduleNotFound when there is no such schedule. It takes an admin token
// for "*" on a server with --auth.
func (c *Client) ResumeSchedule(ctx context.Context, name string) (bool, error) {
	resp, err := c.stub.ResumeSchedule(ctx, &jobqueuev1.ResumeScheduleRequest{Name: name})
	if err != nil {
		return false, wrapError(err)
	}
	return resp.GetChanged(), nil
}
