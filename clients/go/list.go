package jobqueue

import (
	"context"
	"iter"
	"math"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// ListOption configures ListJobs.
type ListOption func(*listSettings)

type listSettings struct {
	pageSize int
}

// WithPageSize sets how many jobs ListJobs fetches per call: 1 to 1,000 (default 100, the
// server's). A page may hold fewer, to keep a response under 4 MiB.
func WithPageSize(n int) ListOption {
	return func(s *listSettings) { s.pageSize = n }
}

// ListJobs iterates over every job of queue in state, fetched a page at a time: queued
// jobs in the order they will be leased (those of a group, WithGroupKey, after the others,
// group by group), scheduled ones by due time, active ones by lease deadline, and completed,
// dead or cancelled ones newest first. Pages are by position, so jobs
// that change state meanwhile may be skipped or seen twice. On an error it yields (nil, err)
// once and stops; stop early by breaking out of the loop:
//
//	for job, err := range client.ListJobs(ctx, "email", jobqueue.StateDead) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(job.ID, job.LastError)
//	}
func (c *Client) ListJobs(ctx context.Context, queue string, state JobState, opts ...ListOption) iter.Seq2[*Job, error] {
	return func(yield func(*Job, error) bool) {
		req, err := listRequest(queue, state, opts)
		if err != nil {
			yield(nil, err)
			return
		}
		for {
			page, err := c.stub.ListJobs(ctx, req)
			if err != nil {
				yield(nil, wrapError(err))
				return
			}
			for _, p := range page.GetJobs() {
				if !yield(jobFromProto(p), nil) {
					return
				}
			}
			// An empty page cannot make progress: stop rather than loop on its token.
			if page.GetNextPageToken() == "" || len(page.GetJobs()) == 0 {
				return
			}
			req.PageToken = page.GetNextPageToken()
		}
	}
}

func listRequest(queue string, state JobState, opts []ListOption) (*jobqueuev1.ListJobsRequest, error) {
	var s listSettings
	for _, opt := range opts {
		opt(&s)
	}
	p, ok := stateToProto[state]
	if !ok {
		return nil, invalidArgument("state", "is not a known job state")
	}
	if s.pageSize < 0 || s.pageSize > math.MaxInt32 {
		return nil, invalidArgument("page_size", "must be 1 to 1,000, or 0 for the default")
	}
	return &jobqueuev1.ListJobsRequest{Queue: queue, State: p, PageSize: int32(s.pageSize)}, nil
}
