package jobqueue_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// fullSchedule sets every field of a definition; its times are whole seconds, in UTC, as
// they come back from the server.
func fullSchedule(name, queue string, start time.Time) jobqueue.Schedule {
	return jobqueue.Schedule{
		Name:             name,
		Cron:             "30 */5 * * * *",
		TimeZone:         "Europe/Paris",
		Queue:            queue,
		Payload:          map[string]any{"report": "daily", "n": 3.0, "tags": []any{"a", "b"}},
		PayloadBytes:     []byte{0, 1, 2},
		Priority:         jobqueue.PriorityHigh,
		MaxAttempts:      7,
		Backoff:          &jobqueue.Backoff{InitialDelay: 2 * time.Second, MaxDelay: time.Minute, Multiplier: 3, Jitter: 0.5},
		LeaseDuration:    45 * time.Second,
		Metadata:         map[string]string{"tenant": "acme"},
		ExecutionTimeout: 10 * time.Minute,
		UniqueKey:        "report-" + name,
		PartitionKey:     "tenant-acme",
		StartTime:        start,
		EndTime:          start.Add(48 * time.Hour),
		CatchUp:          jobqueue.CatchUpAll,
		CatchUpLimit:     10,
	}
}

// sameDefinition compares two definitions, times by instant.
func sameDefinition(a, b jobqueue.Schedule) bool {
	if !a.StartTime.Equal(b.StartTime) || !a.EndTime.Equal(b.EndTime) {
		return false
	}
	a.StartTime, a.EndTime, b.StartTime, b.EndTime = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

func TestCreateScheduleSendsTheWholeDefinitionAndReadsTheStoredSchedule(t *testing.T) {
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	def := fullSchedule("reports", "reports-q", start)
	payload, _ := structpb.NewStruct(def.Payload)
	want := &jobqueuev1.Schedule{
		Name:     "reports",
		Timing:   &jobqueuev1.Schedule_Cron{Cron: "30 */5 * * * *"},
		TimeZone: "Europe/Paris",
		Template: &jobqueuev1.JobTemplate{
			Queue:        "reports-q",
			Payload:      payload,
			PayloadBytes: []byte{0, 1, 2},
			Priority:     jobqueuev1.Priority_PRIORITY_HIGH,
			MaxAttempts:  7,
			Backoff: &jobqueuev1.BackoffPolicy{InitialDelay: durationpb.New(2 * time.Second),
				MaxDelay: durationpb.New(time.Minute), Multiplier: 3, Jitter: 0.5},
			LeaseDuration: durationpb.New(45 * time.Second),
			Metadata:      map[string]string{"tenant": "acme"},
			Timeout:       durationpb.New(10 * time.Minute),
			UniqueKey:     "report-reports",
			PartitionKey:  "tenant-acme",
		},
		StartTime:    timestamppb.New(start),
		EndTime:      timestamppb.New(start.Add(48 * time.Hour)),
		CatchUp:      jobqueuev1.CatchUpPolicy_CATCH_UP_POLICY_ALL,
		CatchUpLimit: 10,
	}
	stored := proto.Clone(want).(*jobqueuev1.Schedule)
	next, last := start.Add(30*time.Second), start.Add(-270*time.Second)
	stored.Paused = true
	stored.NextRunTime = timestamppb.New(next)
	stored.LastRunTime = timestamppb.New(last)
	stored.LastJobId = "01JOB"
	stored.CreateTime = timestamppb.New(start.Add(-time.Hour))
	stored.UpdateTime = timestamppb.New(start.Add(-time.Minute))
	conn := &recordingConn{reply: &jobqueuev1.CreateScheduleResponse{Schedule: stored}}
	client := jobqueue.New(conn, jobqueue.WithoutBatching())

	info, err := client.CreateSchedule(context.Background(), def)
	if err != nil {
		t.Fatal(err)
	}
	if len(conn.requests) != 1 || !proto.Equal(conn.requests[0], &jobqueuev1.CreateScheduleRequest{Schedule: want}) {
		t.Errorf("request = %v\nwant %v", conn.requests, want)
	}
	if !sameDefinition(info.Schedule, def) {
		t.Errorf("definition = %+v\nwant %+v", info.Schedule, def)
	}
	if !info.Paused || !info.NextRunTime.Equal(next) || !info.LastRunTime.Equal(last) || info.LastJobID != "01JOB" ||
		!info.CreateTime.Equal(start.Add(-time.Hour)) || !info.UpdateTime.Equal(start.Add(-time.Minute)) {
		t.Errorf("output fields = %+v", info)
	}
}

func TestAnIntervalScheduleSendsTheIntervalAndLeavesZeroFieldsUnset(t *testing.T) {
	conn := &recordingConn{reply: &jobqueuev1.UpdateScheduleResponse{Schedule: &jobqueuev1.Schedule{
		Name: "tick", Timing: &jobqueuev1.Schedule_Interval{Interval: durationpb.New(90 * time.Second)},
		Template: &jobqueuev1.JobTemplate{Queue: "q"},
	}}}
	client := jobqueue.New(conn, jobqueue.WithoutBatching())

	info, err := client.UpdateSchedule(context.Background(), jobqueue.Schedule{Name: "tick", Interval: 90 * time.Second, Queue: "q"})
	if err != nil {
		t.Fatal(err)
	}
	want := &jobqueuev1.UpdateScheduleRequest{Schedule: &jobqueuev1.Schedule{
		Name: "tick", Timing: &jobqueuev1.Schedule_Interval{Interval: durationpb.New(90 * time.Second)},
		Template: &jobqueuev1.JobTemplate{Queue: "q"},
	}}
	if !proto.Equal(conn.requests[0], want) {
		t.Errorf("request = %v", conn.requests[0])
	}
	// Unset output fields are zero; an unset catch-up policy is "" (CatchUpSkip).
	if info.Name != "tick" || info.Interval != 90*time.Second || info.Cron != "" || info.Queue != "q" ||
		info.CatchUp != "" || info.Backoff != nil || info.Paused || !info.NextRunTime.IsZero() ||
		!info.LastRunTime.IsZero() || !info.StartTime.IsZero() || info.LastJobID != "" {
		t.Errorf("info = %+v", info)
	}
}

func TestEachCatchUpPolicyIsSentAsItsEnumValue(t *testing.T) {
	conn := &recordingConn{reply: &jobqueuev1.CreateScheduleResponse{}}
	client := jobqueue.New(conn, jobqueue.WithoutBatching())
	cases := map[jobqueue.CatchUpPolicy]jobqueuev1.CatchUpPolicy{
		"":                   jobqueuev1.CatchUpPolicy_CATCH_UP_POLICY_UNSPECIFIED,
		jobqueue.CatchUpSkip: jobqueuev1.CatchUpPolicy_CATCH_UP_POLICY_SKIP,
		jobqueue.CatchUpOnce: jobqueuev1.CatchUpPolicy_CATCH_UP_POLICY_ONCE,
		jobqueue.CatchUpAll:  jobqueuev1.CatchUpPolicy_CATCH_UP_POLICY_ALL,
	}
	for policy, want := range cases {
		conn.requests = nil
		if _, err := client.CreateSchedule(context.Background(), jobqueue.Schedule{Name: "s", Cron: "@daily", Queue: "q", CatchUp: policy}); err != nil {
			t.Fatal(err)
		}
		if got := conn.requests[0].(*jobqueuev1.CreateScheduleRequest).GetSchedule().GetCatchUp(); got != want {
			t.Errorf("%q is sent as %s, want %s", policy, got, want)
		}
	}
}

func TestScheduleDefinitionsTheMessageCannotCarryAreRefusedBeforeSending(t *testing.T) {
	conn := &recordingConn{reply: &jobqueuev1.CreateScheduleResponse{}}
	client := jobqueue.New(conn, jobqueue.WithoutBatching())
	ok := jobqueue.Schedule{Name: "s", Interval: time.Minute, Queue: "q"}
	cases := []struct {
		name  string
		edit  func(*jobqueue.Schedule)
		field string
	}{
		{"cron and interval", func(s *jobqueue.Schedule) { s.Cron = "@hourly" }, "schedule.cron"},
		{"unknown priority", func(s *jobqueue.Schedule) { s.Priority = "URGENT" }, "schedule.template.priority"},
		{"negative max attempts", func(s *jobqueue.Schedule) { s.MaxAttempts = -1 }, "schedule.template.max_attempts"},
		{"unknown catch-up", func(s *jobqueue.Schedule) { s.CatchUp = "skip" }, "schedule.catch_up"}, // the constants are upper case
		{"negative catch-up limit", func(s *jobqueue.Schedule) { s.CatchUpLimit = -1 }, "schedule.catch_up_limit"},
		{"payload not JSON", func(s *jobqueue.Schedule) { s.Payload = map[string]any{"c": make(chan int)} }, "schedule.template.payload"},
	}
	for _, c := range cases {
		s := ok
		c.edit(&s)
		for call, do := range map[string]func(context.Context, jobqueue.Schedule) (jobqueue.ScheduleInfo, error){
			"CreateSchedule": client.CreateSchedule,
			"UpdateSchedule": client.UpdateSchedule,
		} {
			_, err := do(context.Background(), s)
			var e *jobqueue.Error
			if !errors.Is(err, jobqueue.ErrInvalidArgument) || !errors.As(err, &e) || e.Field != c.field || e.Code != codes.InvalidArgument {
				t.Errorf("%s, %s: err = %v, want INVALID_ARGUMENT naming %s", call, c.name, err, c.field)
			}
		}
	}
	if len(conn.requests) != 0 {
		t.Errorf("sent %d requests", len(conn.requests))
	}
}

// pagedConn answers ListSchedules with its pages in turn, recording each request.
type pagedConn struct {
	pages    []*jobqueuev1.ListSchedulesResponse
	requests []*jobqueuev1.ListSchedulesRequest
}

func (c *pagedConn) Invoke(_ context.Context, method string, args, reply any, _ ...grpc.CallOption) error {
	if !strings.HasSuffix(method, "/ListSchedules") {
		return status.Error(codes.Unimplemented, method)
	}
	c.requests = append(c.requests, proto.Clone(args.(proto.Message)).(*jobqueuev1.ListSchedulesRequest))
	proto.Merge(reply.(proto.Message), c.pages[len(c.requests)-1])
	return nil
}

func (c *pagedConn) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, errors.New("pagedConn has no streams")
}

func TestListSchedulesFollowsEveryPage(t *testing.T) {
	page := func(token string, names ...string) *jobqueuev1.ListSchedulesResponse {
		r := &jobqueuev1.ListSchedulesResponse{NextPageToken: token}
		for _, n := range names {
			r.Schedules = append(r.Schedules, &jobqueuev1.Schedule{Name: n, Timing: &jobqueuev1.Schedule_Cron{Cron: "@daily"}})
		}
		return r
	}
	conn := &pagedConn{pages: []*jobqueuev1.ListSchedulesResponse{page("t1", "a", "b"), page("t2", "c"), page("", "d")}}
	client := jobqueue.New(conn, jobqueue.WithoutBatching())

	schedules, err := client.ListSchedules(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range schedules {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, []string{"a", "b", "c", "d"}) || schedules[0].Cron != "@daily" {
		t.Errorf("ListSchedules = %+v", schedules)
	}
	var tokens []string
	for _, r := range conn.requests {
		tokens = append(tokens, r.GetPageToken())
	}
	if !slices.Equal(tokens, []string{"", "t1", "t2"}) {
		t.Errorf("page tokens sent: %q", tokens)
	}

	// An empty page with a token cannot make progress: the list ends there.
	conn = &pagedConn{pages: []*jobqueuev1.ListSchedulesResponse{page("t1", "a"), page("t2")}}
	schedules, err = jobqueue.New(conn, jobqueue.WithoutBatching()).ListSchedules(context.Background())
	if err != nil || len(schedules) != 1 || len(conn.requests) != 2 {
		t.Errorf("ListSchedules = %+v, %v after %d calls", schedules, err, len(conn.requests))
	}
}

// createSchedule creates s on the test server and deletes it when the test ends, so that
// it makes no jobs for the rest of the suite.
func createSchedule(t *testing.T, client *jobqueue.Client, s jobqueue.Schedule) jobqueue.ScheduleInfo {
	t.Helper()
	info, err := client.CreateSchedule(testContext(t), s)
	if err != nil {
		t.Fatalf("CreateSchedule: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := client.DeleteSchedule(ctx, s.Name); err != nil && !errors.Is(err, jobqueue.ErrScheduleNotFound) {
			t.Errorf("deleting schedule %s: %v", s.Name, err)
		}
	})
	return info
}

// queuedJobs lists the queued jobs of queue.
func queuedJobs(t *testing.T, client *jobqueue.Client, queue string) []*jobqueue.Job {
	t.Helper()
	var jobs []*jobqueue.Job
	for job, err := range client.ListJobs(testContext(t), queue, jobqueue.StateQueued) {
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, job)
	}
	return jobs
}

// tickKey is the idempotency key of the job a schedule's tick makes.
func tickKey(name string, tick time.Time) string {
	return fmt.Sprintf("schedule:%s:%d", name, tick.UnixMilli())
}

// TestAnIntervalScheduleMakesJobsAndIsManaged goes through a schedule's life on the real
// server: created, its jobs arrive, got, listed, updated, paused, resumed and deleted.
func TestAnIntervalScheduleMakesJobsAndIsManaged(t *testing.T) {
	client, ctx := newClient(t), testContext(t)
	name, queue := uniqueQueue(t), uniqueQueue(t)+"-jobs"
	def := jobqueue.Schedule{
		Name:        name,
		Interval:    time.Second,
		Queue:       queue,
		Payload:     map[string]any{"kind": "tick"},
		Priority:    jobqueue.PriorityLow,
		MaxAttempts: 4,
		Metadata:    map[string]string{"v": "1"},
	}

	created := createSchedule(t, client, def)
	if created.Name != name || created.Interval != time.Second || created.Cron != "" || created.Queue != queue ||
		created.Priority != jobqueue.PriorityLow || created.MaxAttempts != 4 || !reflect.DeepEqual(created.Payload, def.Payload) ||
		!reflect.DeepEqual(created.Metadata, def.Metadata) || created.Paused || created.NextRunTime.IsZero() ||
		created.CreateTime.IsZero() || created.UpdateTime.IsZero() {
		t.Fatalf("CreateSchedule = %+v", created)
	}

	// The first tick makes a job from the template, keyed by the tick.
	var jobs []*jobqueue.Job
	eventually(t, "the schedule's first job is queued", func() bool {
		jobs = queuedJobs(t, client, queue)
		return len(jobs) > 0
	})
	job := jobs[0]
	if job.Queue != queue || !reflect.DeepEqual(job.Payload, def.Payload) || job.Priority != jobqueue.PriorityLow ||
		job.MaxAttempts != 4 || job.Metadata["v"] != "1" || !strings.HasPrefix(job.IdempotencyKey, "schedule:"+name+":") {
		t.Errorf("the schedule's job = %+v", job)
	}

	// GetSchedule shows the definition, the last run (the tick of a job in the queue) and the
	// next, a whole number of intervals later.
	got, err := client.GetSchedule(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if !sameDefinition(got.Schedule, created.Schedule) || got.Paused || got.LastRunTime.IsZero() || got.LastJobID == "" ||
		!got.NextRunTime.After(got.LastRunTime) || got.NextRunTime.Sub(got.LastRunTime)%time.Second != 0 ||
		!got.CreateTime.Equal(created.CreateTime) {
		t.Errorf("GetSchedule = %+v\ncreated %+v", got, created)
	}
	jobs = queuedJobs(t, client, queue)
	i := slices.IndexFunc(jobs, func(j *jobqueue.Job) bool { return j.ID == got.LastJobID })
	if i < 0 {
		t.Fatalf("the last job %s is not among the queued ones", got.LastJobID)
	}
	if key := jobs[i].IdempotencyKey; key != tickKey(name, got.LastRunTime) {
		t.Errorf("the last job's idempotency key is %q, want %q", key, tickKey(name, got.LastRunTime))
	}

	// ListSchedules has it, sorted by name.
	all, err := client.ListSchedules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i = slices.IndexFunc(all, func(s jobqueue.ScheduleInfo) bool { return s.Name == name })
	if i < 0 || !sameDefinition(all[i].Schedule, created.Schedule) {
		t.Errorf("ListSchedules lacks %s: %+v", name, all)
	}
	if !slices.IsSortedFunc(all, func(a, b jobqueue.ScheduleInfo) int { return strings.Compare(a.Name, b.Name) }) {
		t.Errorf("ListSchedules is not sorted by name")
	}

	// UpdateSchedule replaces the definition and keeps the last run; the next jobs follow it.
	changed := got.Schedule
	changed.Interval = 2 * time.Second
	changed.Metadata = map[string]string{"v": "2"}
	updated, err := client.UpdateSchedule(ctx, changed)
	if err != nil {
		t.Fatal(err)
	}
	if !sameDefinition(updated.Schedule, changed) || updated.Paused || updated.LastRunTime.Before(got.LastRunTime) ||
		updated.NextRunTime.IsZero() || !updated.CreateTime.Equal(created.CreateTime) || updated.UpdateTime.Before(got.UpdateTime) {
		t.Errorf("UpdateSchedule = %+v", updated)
	}
	eventually(t, "a job of the new definition is queued", func() bool {
		return slices.ContainsFunc(queuedJobs(t, client, queue), func(j *jobqueue.Job) bool { return j.Metadata["v"] == "2" })
	})

	// Paused, it has no next run, and an update keeps it paused.
	if changed, err := client.PauseSchedule(ctx, name); err != nil || !changed {
		t.Fatalf("PauseSchedule: changed %v, err %v", changed, err)
	}
	if changed, err := client.PauseSchedule(ctx, name); err != nil || changed {
		t.Fatalf("PauseSchedule of a paused schedule: changed %v, err %v", changed, err)
	}
	paused, err := client.GetSchedule(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if !paused.Paused || !paused.NextRunTime.IsZero() || paused.LastRunTime.IsZero() {
		t.Errorf("GetSchedule while paused = %+v", paused)
	}
	changed.Metadata = map[string]string{"v": "3"}
	if updated, err = client.UpdateSchedule(ctx, changed); err != nil {
		t.Fatal(err)
	}
	if !updated.Paused || !updated.NextRunTime.IsZero() || !sameDefinition(updated.Schedule, changed) {
		t.Errorf("UpdateSchedule while paused = %+v", updated)
	}

	// Resumed, it has a next run again.
	if changed, err := client.ResumeSchedule(ctx, name); err != nil || !changed {
		t.Fatalf("ResumeSchedule: changed %v, err %v", changed, err)
	}
	if changed, err := client.ResumeSchedule(ctx, name); err != nil || changed {
		t.Fatalf("ResumeSchedule of a running schedule: changed %v, err %v", changed, err)
	}
	resumed, err := client.GetSchedule(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if resumed.Paused || resumed.NextRunTime.IsZero() || !resumed.NextRunTime.After(resumed.LastRunTime) {
		t.Errorf("GetSchedule after resume = %+v", resumed)
	}

	// Deleted, it is gone; the jobs it made stay.
	if err := client.DeleteSchedule(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, err := client.GetSchedule(ctx, name); !errors.Is(err, jobqueue.ErrScheduleNotFound) || errors.Is(err, jobqueue.ErrNotFound) {
		t.Errorf("GetSchedule of a deleted schedule: %v", err)
	}
	if !slices.ContainsFunc(queuedJobs(t, client, queue), func(j *jobqueue.Job) bool { return j.ID == got.LastJobID }) {
		t.Errorf("the job %s went with its schedule", got.LastJobID)
	}
}

func TestACronScheduleKeepsItsWholeDefinition(t *testing.T) {
	client, ctx := newClient(t), testContext(t)
	name := uniqueQueue(t)
	start := time.Now().Add(24 * time.Hour).Truncate(time.Second).UTC()
	def := fullSchedule(name, uniqueQueue(t)+"-jobs", start)

	created := createSchedule(t, client, def)
	got, err := client.GetSchedule(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	for call, info := range map[string]jobqueue.ScheduleInfo{"CreateSchedule": created, "GetSchedule": got} {
		if !sameDefinition(info.Schedule, def) {
			t.Errorf("%s = %+v\nwant %+v", call, info.Schedule, def)
		}
		// No tick before the start time; none has come yet.
		if info.Paused || info.NextRunTime.Before(start) || info.NextRunTime.After(def.EndTime) ||
			!info.LastRunTime.IsZero() || info.LastJobID != "" {
			t.Errorf("%s: output fields = %+v", call, info)
		}
	}
}

func TestCreatingAScheduleWhoseNameIsTakenIsErrScheduleExists(t *testing.T) {
	client, ctx := newClient(t), testContext(t)
	def := jobqueue.Schedule{Name: uniqueQueue(t), Cron: "@daily", Queue: uniqueQueue(t)}
	createSchedule(t, client, def)

	other := def
	other.Cron, other.Interval = "", time.Hour
	_, err := client.CreateSchedule(ctx, other)
	var e *jobqueue.Error
	if !errors.Is(err, jobqueue.ErrScheduleExists) || !errors.As(err, &e) || e.Code != codes.AlreadyExists ||
		e.Reason != jobqueuev1.ErrorReason_SCHEDULE_EXISTS {
		t.Fatalf("CreateSchedule of a taken name: %v", err)
	}
	// Nothing was changed.
	got, err := client.GetSchedule(ctx, def.Name)
	if err != nil || got.Cron != "@daily" || got.Interval != 0 {
		t.Errorf("GetSchedule = %+v, %v", got, err)
	}
}

func TestCallsNamingAMissingScheduleAreErrScheduleNotFound(t *testing.T) {
	client, ctx := newClient(t), testContext(t)
	name := uniqueQueue(t)
	calls := map[string]func() error{
		"GetSchedule": func() error { _, err := client.GetSchedule(ctx, name); return err },
		"UpdateSchedule": func() error {
			_, err := client.UpdateSchedule(ctx, jobqueue.Schedule{Name: name, Cron: "@daily", Queue: "q"})
			return err
		},
		"DeleteSchedule": func() error { return client.DeleteSchedule(ctx, name) },
		"PauseSchedule":  func() error { _, err := client.PauseSchedule(ctx, name); return err },
		"ResumeSchedule": func() error { _, err := client.ResumeSchedule(ctx, name); return err },
	}
	for call, do := range calls {
		err := do()
		var e *jobqueue.Error
		if !errors.Is(err, jobqueue.ErrScheduleNotFound) || errors.Is(err, jobqueue.ErrNotFound) ||
			!errors.As(err, &e) || e.Code != codes.NotFound || e.Reason != jobqueuev1.ErrorReason_SCHEDULE_NOT_FOUND {
			t.Errorf("%s of a missing schedule: %v", call, err)
		}
	}
}

func TestBadScheduleDefinitionsAreInvalidArgumentsNamingTheField(t *testing.T) {
	client, ctx := newClient(t), testContext(t)
	ok := jobqueue.Schedule{Name: uniqueQueue(t), Cron: "*/5 * * * *", Queue: uniqueQueue(t)}
	cases := []struct {
		name  string
		edit  func(*jobqueue.Schedule)
		field string
	}{
		{"bad cron", func(s *jobqueue.Schedule) { s.Cron = "every tuesday" }, "schedule.cron"},
		{"cron out of range", func(s *jobqueue.Schedule) { s.Cron = "61 * * * *" }, "schedule.cron"},
		{"interval under a second", func(s *jobqueue.Schedule) { s.Cron, s.Interval = "", 500*time.Millisecond }, "schedule.interval"},
		{"time zone with interval", func(s *jobqueue.Schedule) { s.Cron, s.Interval, s.TimeZone = "", time.Minute, "UTC" }, "schedule.time_zone"},
		{"unknown time zone", func(s *jobqueue.Schedule) { s.TimeZone = "Mars/Olympus_Mons" }, "schedule.time_zone"},
		{"no queue", func(s *jobqueue.Schedule) { s.Queue = "" }, "schedule.template.queue"},
		{"bad queue", func(s *jobqueue.Schedule) { s.Queue = "bad queue" }, "schedule.template.queue"},
		{"bad name", func(s *jobqueue.Schedule) { s.Name = "bad name" }, "schedule.name"},
		{"catch-up limit over 1,000", func(s *jobqueue.Schedule) { s.CatchUp, s.CatchUpLimit = jobqueue.CatchUpAll, 1001 }, "schedule.catch_up_limit"},
	}
	for _, c := range cases {
		s := ok
		c.edit(&s)
		_, err := client.CreateSchedule(ctx, s)
		if err == nil {
			_ = client.DeleteSchedule(ctx, s.Name)
		}
		var e *jobqueue.Error
		if !errors.As(err, &e) || !errors.Is(err, jobqueue.ErrInvalidArgument) || e.Code != codes.InvalidArgument ||
			e.Reason != jobqueuev1.ErrorReason_INVALID_ARGUMENT || e.Field != c.field {
			t.Errorf("%s: err = %v (field %q), want INVALID_ARGUMENT naming %s", c.name, err, fieldOf(err), c.field)
		}
	}
	// None of them was created.
	if _, err := client.GetSchedule(ctx, ok.Name); !errors.Is(err, jobqueue.ErrScheduleNotFound) {
		t.Errorf("GetSchedule: %v", err)
	}
}

// fieldOf is the field an error names, if any.
func fieldOf(err error) string {
	var e *jobqueue.Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
