package jobqueue

import (
	"context"
	"errors"
	"math"
	"testing"

	"google.golang.org/protobuf/proto"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

func TestWithGroupKeyBuildsTheRequest(t *testing.T) {
	req, err := buildEnqueueRequest("q", nil, []EnqueueOption{WithGroupKey("acme"), WithUniqueKey("u")}, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := (&jobqueuev1.EnqueueRequest{Queue: "q", GroupKey: "acme", UniqueKey: "u"}); !proto.Equal(req, want) {
		t.Errorf("request\n got %v\nwant %v", req, want)
	}
	last, err := buildEnqueueRequest("q", nil, []EnqueueOption{WithGroupKey("a"), WithGroupKey("b")}, "")
	if err != nil || last.GetGroupKey() != "b" {
		t.Errorf("with two group keys: %v (%v), want the last", last, err)
	}
	plain, err := buildEnqueueRequest("q", nil, nil, "")
	if err != nil || plain.GetGroupKey() != "" {
		t.Errorf("without WithGroupKey: %v (%v)", plain, err)
	}
}

func TestEnqueueAndEnqueueBatchSendTheGroupKey(t *testing.T) {
	conn := &batchConn{t: t}
	client := New(conn, WithoutBatching())
	defer client.Close()

	if _, err := client.Enqueue(context.Background(), "q", nil, WithGroupKey("acme")); err != nil {
		t.Fatal(err)
	}
	_, err := client.EnqueueBatch(context.Background(), []BatchJob{
		{Queue: "q", Options: []EnqueueOption{WithGroupKey("a")}},
		{Queue: "q"},
		{Queue: "q", Options: []EnqueueOption{WithGroupKey("b")}},
	})
	if err != nil {
		t.Fatal(err)
	}

	sent := conn.sent()
	if len(sent) != 2 {
		t.Fatalf("sent %v", sent)
	}
	if got := sent[0].(*jobqueuev1.EnqueueRequest).GetGroupKey(); got != "acme" {
		t.Errorf("Enqueue sent group_key %q", got)
	}
	requests := sent[1].(*jobqueuev1.EnqueueBatchRequest).GetRequests()
	if len(requests) != 3 || requests[0].GetGroupKey() != "a" || requests[1].GetGroupKey() != "" || requests[2].GetGroupKey() != "b" {
		t.Errorf("EnqueueBatch sent %v", requests)
	}
}

func TestAJobConvertsWithItsGroupKey(t *testing.T) {
	if j := jobFromProto(&jobqueuev1.Job{Id: "q:01", GroupKey: "acme"}); j.GroupKey != "acme" {
		t.Errorf("job = %+v", j)
	}
	if j := jobFromProto(&jobqueuev1.Job{Id: "q:02"}); j.GroupKey != "" {
		t.Errorf("a job without a group has %q", j.GroupKey)
	}
}

func TestGroupLimitsConvertBothWays(t *testing.T) {
	limits := QueueLimits{RatePerSecond: 2.5, Burst: 3, MaxActive: 4, GroupRatePerSecond: 0.5, GroupBurst: 2, GroupMaxActive: 1}
	want := &jobqueuev1.QueueLimits{RatePerSecond: 2.5, Burst: 3, MaxActive: 4, GroupRatePerSecond: 0.5, GroupBurst: 2, GroupMaxActive: 1}

	p, err := limits.toProto()
	if err != nil || !proto.Equal(p, want) {
		t.Errorf("toProto = %v (%v), want %v", p, err, want)
	}
	if back := queueLimitsFromProto(want); back == nil || *back != limits {
		t.Errorf("queueLimitsFromProto = %+v, want %+v", back, limits)
	}
	onlyGroups := QueueLimits{GroupMaxActive: 1}
	p, err = onlyGroups.toProto()
	if err != nil || !proto.Equal(p, &jobqueuev1.QueueLimits{GroupMaxActive: 1}) {
		t.Errorf("toProto of %+v = %v (%v)", onlyGroups, p, err)
	}
	stats := statsFromProto(&jobqueuev1.QueueStats{Queue: "q", Limits: &jobqueuev1.QueueLimits{GroupMaxActive: 1}})
	if stats.Limits == nil || *stats.Limits != onlyGroups {
		t.Errorf("stats limits = %+v", stats.Limits)
	}
	if none := statsFromProto(&jobqueuev1.QueueStats{Queue: "q"}); none.Limits != nil {
		t.Errorf("a queue without limits has %+v", none.Limits)
	}
}

func TestGroupCountsBeyondInt32AreRefusedBeforeSending(t *testing.T) {
	conn := &batchConn{t: t} // any call it gets is an error
	client := New(conn, WithoutBatching())
	defer client.Close()
	for field, limits := range map[string]QueueLimits{
		"limits.group_burst":      {GroupRatePerSecond: 1, GroupBurst: math.MaxInt32 + 1},
		"limits.group_max_active": {GroupMaxActive: math.MinInt32 - 1},
	} {
		if _, err := limits.toProto(); err == nil {
			t.Errorf("%+v: toProto took it", limits)
		}
		err := client.SetQueueLimits(context.Background(), "q", limits)
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, ErrInvalidArgument) || e.Field != field {
			t.Errorf("%+v: %v, want ErrInvalidArgument on %s", limits, err, field)
		}
	}
	if sent := conn.sent(); len(sent) != 0 {
		t.Errorf("sent %v", sent)
	}
}
