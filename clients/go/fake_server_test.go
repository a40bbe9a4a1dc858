package jobqueue_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// fakeServer is a JobQueueService on a port of 127.0.0.1 that a test drives by hand: it
// records what a worker sends on its Lease stream and sends it what the test says, answers
// GetStatus from a script, and answers WatchJob with a script or UNIMPLEMENTED. It records
// the enqueues it gets (each call or stream message, with its gRPC metadata) and answers
// them with ids "<queue>:<n>" (n counting jobs), refusing the queue "refused". It records
// ListJobs requests and answers them with the pages of a script, in order (then empty).
type fakeServer struct {
	jobqueuev1.UnimplementedJobQueueServiceServer

	requests  chan *jobqueuev1.LeaseRequest  // each one after the Subscribe
	responses chan *jobqueuev1.LeaseResponse // sent on the Lease stream in order

	mu       sync.Mutex
	statuses []*jobqueuev1.Job // GetStatus answers, in order; the last one repeats
	watch    []*jobqueuev1.Job // WatchJob's messages; nil: UNIMPLEMENTED
	calls    map[string]int
	enqueues []enqueued
	jobs     int                            // ids given
	pages    []*jobqueuev1.ListJobsResponse // ListJobs answers, in order
	lists    []*jobqueuev1.ListJobsRequest  // ListJobs requests received
}

// enqueued is one Enqueue or EnqueueBatch call, or one EnqueueStream message, as received.
type enqueued struct {
	method   string
	headers  metadata.MD // the call's (the stream's, for a message)
	requests []*jobqueuev1.EnqueueRequest
}

func startFakeServer(t *testing.T, opts ...jobqueue.Option) (*jobqueue.Client, *fakeServer) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeServer{
		requests:  make(chan *jobqueuev1.LeaseRequest, 1000),
		responses: make(chan *jobqueuev1.LeaseResponse, 10),
		calls:     map[string]int{},
	}
	srv := grpc.NewServer()
	jobqueuev1.RegisterJobQueueServiceServer(srv, fake)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	client, err := jobqueue.Dial(lis.Addr().String(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client, fake
}

// enqueued records requests and answers them, or refuses them all when one is for the queue
// "refused".
func (f *fakeServer) enqueued(ctx context.Context, method string, requests []*jobqueuev1.EnqueueRequest) ([]*jobqueuev1.EnqueueResponse, error) {
	headers, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.enqueues = append(f.enqueues, enqueued{method: method, headers: headers, requests: requests})
	responses := make([]*jobqueuev1.EnqueueResponse, len(requests))
	for i, r := range requests {
		if r.GetQueue() == "refused" {
			return nil, status.Error(codes.PermissionDenied, "queue refused")
		}
		f.jobs++
		responses[i] = &jobqueuev1.EnqueueResponse{JobId: fmt.Sprintf("%s:%d", r.GetQueue(), f.jobs)}
	}
	return responses, nil
}

// received returns the enqueues received so far.
func (f *fakeServer) received() []enqueued {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.enqueues)
}

func (f *fakeServer) Enqueue(ctx context.Context, req *jobqueuev1.EnqueueRequest) (*jobqueuev1.EnqueueResponse, error) {
	responses, err := f.enqueued(ctx, "Enqueue", []*jobqueuev1.EnqueueRequest{req})
	if err != nil {
		return nil, err
	}
	return responses[0], nil
}

func (f *fakeServer) EnqueueBatch(ctx context.Context, req *jobqueuev1.EnqueueBatchRequest) (*jobqueuev1.EnqueueBatchResponse, error) {
	responses, err := f.enqueued(ctx, "EnqueueBatch", req.GetRequests())
	if err != nil {
		return nil, err
	}
	return &jobqueuev1.EnqueueBatchResponse{Responses: responses}, nil
}

func (f *fakeServer) EnqueueStream(stream grpc.BidiStreamingServer[jobqueuev1.EnqueueStreamRequest, jobqueuev1.EnqueueStreamResponse]) error {
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		responses, err := f.enqueued(stream.Context(), "EnqueueStream", req.GetRequests())
		if err != nil {
			return err
		}
		if err := stream.Send(&jobqueuev1.EnqueueStreamResponse{Sequence: req.GetSequence(), Responses: responses}); err != nil {
			return err
		}
	}
}

func (f *fakeServer) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

func (f *fakeServer) called(method string) {
	f.mu.Lock()
	f.calls[method]++
	f.mu.Unlock()
}

func (f *fakeServer) Lease(stream grpc.BidiStreamingServer[jobqueuev1.LeaseRequest, jobqueuev1.LeaseResponse]) error {
	if _, err := stream.Recv(); err != nil {
		return err
	}
	if err := stream.Send(&jobqueuev1.LeaseResponse{}); err != nil {
		return err
	}
	closed := make(chan struct{}) // the worker half-closed the stream, or it broke
	go func() {
		defer close(closed)
		for {
			req, err := stream.Recv()
			if err != nil {
				return
			}
			f.requests <- req
		}
	}()
	for {
		select {
		case resp := <-f.responses:
			if err := stream.Send(resp); err != nil {
				return err
			}
		case <-closed:
			return nil
		}
	}
}

func (f *fakeServer) GetStatus(_ context.Context, req *jobqueuev1.GetStatusRequest) (*jobqueuev1.GetStatusResponse, error) {
	f.called("GetStatus")
	f.mu.Lock()
	defer f.mu.Unlock()
	job := f.statuses[0]
	if len(f.statuses) > 1 {
		f.statuses = f.statuses[1:]
	}
	return &jobqueuev1.GetStatusResponse{Job: job}, nil
}

func (f *fakeServer) ListJobs(_ context.Context, req *jobqueuev1.ListJobsRequest) (*jobqueuev1.ListJobsResponse, error) {
	f.called("ListJobs")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists = append(f.lists, req)
	if len(f.pages) == 0 {
		return &jobqueuev1.ListJobsResponse{}, nil
	}
	page := f.pages[0]
	f.pages = f.pages[1:]
	return page, nil
}

// listed returns the ListJobs requests received so far.
func (f *fakeServer) listed() []*jobqueuev1.ListJobsRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.lists)
}

func (f *fakeServer) WatchJob(req *jobqueuev1.WatchJobRequest, stream grpc.ServerStreamingServer[jobqueuev1.WatchJobResponse]) error {
	f.called("WatchJob")
	f.mu.Lock()
	watch := f.watch
	f.mu.Unlock()
	if watch == nil {
		return status.Error(codes.Unimplemented, "unknown method WatchJob")
	}
	for _, job := range watch {
		if err := stream.Send(&jobqueuev1.WatchJobResponse{Job: job}); err != nil {
			return err
		}
	}
	return nil
}

// lease sends a job with a lease of an hour, so the worker sends no extend during a test.
func (f *fakeServer) lease(id, token string) {
	now := time.Now()
	f.responses <- &jobqueuev1.LeaseResponse{Jobs: []*jobqueuev1.LeasedJob{{
		Job: &jobqueuev1.Job{
			Id: id, Queue: "q", State: jobqueuev1.JobState_JOB_STATE_ACTIVE, Attempts: 1, MaxAttempts: 3,
			StartTime: timestamppb.New(now),
		},
		LeaseToken:      token,
		LeaseExpireTime: timestamppb.New(now.Add(time.Hour)),
	}}}
}

// next returns the next request the worker sent after its Subscribe.
func (f *fakeServer) next(t *testing.T) *jobqueuev1.LeaseRequest {
	t.Helper()
	select {
	case req := <-f.requests:
		return req
	case <-time.After(waitTimeout):
		t.Fatal("the worker sent nothing")
		return nil
	}
}

// awaitValue waits for a value from ch, failing the test if none comes within waitTimeout.
func awaitValue[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	ctx := testContext(t)
	select {
	case v := <-ch:
		return v
	case <-ctx.Done():
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// runFakeWorker runs a worker of one queue, "q", with concurrency 1 against the fake
// server, until the test ends.
func runFakeWorker(t *testing.T, client *jobqueue.Client, h jobqueue.HandlerFunc) {
	t.Helper()
	logs := &logRecorder{}
	w := jobqueue.NewWorker(client, []string{"q"}, jobqueue.WithConcurrency(1), jobqueue.WithGracePeriod(0),
		jobqueue.WithLogger(slog.New(logs)))
	w.Handle("q", h)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(waitTimeout):
			t.Error("Run did not return")
		}
		if t.Failed() {
			t.Logf("worker log:\n%s", logs)
		}
	})
	select {
	case <-w.Ready():
	case err := <-done:
		t.Fatalf("the worker ended: %v", err)
	}
}
