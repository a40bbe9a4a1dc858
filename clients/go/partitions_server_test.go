package jobqueue_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

func TestCreateQueueSendsTheCountAndRefusesOneBeyondInt32BeforeSending(t *testing.T) {
	conn := &recordingConn{reply: &jobqueuev1.CreateQueueResponse{Queue: "q", Partitions: 3, Changed: true}}
	client := jobqueue.New(conn, jobqueue.WithoutBatching())

	res, err := client.CreateQueue(context.Background(), "q", 3)
	if err != nil || res != (jobqueue.CreateQueueResult{Queue: "q", Partitions: 3, Changed: true}) {
		t.Fatalf("CreateQueue = %+v, %v", res, err)
	}
	want := &jobqueuev1.CreateQueueRequest{Queue: "q", Partitions: 3}
	if len(conn.requests) != 1 || !proto.Equal(conn.requests[0], want) {
		t.Errorf("requests = %v, want %v", conn.requests, want)
	}

	for _, n := range []int{math.MaxInt32 + 1, math.MinInt32 - 1} {
		_, err := client.CreateQueue(context.Background(), "q", n)
		var e *jobqueue.Error
		if !errors.As(err, &e) || !errors.Is(err, jobqueue.ErrInvalidArgument) || e.Field != "partitions" {
			t.Errorf("CreateQueue(%d): %v, want ErrInvalidArgument on partitions", n, err)
		}
	}
	if len(conn.requests) != 1 {
		t.Errorf("%d requests sent for counts beyond int32", len(conn.requests)-1)
	}
}

func TestBatchedEnqueuesCarryThePartitionKeyOnTheStream(t *testing.T) {
	client, fake := startFakeServer(t) // batching on: Enqueue goes on an EnqueueStream
	ctx := testContext(t)
	if _, err := client.Enqueue(ctx, "orders", nil, jobqueue.WithPartitionKey("acme")); err != nil {
		t.Fatal(err)
	}
	calls := fake.received()
	if len(calls) != 1 || calls[0].method != "EnqueueStream" || len(calls[0].requests) != 1 {
		t.Fatalf("calls %+v", calls)
	}
	if got := calls[0].requests[0].GetPartitionKey(); got != "acme" {
		t.Errorf("the stream message carries partition_key %q", got)
	}
}

// createQueue makes queue with n partitions on the test server.
func createQueue(t *testing.T, client *jobqueue.Client, queue string, n int) {
	t.Helper()
	res, err := client.CreateQueue(testContext(t), queue, n)
	if err != nil || res.Partitions != n {
		t.Fatalf("CreateQueue(%s, %d) = %+v, %v", queue, n, res, err)
	}
}

// The tests below need a server with partitioned queues (CreateQueue, partition_key,
// QueueStats.partitions).

func TestCreateQueueSplitsAQueueThatStatsCountsAsOne(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)+"-orders"

	res, err := client.CreateQueue(ctx, queue, 3)
	if err != nil || res != (jobqueue.CreateQueueResult{Queue: queue, Partitions: 3, Changed: true}) {
		t.Fatalf("CreateQueue(3) = %+v, %v", res, err)
	}
	res, err = client.CreateQueue(ctx, queue, 3)
	if err != nil || res != (jobqueue.CreateQueueResult{Queue: queue, Partitions: 3, Changed: false}) {
		t.Fatalf("CreateQueue(3) again = %+v, %v", res, err)
	}
	_, err = client.CreateQueue(ctx, queue, 2)
	var e *jobqueue.Error
	if !errors.As(err, &e) || !errors.Is(err, jobqueue.ErrInvalidArgument) || e.Field != "partitions" ||
		status.Code(err) != codes.InvalidArgument {
		t.Fatalf("CreateQueue(2) of a queue of 3: %v, want INVALID_ARGUMENT naming partitions", err)
	}

	for i := range 30 {
		enqueue(t, client, queue, map[string]any{"i": i}, jobqueue.WithPartitionKey(fmt.Sprintf("customer-%d", i%7)))
	}
	stats, err := client.Stats(ctx, queue)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 1 || stats[0].Queue != queue || stats[0].Queued != 30 || stats[0].Partitions != 3 {
		t.Errorf("stats = %+v, want one queue of 3 partitions with 30 queued", stats)
	}

	// A queue made by its first enqueue has one partition.
	plain := uniqueQueue(t) + "-plain"
	enqueue(t, client, plain, nil)
	stats, err = client.Stats(ctx, plain)
	if err != nil || len(stats) != 1 || stats[0].Partitions != 1 {
		t.Errorf("stats of a plain queue = %+v, %v", stats, err)
	}
}

func TestBadCreateQueueCallsAreAnInvalidArgumentNamingTheField(t *testing.T) {
	client, ctx := newClient(t), testContext(t)
	cases := []struct {
		queue      string
		partitions int
		field      string
	}{
		{uniqueQueue(t), 65, "partitions"},
		{uniqueQueue(t), -1, "partitions"},
		{"bad queue", 2, "queue"},
		{"", 2, "queue"},
	}
	for _, c := range cases {
		res, err := client.CreateQueue(ctx, c.queue, c.partitions)

		var e *jobqueue.Error
		if !errors.As(err, &e) || !errors.Is(err, jobqueue.ErrInvalidArgument) || e.Field != c.field {
			t.Errorf("CreateQueue(%q, %d) = %+v, %v, want INVALID_ARGUMENT naming %s", c.queue, c.partitions, res, err, c.field)
		}
	}
}

func TestJobsWithOnePartitionKeyAreLeasedInTheOrderTheyWereEnqueued(t *testing.T) {
	client, ctx, queue := newClient(t), testContext(t), uniqueQueue(t)
	createQueue(t, client, queue, 3)

	// Keys interleaved, sent in one EnqueueBatch call and in single enqueues.
	const keys, each = 5, 8
	var jobs []jobqueue.BatchJob
	for i := range keys * each / 2 {
		key := fmt.Sprintf("k%d", i%keys)
		jobs = append(jobs, jobqueue.BatchJob{Queue: queue, Payload: map[string]any{"key": key, "n": i / keys},
			Options: []jobqueue.EnqueueOption{jobqueue.WithPartitionKey(key)}})
	}
	if _, err := client.EnqueueBatch(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	for i := keys * each / 2; i < keys*each; i++ {
		key := fmt.Sprintf("k%d", i%keys)
		enqueue(t, client, queue, map[string]any{"key": key, "n": i / keys}, jobqueue.WithPartitionKey(key))
	}

	var mu sync.Mutex
	leased := map[string][]int{}
	count := 0
	done := make(chan struct{})
	startWorker(t, client, queue, func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		mu.Lock()
		defer mu.Unlock()
		key := job.Payload["key"].(string)
		leased[key] = append(leased[key], int(job.Payload["n"].(float64)))
		if count++; count == keys*each {
			close(done)
		}
		return nil, nil
	}, jobqueue.WithConcurrency(1)) // one at a time: handlers run in the order of the leases
	select {
	case <-done:
	case <-time.After(waitTimeout):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("%d of the %d jobs delivered: %v", count, keys*each, leased)
	}

	mu.Lock()
	defer mu.Unlock()
	for k := range keys {
		key := fmt.Sprintf("k%d", k)
		if got := leased[key]; len(got) != each || !slices.IsSorted(got) {
			t.Errorf("key %s: leased %v, want 0 to %d in order", key, got, each-1)
		}
	}
}
