package jobqueue

import "time"

// Batching gathers concurrent Enqueue calls into batches (docs/clients.md, "Producer
// batching"), sent as messages on an EnqueueStream: one stream per durability level in use,
// opened by the first batch and again after it breaks. A call is sent at once when no batch
// of its level is in flight, so a lone call waits for nothing; otherwise it joins the next
// batch, which goes out when no batch is in flight any more, when it is full, or when its
// first job has waited Linger beside the batches in flight, whichever comes first.
//
// On the stream a batch is full at 32 jobs (MaxJobs if fewer) or MaxBytes bytes, and a full
// batch goes at once while fewer than 64 of its level are unanswered (the server reads 64
// ahead of its answers): a message costs the server a fraction of a call, so it works on one
// while the next gathers. A server without EnqueueStream (UNIMPLEMENTED, an older server) is
// remembered, and batches then go as EnqueueBatch calls: full at MaxJobs jobs, two in flight.
// Zero fields take the defaults.
type Batching struct {
	// MaxJobs is the most jobs per batch (default DefaultBatchMaxJobs); on the stream a
	// batch holds at most 32 whatever MaxJobs says. Keep it at or below the server's
	// max_batch.
	MaxJobs int
	// MaxBytes is the most bytes of encoded requests per batch (default
	// DefaultBatchMaxBytes, the server's message limit). A job larger than that goes alone,
	// as a unary Enqueue: a message the server cannot take would end the stream, failing
	// every batch unanswered on it.
	MaxBytes int
	// Linger is how long a batch that is not full waits for the batches in flight to be
	// answered before it goes out beside them (default DefaultBatchLinger).
	Linger time.Duration
}

// The batching defaults.
const (
	DefaultBatchMaxJobs  = MaxBatch
	DefaultBatchMaxBytes = 4 << 20
	// As Kafka's producer since 4.0: longer than a loaded call's round trip, so under load a
	// batch that is not full waits for an answer and gathers meanwhile, rather than going out
	// small (fewer, bigger messages cost the client and the server less per job:
	// docs/performance.md).
	DefaultBatchLinger = 5 * time.Millisecond
)

// On the stream a batch is full at streamBatchJobs jobs, and up to streamBatchesInFlight of
// a level's batches are unanswered: the server's read-ahead on a stream, beyond which flow
// control would hold the sender anyway. It also bounds the goroutines that send batches
// (one per batch in flight). Measured with the Python client and 64 concurrent callers,
// 32-job messages made 1.4-1.6x the jobs/s of one EnqueueBatch call at a time.
const (
	streamBatchJobs       = 32
	streamBatchesInFlight = 64
)

// maxCallsInFlight bounds a level's EnqueueBatch calls at once, for a server without the
// stream: the second only for a batch that has waited Linger (a slow call must not hold up
// every caller), or a full one. Batches that are ready beyond it wait for a slot, gathering
// no more jobs, so a burst of callers costs memory for their jobs, not goroutines or
// connections' streams.
const maxCallsInFlight = 2

// withDefaults fills the zero (or negative) fields.
func (b Batching) withDefaults() Batching {
	if b.MaxJobs <= 0 {
		b.MaxJobs = DefaultBatchMaxJobs
	}
	if b.MaxBytes <= 0 {
		b.MaxBytes = DefaultBatchMaxBytes
	}
	if b.Linger <= 0 {
		b.Linger = DefaultBatchLinger
	}
	return b
}

// WithBatching sets how Enqueue gathers concurrent calls into batches. Batching is on by
// default with the defaults above; this option changes them.
func WithBatching(b Batching) Option {
	return func(s *dialSettings) {
		s.batching = b.withDefaults()
		s.noBatching = false
	}
}

// WithoutBatching makes every Enqueue its own Enqueue call.
func WithoutBatching() Option {
	return func(s *dialSettings) { s.noBatching = true }
}
