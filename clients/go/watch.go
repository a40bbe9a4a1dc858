package jobqueue

import (
	"context"
	"errors"
	"io"
	"iter"
	"time"

	"google.golang.org/grpc/codes"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// WatchJob iterates over the job as the server records it: the job as it is now, then again
// at each change of its state or of its progress (LeasedJob.Progress), ending after the job
// in COMPLETED, DEAD or CANCELLED. It holds one WatchJob stream open while the loop runs;
// breaking out of the loop closes it. On an error (ErrNotFound for an unknown id,
// ErrUnavailable when the connection drops, the context's error, an *Error with Code
// codes.Unimplemented from a server without WatchJob) it yields (nil, err) once and stops:
//
//	for job, err := range client.WatchJob(ctx, id) {
//		if err != nil {
//			return err
//		}
//		if job.Progress != nil {
//			fmt.Printf("%s %.0f%% %s\n", job.State, job.Progress.Percent, job.Progress.Message)
//		}
//	}
func (c *Client) WatchJob(ctx context.Context, jobID string) iter.Seq2[*Job, error] {
	return func(yield func(*Job, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel() // ends the stream when the loop breaks early
		stream, err := c.stub.WatchJob(ctx, &jobqueuev1.WatchJobRequest{JobId: jobID})
		if err != nil {
			yield(nil, wrapError(err))
			return
		}
		for {
			resp, err := stream.Recv()
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(nil, wrapError(err))
				return
			}
			job := jobFromProto(resp.GetJob())
			if !yield(job, nil) || job.State.Terminal() {
				return
			}
		}
	}
}

// Wait returns the job once it is COMPLETED, DEAD or CANCELLED. It watches the job
// (WatchJob), so it returns as soon as the server records the end. On a server without
// WatchJob (an older one answers UNIMPLEMENTED) it polls GetStatus instead, every 10 ms at
// first, growing to 500 ms, so short jobs are seen at once and long ones cost two calls a
// second. ErrUnavailable is waited out (the watch is opened again after a pause that grows
// the same way); bound the wait with ctx.
func (c *Client) Wait(ctx context.Context, jobID string) (*Job, error) {
	pause := newPollInterval()
	for {
		job, err := c.watchUntilFinished(ctx, jobID)
		switch {
		case err == nil && job != nil:
			return job, nil
		case unimplemented(err):
			return c.pollUntilFinished(ctx, jobID)
		case err != nil && (!errors.Is(err, ErrUnavailable) || ctx.Err() != nil):
			return nil, err
		}
		// The watch broke, or ended without a finished job: watch again in a moment.
		if err := sleep(ctx, pause.next()); err != nil {
			return nil, err
		}
	}
}

// watchUntilFinished returns the finished job from one watch; (nil, nil) when the stream
// ended without one.
func (c *Client) watchUntilFinished(ctx context.Context, jobID string) (*Job, error) {
	for job, err := range c.WatchJob(ctx, jobID) {
		if err != nil {
			return nil, err
		}
		if job.State.Terminal() {
			return job, nil
		}
	}
	return nil, nil
}

// pollUntilFinished is Wait for a server without WatchJob: it polls GetStatus until the job
// is finished.
func (c *Client) pollUntilFinished(ctx context.Context, jobID string) (*Job, error) {
	poll := newPollInterval()
	for {
		job, err := c.GetStatus(ctx, jobID)
		switch {
		case err == nil && job.State.Terminal():
			return job, nil
		case err != nil && (!errors.Is(err, ErrUnavailable) || ctx.Err() != nil):
			return nil, err
		}
		if err := sleep(ctx, poll.next()); err != nil {
			return nil, err
		}
	}
}

// unimplemented reports an UNIMPLEMENTED answer: the server does not have the method.
func unimplemented(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == codes.Unimplemented
}

// sleep waits for d, or returns ctx's error if it ends first.
func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
