package jobqueue

import (
	"context"
	"testing"

	"google.golang.org/protobuf/proto"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

func TestWithPartitionKeyBuildsTheRequest(t *testing.T) {
	req, err := buildEnqueueRequest("q", nil, []EnqueueOption{WithPartitionKey("acme"), WithGroupKey("g")}, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := (&jobqueuev1.EnqueueRequest{Queue: "q", PartitionKey: "acme", GroupKey: "g"}); !proto.Equal(req, want) {
		t.Errorf("request\n got %v\nwant %v", req, want)
	}
	last, err := buildEnqueueRequest("q", nil, []EnqueueOption{WithPartitionKey("a"), WithPartitionKey("b")}, "")
	if err != nil || last.GetPartitionKey() != "b" {
		t.Errorf("with two partition keys: %v (%v), want the last", last, err)
	}
	plain, err := buildEnqueueRequest("q", nil, nil, "")
	if err != nil || plain.GetPartitionKey() != "" {
		t.Errorf("without WithPartitionKey: %v (%v)", plain, err)
	}
}

func TestEnqueueAndEnqueueBatchSendThePartitionKey(t *testing.T) {
	conn := &batchConn{t: t}
	client := New(conn, WithoutBatching())
	defer client.Close()

	if _, err := client.Enqueue(context.Background(), "q", nil, WithPartitionKey("acme")); err != nil {
		t.Fatal(err)
	}
	_, err := client.EnqueueBatch(context.Background(), []BatchJob{
		{Queue: "q", Options: []EnqueueOption{WithPartitionKey("a")}},
		{Queue: "q"},
		{Queue: "q", Options: []EnqueueOption{WithPartitionKey("b")}},
	})
	if err != nil {
		t.Fatal(err)
	}

	sent := conn.sent()
	if len(sent) != 2 {
		t.Fatalf("sent %v", sent)
	}
	if got := sent[0].(*jobqueuev1.EnqueueRequest).GetPartitionKey(); got != "acme" {
		t.Errorf("Enqueue sent partition_key %q", got)
	}
	requests := sent[1].(*jobqueuev1.EnqueueBatchRequest).GetRequests()
	if len(requests) != 3 || requests[0].GetPartitionKey() != "a" || requests[1].GetPartitionKey() != "" || requests[2].GetPartitionKey() != "b" {
		t.Errorf("EnqueueBatch sent %v", requests)
	}
}

func TestStatsConvertWithThePartitions(t *testing.T) {
	if s := statsFromProto(&jobqueuev1.QueueStats{Queue: "q", Queued: 30, Partitions: 3}); s.Partitions != 3 || s.Queued != 30 {
		t.Errorf("stats = %+v", s)
	}
	if s := statsFromProto(&jobqueuev1.QueueStats{Queue: "q"}); s.Partitions != 0 {
		t.Errorf("stats without partitions = %+v", s)
	}
}
