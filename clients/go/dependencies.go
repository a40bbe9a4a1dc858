package jobqueue

import (
	"fmt"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// DependencyFailurePolicy says what becomes of a WAITING job when a job it depends on
// (WithDependsOn, WithDependsOnRefs) ends DEAD or CANCELLED instead of COMPLETED. The zero
// value leaves it to the server's default, DependencyFailureCancel.
type DependencyFailurePolicy string

// The dependency failure policies.
const (
	// DependencyFailureCancel: the job ends CANCELLED, with the error "dependency <job id>
	// ended <STATE>"; the jobs that depend on it then follow their own policies. The default.
	DependencyFailureCancel DependencyFailurePolicy = "CANCEL"
	// DependencyFailureDeadLetter: the job ends DEAD with the same error, in the dead-letter
	// set, where Retry can redrive it.
	DependencyFailureDeadLetter DependencyFailurePolicy = "DEAD_LETTER"
	// DependencyFailureRunAnyway: the failed dependency counts as done, so the job runs once
	// every job it depends on has ended, however it ended.
	DependencyFailureRunAnyway DependencyFailurePolicy = "RUN_ANYWAY"
)

var dependencyFailureToProto = map[DependencyFailurePolicy]jobqueuev1.DependencyFailurePolicy{
	"":                          jobqueuev1.DependencyFailurePolicy_DEPENDENCY_FAILURE_POLICY_UNSPECIFIED,
	DependencyFailureCancel:     jobqueuev1.DependencyFailurePolicy_DEPENDENCY_FAILURE_POLICY_CANCEL,
	DependencyFailureDeadLetter: jobqueuev1.DependencyFailurePolicy_DEPENDENCY_FAILURE_POLICY_DEAD_LETTER,
	DependencyFailureRunAnyway:  jobqueuev1.DependencyFailurePolicy_DEPENDENCY_FAILURE_POLICY_RUN_ANYWAY,
}

// toProto converts p, refusing an unknown policy as INVALID_ARGUMENT on field.
func (p DependencyFailurePolicy) toProto(field string) (jobqueuev1.DependencyFailurePolicy, error) {
	v, ok := dependencyFailureToProto[p]
	if !ok {
		return 0, invalidArgument(field, "is not a known dependency failure policy: use DependencyFailureCancel, DependencyFailureDeadLetter or DependencyFailureRunAnyway")
	}
	return v, nil
}

// dependencyFailureFromProto reads a job's policy: "" when it was not given (the default,
// DependencyFailureCancel), or is one this package does not know.
func dependencyFailureFromProto(p jobqueuev1.DependencyFailurePolicy) DependencyFailurePolicy {
	for k, v := range dependencyFailureToProto {
		if v == p {
			return k
		}
	}
	return ""
}

// WithDependsOn makes the job wait for other jobs (their ids, in any queue; at most 1,000 in
// all): it stays WAITING until every one of them is COMPLETED, then becomes QUEUED (or
// SCHEDULED, while a delay given with WithDelay or WithRunAt has not run yet). A job that
// depends only on jobs already completed is queued at once. When one of them ends DEAD or
// CANCELLED, WithOnDependencyFailure says what becomes of the job. An unknown id is
// ErrNotFound, a malformed one ErrInvalidArgument, both naming the field
// ("depends_on[1]"). Several WithDependsOn options add up. Job.DependsOn reads them back;
// a handler reads its parents' results with GetStatus on each.
func WithDependsOn(jobIDs ...string) EnqueueOption {
	return enqueueOptionFunc(func(s *enqueueSettings) { s.dependsOn = append(s.dependsOn, jobIDs...) })
}

// WithOnDependencyFailure sets what becomes of the job when a job it depends on ends DEAD or
// CANCELLED (default DependencyFailureCancel). Job.OnDependencyFailure reads it back.
func WithOnDependencyFailure(p DependencyFailurePolicy) EnqueueOption {
	return enqueueOptionFunc(func(s *enqueueSettings) { s.onDependencyFailure = p })
}

// WithRef names a job of an EnqueueBatch call (1 to 128 characters, unique in the call), so
// that other jobs of the same call can depend on it with WithDependsOnRefs, before any of
// them has an id. It means nothing outside EnqueueBatch: Enqueue refuses it
// (ErrInvalidArgument naming "ref").
func WithRef(ref string) EnqueueOption {
	return enqueueOptionFunc(func(s *enqueueSettings) { s.ref = ref })
}

// WithDependsOnRefs makes a job of an EnqueueBatch call depend on other jobs of the same
// call, named by their WithRef, in addition to those of WithDependsOn: the server resolves
// the refs to ids (Job.DependsOn holds the ids). An unknown or duplicate ref, or refs that
// form a cycle, refuse the whole call (ErrInvalidArgument naming the field:
// "requests[i].depends_on_refs[j]" for an unknown ref, "requests[i].ref" for a duplicate,
// "requests[i].depends_on_refs" for a cycle) and nothing of it is written. A batch that
// uses refs is sent as one call, so it must hold at most MaxBatch jobs. Enqueue refuses it
// (ErrInvalidArgument naming "depends_on_refs"). Several WithDependsOnRefs options add up.
func WithDependsOnRefs(refs ...string) EnqueueOption {
	return enqueueOptionFunc(func(s *enqueueSettings) { s.dependsOnRefs = append(s.dependsOnRefs, refs...) })
}

// refusedRefs refuses, as a unary Enqueue would, a single job that uses batch-local refs:
// with batching on it would share a message with other callers' jobs, whose refs it
// could otherwise meet.
func refusedRefs(req *jobqueuev1.EnqueueRequest) error {
	if req.GetRef() != "" {
		return invalidArgument("ref", "is only allowed inside EnqueueBatch")
	}
	if len(req.GetDependsOnRefs()) > 0 {
		return invalidArgument("depends_on_refs", "is only allowed inside EnqueueBatch (outside it, depend on job ids with WithDependsOn)")
	}
	return nil
}

// usesRefs reports whether any of requests has a ref or depends on refs.
func usesRefs(requests []*jobqueuev1.EnqueueRequest) bool {
	for _, r := range requests {
		if r.GetRef() != "" || len(r.GetDependsOnRefs()) > 0 {
			return true
		}
	}
	return false
}

// refusedRefBatch refuses, before anything is sent, a batch that uses refs and would need
// more than one call: the server resolves refs within one request only.
func refusedRefBatch(requests []*jobqueuev1.EnqueueRequest) error {
	if len(requests) <= MaxBatch || !usesRefs(requests) {
		return nil
	}
	return invalidArgument("requests", fmt.Sprintf(
		"a batch that uses refs (WithRef, WithDependsOnRefs) must fit in one EnqueueBatch call, at most MaxBatch (%d) jobs, since refs resolve within one call; this one has %d jobs, and nothing was sent (split it into calls whose refs stay within each, and depend on the jobs of earlier calls by id with WithDependsOn)",
		MaxBatch, len(requests)))
}
