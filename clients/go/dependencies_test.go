package jobqueue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// batchConn answers Enqueue and EnqueueBatch calls with one id per job, recording each
// request; it opens no stream (a test that reaches one fails).
type batchConn struct {
	t        *testing.T
	mu       sync.Mutex
	requests []proto.Message
}

func (c *batchConn) Invoke(_ context.Context, method string, args, reply any, _ ...grpc.CallOption) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests = append(c.requests, proto.Clone(args.(proto.Message)))
	switch r := reply.(type) {
	case *jobqueuev1.EnqueueResponse:
		r.JobId = "q:one"
	case *jobqueuev1.EnqueueBatchResponse:
		for i := range args.(*jobqueuev1.EnqueueBatchRequest).GetRequests() {
			r.Responses = append(r.Responses, &jobqueuev1.EnqueueResponse{JobId: fmt.Sprintf("q:%d", i)})
		}
	default:
		c.t.Errorf("unexpected call %s", method)
	}
	return nil
}

func (c *batchConn) NewStream(_ context.Context, _ *grpc.StreamDesc, method string, _ ...grpc.CallOption) (grpc.ClientStream, error) {
	c.t.Errorf("unexpected stream %s", method)
	return nil, errors.New("batchConn has no streams")
}

func (c *batchConn) sent() []proto.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.requests)
}

func TestDependencyOptionsBuildTheRequest(t *testing.T) {
	ids := []string{"a:01", "b:02"}
	req, err := buildEnqueueRequest("q", nil, []EnqueueOption{
		WithDependsOn(ids...),
		WithDependsOn("c:03"),
		WithOnDependencyFailure(DependencyFailureRunAnyway),
		WithRef("child"),
		WithDependsOnRefs("p1"),
		WithDependsOnRefs("p2", "p3"),
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	want := &jobqueuev1.EnqueueRequest{
		Queue:               "q",
		DependsOn:           []string{"a:01", "b:02", "c:03"},
		OnDependencyFailure: jobqueuev1.DependencyFailurePolicy_DEPENDENCY_FAILURE_POLICY_RUN_ANYWAY,
		Ref:                 "child",
		DependsOnRefs:       []string{"p1", "p2", "p3"},
	}
	if !proto.Equal(req, want) {
		t.Errorf("request\n got %v\nwant %v", req, want)
	}
	ids[0] = "changed"
	if req.GetDependsOn()[0] != "a:01" {
		t.Error("the request shares the caller's slice")
	}
}

func TestEachDependencyFailurePolicyMapsToTheProto(t *testing.T) {
	cases := map[DependencyFailurePolicy]jobqueuev1.DependencyFailurePolicy{
		"":                          jobqueuev1.DependencyFailurePolicy_DEPENDENCY_FAILURE_POLICY_UNSPECIFIED,
		DependencyFailureCancel:     jobqueuev1.DependencyFailurePolicy_DEPENDENCY_FAILURE_POLICY_CANCEL,
		DependencyFailureDeadLetter: jobqueuev1.DependencyFailurePolicy_DEPENDENCY_FAILURE_POLICY_DEAD_LETTER,
		DependencyFailureRunAnyway:  jobqueuev1.DependencyFailurePolicy_DEPENDENCY_FAILURE_POLICY_RUN_ANYWAY,
	}
	for policy, want := range cases {
		req, err := buildEnqueueRequest("q", nil, []EnqueueOption{WithOnDependencyFailure(policy)}, "")
		if err != nil || req.GetOnDependencyFailure() != want {
			t.Errorf("%q: sent %v (%v), want %v", policy, req.GetOnDependencyFailure(), err, want)
		}
		if got := dependencyFailureFromProto(want); got != policy {
			t.Errorf("%v reads back as %q, want %q", want, got, policy)
		}
	}
	if got := dependencyFailureFromProto(jobqueuev1.DependencyFailurePolicy(99)); got != "" {
		t.Errorf("an unknown policy reads as %q", got)
	}
}

func TestAnUnknownDependencyFailurePolicyIsAnInvalidArgument(t *testing.T) {
	_, err := buildEnqueueRequest("q", nil, []EnqueueOption{WithOnDependencyFailure("IGNORE")}, "requests[2].")
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrInvalidArgument) || e.Field != "requests[2].on_dependency_failure" {
		t.Errorf("err = %v", err)
	}
}

func TestEnqueueRefusesRefsBeforeSending(t *testing.T) {
	for _, batching := range []bool{true, false} {
		conn := &batchConn{t: t}
		var opts []Option
		if !batching {
			opts = append(opts, WithoutBatching())
		}
		client := New(conn, opts...)
		for _, c := range []struct {
			option EnqueueOption
			field  string
		}{
			{WithRef("a"), "ref"},
			{WithDependsOnRefs("a"), "depends_on_refs"},
		} {
			_, err := client.Enqueue(context.Background(), "q", nil, c.option)
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrInvalidArgument) || e.Field != c.field {
				t.Errorf("batching %v, %s: err = %v", batching, c.field, err)
			}
		}
		if sent := conn.sent(); len(sent) != 0 {
			t.Errorf("batching %v: sent %v", batching, sent)
		}
		client.Close()
	}
}

func TestEnqueueSendsDependsOn(t *testing.T) {
	conn := &batchConn{t: t}
	client := New(conn, WithoutBatching())

	res, err := client.Enqueue(context.Background(), "q", nil, WithDependsOn("p:01"), WithOnDependencyFailure(DependencyFailureDeadLetter))
	if err != nil || res.JobID != "q:one" {
		t.Fatalf("Enqueue = %+v, %v", res, err)
	}
	sent := conn.sent()
	if len(sent) != 1 {
		t.Fatalf("sent %v", sent)
	}
	req := sent[0].(*jobqueuev1.EnqueueRequest)
	if !slices.Equal(req.GetDependsOn(), []string{"p:01"}) ||
		req.GetOnDependencyFailure() != jobqueuev1.DependencyFailurePolicy_DEPENDENCY_FAILURE_POLICY_DEAD_LETTER {
		t.Errorf("request = %v", req)
	}
}

func TestABatchWithRefsIsSentAsOneCall(t *testing.T) {
	conn := &batchConn{t: t}
	client := New(conn, WithoutBatching())
	jobs := []BatchJob{
		{Queue: "q", Options: []EnqueueOption{WithRef("a")}},
		{Queue: "q", Options: []EnqueueOption{WithRef("b")}},
		{Queue: "q", Options: []EnqueueOption{WithDependsOnRefs("a", "b"), WithDependsOn("x:01")}},
	}

	results, err := client.EnqueueBatch(context.Background(), jobs)
	if err != nil || len(results) != 3 {
		t.Fatalf("EnqueueBatch = %v, %v", results, err)
	}
	sent := conn.sent()
	if len(sent) != 1 {
		t.Fatalf("%d calls", len(sent))
	}
	requests := sent[0].(*jobqueuev1.EnqueueBatchRequest).GetRequests()
	if requests[0].GetRef() != "a" || requests[1].GetRef() != "b" || requests[2].GetRef() != "" ||
		!slices.Equal(requests[2].GetDependsOnRefs(), []string{"a", "b"}) || !slices.Equal(requests[2].GetDependsOn(), []string{"x:01"}) {
		t.Errorf("requests = %v", requests)
	}
}

func TestABatchWithRefsLargerThanOneCallIsRefusedBeforeSending(t *testing.T) {
	for _, option := range []EnqueueOption{WithRef("r"), WithDependsOnRefs("r")} {
		conn := &batchConn{t: t}
		client := New(conn, WithoutBatching())
		jobs := make([]BatchJob, MaxBatch+1)
		for i := range jobs {
			jobs[i] = BatchJob{Queue: "q"}
		}
		jobs[MaxBatch].Options = []EnqueueOption{option} // in what would be the second call

		results, err := client.EnqueueBatch(context.Background(), jobs)

		var e *Error
		if results != nil || !errors.As(err, &e) || !errors.Is(err, ErrInvalidArgument) || e.Field != "requests" ||
			!strings.Contains(e.Message, "one EnqueueBatch call") || !strings.Contains(e.Message, "has 1001 jobs") {
			t.Errorf("EnqueueBatch = %v, %v", results, err)
		}
		if sent := conn.sent(); len(sent) != 0 {
			t.Errorf("sent %d calls", len(sent))
		}
	}
}

func TestABatchWithRefsOfExactlyMaxBatchJobsAndOneWithoutRefsLargerStillGo(t *testing.T) {
	conn := &batchConn{t: t}
	client := New(conn, WithoutBatching())
	jobs := make([]BatchJob, MaxBatch)
	for i := range jobs {
		jobs[i] = BatchJob{Queue: "q", Options: []EnqueueOption{WithRef(fmt.Sprint(i))}}
	}
	if _, err := client.EnqueueBatch(context.Background(), jobs); err != nil {
		t.Fatal(err)
	}
	plain := make([]BatchJob, MaxBatch+1)
	for i := range plain {
		plain[i] = BatchJob{Queue: "q", Options: []EnqueueOption{WithDependsOn("p:01")}}
	}
	if _, err := client.EnqueueBatch(context.Background(), plain); err != nil {
		t.Fatal(err)
	}
	if sent := conn.sent(); len(sent) != 3 {
		t.Errorf("%d calls, want 1 for the graph of MaxBatch jobs and 2 for the plain batch", len(sent))
	}
}

func TestAWaitingJobConvertsWithItsDependencies(t *testing.T) {
	j := jobFromProto(&jobqueuev1.Job{
		Id: "q:02", State: jobqueuev1.JobState_JOB_STATE_WAITING, DependsOn: []string{"q:01", "r:01"},
		OnDependencyFailure: jobqueuev1.DependencyFailurePolicy_DEPENDENCY_FAILURE_POLICY_DEAD_LETTER,
	})
	if j.State != StateWaiting || j.State.Terminal() || !slices.Equal(j.DependsOn, []string{"q:01", "r:01"}) ||
		j.OnDependencyFailure != DependencyFailureDeadLetter {
		t.Errorf("job = %+v", j)
	}
	plain := jobFromProto(&jobqueuev1.Job{Id: "q:03", State: jobqueuev1.JobState_JOB_STATE_QUEUED})
	if plain.DependsOn != nil || plain.OnDependencyFailure != "" {
		t.Errorf("a job without dependencies has %v, %q", plain.DependsOn, plain.OnDependencyFailure)
	}
	stats := statsFromProto(&jobqueuev1.QueueStats{Queue: "q", Waiting: 4, Queued: 1})
	if stats.Waiting != 4 || stats.Queued != 1 {
		t.Errorf("stats = %+v", stats)
	}
}

func TestEveryStateOfTheProtoHasAJobState(t *testing.T) {
	for number, name := range jobqueuev1.JobState_name {
		s, ok := stateFromProto[jobqueuev1.JobState(number)]
		if !ok || "JOB_STATE_"+string(s) != name || stateToProto[s] != jobqueuev1.JobState(number) {
			t.Errorf("%s maps to %q", name, s)
		}
	}
	req, err := listRequest("q", StateWaiting, nil)
	if err != nil || req.GetState() != jobqueuev1.JobState_JOB_STATE_WAITING {
		t.Errorf("ListJobs of StateWaiting sends %v (%v)", req, err)
	}
}

func TestAnUnknownParentIsTheRefusalOfItsJobAlone(t *testing.T) {
	notFound := wrapError(statusError(t, codes.NotFound, "requests[1].depends_on[0]: no job q:9",
		reasonInfo("JOB_NOT_FOUND"), fieldViolation("requests[1].depends_on[0]")))

	i, e := jobError(notFound, 3)
	if i != 1 || e.Field != "depends_on[0]" || !errors.Is(e, ErrNotFound) || e.Message != "depends_on[0]: no job q:9" {
		t.Errorf("index %d, error %+v", i, e)
	}
	other := wrapError(statusError(t, codes.NotFound, "requests[1].queue: no", reasonInfo("JOB_NOT_FOUND"), fieldViolation("requests[1].queue")))
	if i, _ := jobError(other, 3); i != -1 {
		t.Errorf("a NOT_FOUND naming another field was read as job %d's", i)
	}
}
