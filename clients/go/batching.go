package jobqueue

import "time"

// Batching gathers concurrent Enqueue calls into EnqueueBatch calls (docs/clients.md,
// "Producer batching"). A call is sent at once when no batch is in flight, so a lone call
// waits for nothing; otherwise it joins the next batch, which goes out when no batch is in
// flight any more, when it holds MaxJobs jobs or MaxBytes bytes, or when its first job has
// waited Linger (then as a second batch in flight), whichever comes first. Zero fields take
// the defaults.
type Batching struct {
	// MaxJobs is the most jobs per batch (default DefaultBatchMaxJobs). Keep it at or
	// below the server's max_batch.
	MaxJobs int
	// MaxBytes is the most bytes of encoded requests per batch (default
	// DefaultBatchMaxBytes, the server's message limit). A job larger than that goes alone.
	MaxBytes int
	// Linger is how long a batch waits for the one in flight to be answered before it goes
	// out beside it (default DefaultBatchLinger).
	Linger time.Duration
}

// The batching defaults.
const (
	DefaultBatchMaxJobs  = MaxBatch
	DefaultBatchMaxBytes = 4 << 20
	// As Kafka's producer since 4.0: longer than a loaded call's round trip, so under load
	// one batch is in flight at a time, each as big as a round trip gathers (fewer, bigger
	// calls cost the client and the server less per job: docs/performance.md).
	DefaultBatchLinger = 5 * time.Millisecond
)

// maxBatchesInFlight bounds the goroutines that send batches (one per batch in flight).
// Batches that are ready beyond it wait for a slot, still gathering no more jobs, so a
// burst of callers costs memory for their jobs, not goroutines or connections' streams.
const maxBatchesInFlight = 2

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
