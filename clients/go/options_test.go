package jobqueue

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

func TestEnqueueOptionsBuildTheRequest(t *testing.T) {
	runAt := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	req, err := buildEnqueueRequest("email", map[string]any{"to": "ada", "n": 3}, []EnqueueOption{
		WithPriority(PriorityHigh),
		WithRunAt(runAt),
		WithMaxAttempts(5),
		WithIdempotencyKey("order-7"),
		WithLeaseDuration(90 * time.Second),
		WithMetadata(map[string]string{"tenant": "a"}),
		WithMetadata(map[string]string{"trace": "t"}),
		WithBytes([]byte{0, 1}),
		WithBackoff(Backoff{InitialDelay: 10 * time.Millisecond, Multiplier: 3, NoJitter: true}),
		WithDurability(DurabilityFsynced),
		WithExecutionTimeout(90 * time.Second),
		WithStartDeadline(runAt.Add(time.Hour)),
		WithUniqueKey("invoice-7"),
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := structpb.NewStruct(map[string]any{"to": "ada", "n": 3})
	want := &jobqueuev1.EnqueueRequest{
		Queue:          "email",
		Payload:        payload,
		PayloadBytes:   []byte{0, 1},
		Priority:       jobqueuev1.Priority_PRIORITY_HIGH,
		ScheduleTime:   timestamppb.New(runAt),
		MaxAttempts:    5,
		IdempotencyKey: "order-7",
		LeaseDuration:  durationpb.New(90 * time.Second),
		Metadata:       map[string]string{"tenant": "a", "trace": "t"},
		Backoff: &jobqueuev1.BackoffPolicy{
			InitialDelay: durationpb.New(10 * time.Millisecond),
			Multiplier:   3,
			NoJitter:     true,
		},
		Durability:    jobqueuev1.Durability_DURABILITY_FSYNCED,
		Timeout:       durationpb.New(90 * time.Second),
		StartDeadline: timestamppb.New(runAt.Add(time.Hour)),
		UniqueKey:     "invoice-7",
	}
	if !proto.Equal(req, want) {
		t.Errorf("request\n got %v\nwant %v", req, want)
	}
}

// A new value of the contract's Durability enum fails here until it has a level of its own.
func TestEveryDurabilityOfTheContractHasALevel(t *testing.T) {
	levels := map[jobqueuev1.Durability]Durability{}
	for d, p := range durabilityToProto {
		if other, taken := levels[p]; taken {
			t.Errorf("%q and %q both map to %s", d, other, p)
		}
		levels[p] = d
	}
	for number, name := range jobqueuev1.Durability_name {
		if _, ok := levels[jobqueuev1.Durability(number)]; !ok {
			t.Errorf("Durability %s has no level", name)
		}
	}
	req, err := buildEnqueueRequest("q", nil, []EnqueueOption{WithDurability(DurabilityReplicated)}, "")
	if err != nil || req.GetDurability() != jobqueuev1.Durability_DURABILITY_REPLICATED {
		t.Errorf("durability = %v (%v)", req.GetDurability(), err)
	}
}

func TestNoOptionsLeaveEveryDefaultToTheServer(t *testing.T) {
	req, err := buildEnqueueRequest("q", nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(req, &jobqueuev1.EnqueueRequest{Queue: "q"}) {
		t.Errorf("got %v", req)
	}
}

func TestAZeroDelayIsStillSent(t *testing.T) {
	req, _ := buildEnqueueRequest("q", nil, []EnqueueOption{WithDelay(0)}, "")
	if req.GetDelay() == nil || req.GetDelay().AsDuration() != 0 {
		t.Errorf("delay = %v", req.GetDelay())
	}
}

func TestAPayloadOfTypedValuesGoesThroughJSON(t *testing.T) {
	type address struct {
		City string `json:"city"`
	}
	req, err := buildEnqueueRequest("q", map[string]any{
		"tags": []string{"a", "b"},
		"home": address{City: "Paris"},
	}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	got := req.GetPayload().AsMap()
	if got["home"].(map[string]any)["city"] != "Paris" || len(got["tags"].([]any)) != 2 {
		t.Errorf("payload = %v", got)
	}
}

func TestAPayloadThatIsNotJSONIsAnInvalidArgument(t *testing.T) {
	_, err := buildEnqueueRequest("q", map[string]any{"f": func() {}}, nil, "requests[2].")
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrInvalidArgument) || e.Field != "requests[2].payload" {
		t.Errorf("err = %#v", err)
	}
}

func TestAnUnknownPriorityIsAnInvalidArgument(t *testing.T) {
	_, err := buildEnqueueRequest("q", nil, []EnqueueOption{WithPriority("URGENT")}, "")
	var e *Error
	if !errors.As(err, &e) || e.Field != "priority" {
		t.Errorf("err = %v", err)
	}
}

func TestWithLeaseDurationConfiguresAWorkerToo(t *testing.T) {
	w := NewWorker(nil, []string{"q"}, WithLeaseDuration(time.Minute), WithConcurrency(4), WithWorkerID("w"))
	if w.settings.leaseDuration != time.Minute || w.settings.concurrency != 4 || w.ID() != "w" {
		t.Errorf("settings = %+v", w.settings)
	}
	sub := newSession(w).subscription()
	if sub.GetLeaseDuration().AsDuration() != time.Minute || sub.GetMaxInFlight() != 4 || sub.GetWorkerId() != "w" {
		t.Errorf("subscribe = %v", sub)
	}
}

func TestAWorkerRefusesToRunWithoutAHandlerForEachQueue(t *testing.T) {
	w := NewWorker(nil, []string{"a", "b"})
	w.Handle("a", func(ctx context.Context, job *LeasedJob) (map[string]any, error) { return nil, nil })
	err := w.Run(context.Background())
	var e *Error
	if !errors.As(err, &e) || e.Field != "queues[1]" {
		t.Errorf("err = %v", err)
	}
}

func TestAWorkerRefusesAnUnknownAckDurability(t *testing.T) {
	w := NewWorker(nil, []string{"q"}, WithAckDurability("SOMETIMES"))
	w.Handle("q", func(ctx context.Context, job *LeasedJob) (map[string]any, error) { return nil, nil })
	err := w.Run(context.Background())
	var e *Error
	if !errors.As(err, &e) || e.Field != "ack_durability" {
		t.Errorf("err = %v", err)
	}
}

func TestAWorkerRefusesBadQueueNames(t *testing.T) {
	w := NewWorker(nil, nil)
	w.Handle("no spaces", func(ctx context.Context, job *LeasedJob) (map[string]any, error) { return nil, nil })
	if err := w.Run(context.Background()); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("err = %v", err)
	}
}

func TestAJobFromTheServerConverts(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	payload, _ := structpb.NewStruct(map[string]any{"a": 1.5})
	p := &jobqueuev1.Job{
		Id: "q:01", Queue: "q", State: jobqueuev1.JobState_JOB_STATE_DEAD, Payload: payload,
		Priority: jobqueuev1.Priority_PRIORITY_LOW, Attempts: 2, MaxAttempts: 2,
		StartTime: timestamppb.New(start),
		Errors:    []*jobqueuev1.JobError{{Attempt: 1, Message: "boom", Time: timestamppb.New(start)}},
	}
	j := jobFromProto(p)
	if j.Progress != nil || j.Logs != nil || j.ExecutionTimeout != 0 || !j.StartDeadline.IsZero() {
		t.Errorf("a job without them has progress %v, logs %v, timeout %s, start deadline %s", j.Progress, j.Logs, j.ExecutionTimeout, j.StartDeadline)
	}
	if j.State != StateDead || !j.State.Terminal() || j.Priority != PriorityLow || j.Payload["a"] != 1.5 ||
		!j.StartTime.Equal(start) || !j.FinishTime.IsZero() || j.Result != nil || j.Errors[0].Message != "boom" {
		t.Errorf("job = %+v", j)
	}
	p.Timeout = durationpb.New(time.Minute)
	p.StartDeadline = timestamppb.New(start.Add(time.Hour))
	p.Progress = &jobqueuev1.JobProgress{Percent: 12.5, Message: "m", Time: timestamppb.New(start)}
	p.Logs = []*jobqueuev1.JobLogLine{{Line: "a", Time: timestamppb.New(start)}, {Line: "b"}}
	j = jobFromProto(p)
	if j.ExecutionTimeout != time.Minute || !j.StartDeadline.Equal(start.Add(time.Hour)) ||
		*j.Progress != (JobProgress{Percent: 12.5, Message: "m", Time: start}) ||
		len(j.Logs) != 2 || j.Logs[0] != (JobLogLine{Line: "a", Time: start}) || j.Logs[1].Line != "b" || !j.Logs[1].Time.IsZero() {
		t.Errorf("job = %+v", j)
	}
	leased := leasedFromProto(&jobqueuev1.LeasedJob{Job: p, LeaseToken: "tok", LeaseExpireTime: timestamppb.New(start.Add(20 * time.Second))})
	if leased.leaseLength != 20*time.Second || !leased.Deadline().Equal(start.Add(20*time.Second)) || leased.Attempt != 2 {
		t.Errorf("leased = %+v (length %s)", leased, leased.leaseLength)
	}
}
