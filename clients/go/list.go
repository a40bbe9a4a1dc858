package jobqueue

import (
	"context"
	"iter"
	"math"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// ListOption configures ListJobs.
type ListOption func(*listSettings)

type listSettings struct {
	pageSize      int
	createdAfter  time.Time
	createdBefore time.Time
	metadata      map[string]string
}

// WithPageSize sets how many jobs ListJobs fetches per call: 1 to 1,000 (default 100, the
// server's). A page may hold fewer, to keep a response under 4 MiB.
func WithPageSize(n int) ListOption {
	return func(s *listSettings) { s.pageSize = n }
}

// WithCreatedAfter lists only the jobs enqueued at or after t (Job.CreateTime, by the
// server's clock, to the millisecond). The zero time sets no lower bound.
func WithCreatedAfter(t time.Time) ListOption {
	return func(s *listSettings) { s.createdAfter = t }
}

// WithCreatedBefore lists only the jobs enqueued before t (Job.CreateTime, by the server's
// clock, to the millisecond); with WithCreatedAfter, t must be later than its time. The zero
// time sets no upper bound.
func WithCreatedBefore(t time.Time) ListOption {
	return func(s *listSettings) { s.createdBefore = t }
}

// WithMetadataFilter lists only the jobs whose metadata (WithMetadata) holds key with this
// value. Several WithMetadataFilter options add pairs, all of which must match (at most 16;
// a later one with the same key replaces the earlier).
func WithMetadataFilter(key, value string) ListOption {
	return func(s *listSettings) {
		if s.metadata == nil {
			s.metadata = map[string]string{}
		}
		s.metadata[key] = value
	}
}

// ListJobs iterates over every job of queue in state, fetched a page at a time: queued
// jobs in the order they will be leased (those of a group, WithGroupKey, after the others,
// group by group), scheduled ones by due time, active ones by lease deadline, and completed,
// dead or cancelled ones newest first. Pages are by position, so jobs
// that change state meanwhile may be skipped or seen twice. WithCreatedAfter,
// WithCreatedBefore and WithMetadataFilter keep only the matching jobs, filtered by the
// server: each call then examines at most 5,000 jobs, so a sparse match may take several
// calls per job yielded (an empty page just leads to the next). On an error it yields
// (nil, err) once and stops; stop early by breaking out of the loop:
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
			// A filtered page may be empty and still have a token: the server stopped after
			// examining its share of jobs. Follow it, unless it is the token just sent (a
			// page that made no progress would repeat forever).
			next := page.GetNextPageToken()
			if next == "" || (len(page.GetJobs()) == 0 && next == req.PageToken) {
				return
			}
			req.PageToken = next
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
	req := &jobqueuev1.ListJobsRequest{Queue: queue, State: p, PageSize: int32(s.pageSize), Metadata: s.metadata}
	if !s.createdAfter.IsZero() {
		req.CreatedAfter = timestamppb.New(s.createdAfter)
	}
	if !s.createdBefore.IsZero() {
		req.CreatedBefore = timestamppb.New(s.createdBefore)
	}
	return req, nil
}
