package jobqueue

import (
	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// Durability says when the server answers a write (see docs/durability.md). The zero value
// leaves it to the server's default (DurabilityApplied unless the operator chose
// otherwise).
type Durability string

// The durability levels.
const (
	// DurabilityApplied: the server answers once Redis has applied the write. It survives a
	// crash of the server or of Redis; a power loss can lose about the last second.
	DurabilityApplied Durability = "APPLIED"
	// DurabilityFsynced: the server answers only once Redis confirms the write is fsynced to
	// its append-only file, so it survives a power loss too. It costs a disk flush per
	// call, and fails with ErrDurabilityUnavailable when Redis cannot confirm (no AOF).
	DurabilityFsynced Durability = "FSYNCED"
	// DurabilityReplicated: the server answers only once the write reached the Redis
	// primary's replicas (WAIT), so it survives the loss of the primary and a failover. It
	// fails with ErrDurabilityUnavailable when the primary has too few replicas (nothing was
	// written), and with ErrReplicationNotConfirmed when they did not confirm in time.
	DurabilityReplicated Durability = "REPLICATED"
)

var durabilityToProto = map[Durability]jobqueuev1.Durability{
	"":                   jobqueuev1.Durability_DURABILITY_UNSPECIFIED,
	DurabilityApplied:    jobqueuev1.Durability_DURABILITY_APPLIED,
	DurabilityFsynced:    jobqueuev1.Durability_DURABILITY_FSYNCED,
	DurabilityReplicated: jobqueuev1.Durability_DURABILITY_REPLICATED,
}

// toProto converts d, refusing an unknown level as INVALID_ARGUMENT on field.
func (d Durability) toProto(field string) (jobqueuev1.Durability, error) {
	p, ok := durabilityToProto[d]
	if !ok {
		return 0, invalidArgument(field, "is not a known durability: use DurabilityApplied, DurabilityFsynced or DurabilityReplicated")
	}
	return p, nil
}

// DurabilityOption is both an EnqueueOption and a BatchOption; see WithDurability.
type DurabilityOption Durability

// WithDurability sets when the server answers. Given to Enqueue, or to one job of a batch,
// it is that job's level; given to EnqueueBatch, the batch's. A batch is answered at the
// strictest level set on it or on any of its jobs.
func WithDurability(d Durability) DurabilityOption { return DurabilityOption(d) }

func (d DurabilityOption) applyEnqueue(s *enqueueSettings) { s.durability = Durability(d) }

func (d DurabilityOption) applyBatch(s *batchSettings) { s.durability = Durability(d) }

// WithAckDurability sets the level of every ack the worker sends (default: the server's).
// With DurabilityFsynced an ack is confirmed only once the completion is on Redis's disk,
// with DurabilityReplicated only once it reached Redis's replicas.
// When Redis cannot confirm that level (ErrDurabilityUnavailable), nothing was written: the
// worker fails the attempt instead, so the job is retried after its backoff with the reason
// in its error history.
func WithAckDurability(d Durability) WorkerOption {
	return workerOptionFunc(func(s *workerSettings) { s.ackDurability = d })
}
