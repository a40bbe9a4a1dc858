package jobqueue_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// The worker runtime against a fake server: what goes on the Lease stream for progress
// reports and stops, exactly.

// untilAcked reads the worker's requests until one acks jobID, and returns them all.
func untilAcked(t *testing.T, fake *fakeServer, jobID string) []*jobqueuev1.LeaseRequest {
	t.Helper()
	var seen []*jobqueuev1.LeaseRequest
	for {
		req := fake.next(t)
		seen = append(seen, req)
		for _, a := range req.GetAcks() {
			if a.GetJobId() == jobID {
				return seen
			}
		}
	}
}

// updatesOf returns the progress updates for jobID in requests, and the index of the
// request that carried the last of them (-1 without any).
func updatesOf(requests []*jobqueuev1.LeaseRequest, jobID string) ([]*jobqueuev1.ProgressUpdate, int) {
	var updates []*jobqueuev1.ProgressUpdate
	last := -1
	for i, req := range requests {
		for _, u := range req.GetProgress() {
			if u.GetJobId() == jobID {
				updates = append(updates, u)
				last = i
			}
		}
	}
	return updates, last
}

// untilSettled reads the worker's requests until one acks or fails jobID, and returns that
// ack or fail (the other is nil).
func untilSettled(t *testing.T, fake *fakeServer, jobID string) (*jobqueuev1.AckRequest, *jobqueuev1.FailRequest) {
	t.Helper()
	for {
		req := fake.next(t)
		for _, a := range req.GetAcks() {
			if a.GetJobId() == jobID {
				return a, nil
			}
		}
		for _, f := range req.GetFails() {
			if f.GetJobId() == jobID {
				return nil, f
			}
		}
	}
}

func TestAcksAndFailsCarryHowLongTheHandlerRan(t *testing.T) {
	const nap = 50 * time.Millisecond
	const bound = 5 * time.Second // generous: only a broken measure takes this long
	client, fake := startFakeServer(t)
	runFakeWorker(t, client, func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		time.Sleep(nap)
		switch job.ID {
		case "q:fails":
			return nil, errors.New("boom")
		case "q:panics":
			panic("boom")
		}
		return map[string]any{"ok": true}, nil
	})
	check := func(what string, d *durationpb.Duration) {
		t.Helper()
		if d == nil {
			t.Errorf("the %s carries no handler_duration", what)
			return
		}
		if got := d.AsDuration(); got < nap || got >= bound {
			t.Errorf("the %s says the handler ran %v; it slept %v", what, got, nap)
		}
	}

	fake.lease("q:acks", "token-1")
	ack, fail := untilSettled(t, fake, "q:acks")
	if ack == nil {
		t.Fatalf("the job was failed: %v", fail)
	}
	check("ack", ack.GetHandlerDuration())

	for _, id := range []string{"q:fails", "q:panics"} {
		fake.lease(id, "token-"+id)
		ack, fail := untilSettled(t, fake, id)
		if fail == nil {
			t.Fatalf("%s was acked: %v", id, ack)
		}
		check("fail of "+id, fail.GetHandlerDuration())
	}
}

func TestReportsReachTheStreamWithTheLeaseTokenOnTheirOwnAndBeforeTheAck(t *testing.T) {
	client, fake := startFakeServer(t)
	release := make(chan struct{})
	runFakeWorker(t, client, func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		job.Progress(10, "starting")
		job.Log("one")
		job.Progress(50, "halfway")
		job.Log("two")
		select {
		case <-release:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
		job.Log("three") // the handler's last words, sent before its ack
		return map[string]any{"ok": true}, nil
	})
	fake.lease("q:1", "token-1")

	// Nothing else is sent while the handler waits: the reports go out on their own.
	var early []*jobqueuev1.LeaseRequest
	for {
		early = append(early, fake.next(t))
		if updates, _ := updatesOf(early, "q:1"); len(updates) > 0 && updates[len(updates)-1].GetPercent() == 50 {
			break
		}
	}
	close(release)
	requests := append(early, untilAcked(t, fake, "q:1")...)

	updates, last := updatesOf(requests, "q:1")
	var lines []string
	for _, u := range updates {
		if u.GetLeaseToken() != "token-1" {
			t.Errorf("an update went with the token %q", u.GetLeaseToken())
		}
		lines = append(lines, u.GetLogs()...)
	}
	if !slices.Equal(lines, []string{"one", "two", "three"}) {
		t.Errorf("lines sent: %q", lines)
	}
	if last >= len(requests)-1 {
		t.Errorf("the last report went in request %d, the ack in %d: the ack must come after", last, len(requests)-1)
	}
}

func TestMoreThan100LinesReachTheStreamAsUpdatesOfAtMost100InOrder(t *testing.T) {
	client, fake := startFakeServer(t)
	var want []string
	for i := range 250 {
		want = append(want, fmt.Sprint("line ", i))
	}
	runFakeWorker(t, client, func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		for _, line := range want {
			job.Log(line)
		}
		return nil, nil
	})
	fake.lease("q:1", "token-1")

	requests := untilAcked(t, fake, "q:1")

	updates, last := updatesOf(requests, "q:1")
	var lines []string
	for _, u := range updates {
		if len(u.GetLogs()) > 100 {
			t.Errorf("an update carries %d lines", len(u.GetLogs()))
		}
		lines = append(lines, u.GetLogs()...)
	}
	if !slices.Equal(lines, want) {
		t.Errorf("%d lines sent, in this order: %q", len(lines), lines)
	}
	if len(updates) < 3 || last >= len(requests)-1 {
		t.Errorf("%d updates, the last in request %d of %d", len(updates), last, len(requests))
	}
}

func TestAStopCancelsTheHandlerWithItsCauseAndSettlesNothingForTheJob(t *testing.T) {
	for _, c := range []struct {
		reason jobqueuev1.StopReason
		cause  error
	}{
		{jobqueuev1.StopReason_STOP_REASON_CANCELLED, jobqueue.ErrJobCancelled},
		{jobqueuev1.StopReason_STOP_REASON_TIMED_OUT, jobqueue.ErrJobTimedOut},
	} {
		t.Run(c.reason.String(), func(t *testing.T) {
			client, fake := startFakeServer(t)
			started := make(chan struct{})
			cause := make(chan error, 1)
			runFakeWorker(t, client, func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
				if job.ID != "q:1" {
					return map[string]any{"next": true}, nil
				}
				close(started)
				<-ctx.Done()
				cause <- context.Cause(ctx)
				job.Log("after the stop") // dropped
				return map[string]any{"too": "late"}, nil
			})
			fake.lease("q:1", "token-1")
			awaitValue(t, started, "the handler to start")

			fake.responses <- &jobqueuev1.LeaseResponse{Stops: []*jobqueuev1.JobStop{
				{JobId: "q:1", LeaseToken: "token-1", Reason: c.reason},
			}}

			if err := awaitValue(t, cause, "the handler's cancellation"); err != c.cause {
				t.Errorf("cause = %v, want %v", err, c.cause)
			}
			// The window of one is free again once the handler returned: the next job runs.
			fake.lease("q:2", "token-2")
			for _, req := range untilAcked(t, fake, "q:2") {
				for _, a := range req.GetAcks() {
					if a.GetJobId() == "q:1" {
						t.Errorf("the stopped job was acked: %v", a)
					}
				}
				if len(req.GetFails()) > 0 || len(req.GetExtends()) > 0 {
					t.Errorf("a fail or extend was sent: %v", req)
				}
				if updates, _ := updatesOf([]*jobqueuev1.LeaseRequest{req}, "q:1"); len(updates) > 0 {
					t.Errorf("a report after the stop was sent: %v", updates)
				}
			}
		})
	}
}

func TestAStopForAnotherLeaseOfTheJobChangesNothing(t *testing.T) {
	client, fake := startFakeServer(t)
	release := make(chan struct{})
	cause := make(chan error, 1)
	runFakeWorker(t, client, func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		select {
		case <-release:
			return map[string]any{"done": true}, nil
		case <-ctx.Done():
			cause <- context.Cause(ctx)
			return nil, context.Cause(ctx)
		}
	})
	fake.lease("q:1", "token-1")

	fake.responses <- &jobqueuev1.LeaseResponse{Stops: []*jobqueuev1.JobStop{
		{JobId: "q:1", LeaseToken: "an-old-token", Reason: jobqueuev1.StopReason_STOP_REASON_CANCELLED},
	}}
	close(release)

	untilAcked(t, fake, "q:1")
	select {
	case err := <-cause:
		t.Errorf("the handler was cancelled: %v", err)
	default:
	}
}

func TestWaitPollsGetStatusOnAServerWithoutWatchJob(t *testing.T) {
	client, fake := startFakeServer(t)
	fake.statuses = []*jobqueuev1.Job{
		{Id: "q:1", State: jobqueuev1.JobState_JOB_STATE_QUEUED},
		{Id: "q:1", State: jobqueuev1.JobState_JOB_STATE_ACTIVE},
		{Id: "q:1", State: jobqueuev1.JobState_JOB_STATE_COMPLETED},
	}

	job, err := client.Wait(testContext(t), "q:1")

	if err != nil || job.State != jobqueue.StateCompleted {
		t.Fatalf("job %+v, err %v", job, err)
	}
	if fake.count("WatchJob") != 1 || fake.count("GetStatus") != 3 {
		t.Errorf("calls: %v", fake.calls)
	}
}

func TestWaitReturnsTheFinishedJobTheWatchEndsWith(t *testing.T) {
	client, fake := startFakeServer(t)
	fake.watch = []*jobqueuev1.Job{
		{Id: "q:1", State: jobqueuev1.JobState_JOB_STATE_QUEUED},
		{Id: "q:1", State: jobqueuev1.JobState_JOB_STATE_ACTIVE, Progress: &jobqueuev1.JobProgress{Percent: 50}},
		{Id: "q:1", State: jobqueuev1.JobState_JOB_STATE_DEAD, LastError: "boom"},
	}

	job, err := client.Wait(testContext(t), "q:1")

	if err != nil || job.State != jobqueue.StateDead || job.LastError != "boom" {
		t.Fatalf("job %+v, err %v", job, err)
	}
	if fake.count("GetStatus") != 0 {
		t.Errorf("Wait polled too: %v", fake.calls)
	}
}

func TestWatchJobOnAServerWithoutItYieldsUnimplementedOnce(t *testing.T) {
	client, _ := startFakeServer(t)

	var errs []error
	for job, err := range client.WatchJob(testContext(t), "q:1") {
		if job != nil {
			t.Errorf("yielded %+v", job)
		}
		errs = append(errs, err)
	}

	var e *jobqueue.Error
	if len(errs) != 1 || !errors.As(errs[0], &e) || e.Code != codes.Unimplemented {
		t.Errorf("errors = %v", errs)
	}
}
