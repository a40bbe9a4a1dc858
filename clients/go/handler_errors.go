package jobqueue

import (
	"errors"
	"time"
)

// NonRetryableError marks a handler failure as permanent: the job goes to DEAD at once,
// whatever attempts it has left. Build one with NonRetryable; detect one with errors.As.
type NonRetryableError struct {
	Err error
}

// Error implements error.
func (e *NonRetryableError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *NonRetryableError) Unwrap() error { return e.Err }

// NonRetryable wraps err so that the worker fails the job non-retryably (it goes to
// DEAD). NonRetryable(nil) is nil.
func NonRetryable(err error) error {
	if err == nil {
		return nil
	}
	return &NonRetryableError{Err: err}
}

// IsNonRetryable reports whether err (or an error it wraps) was marked with NonRetryable.
func IsNonRetryable(err error) bool {
	var nr *NonRetryableError
	return errors.As(err, &nr)
}

// RetryAfterError asks for the next attempt after Delay instead of the job's backoff
// policy (useful for rate-limited APIs that say when to come back). Build one with
// RetryAfter.
type RetryAfterError struct {
	Err   error
	Delay time.Duration
}

// Error implements error.
func (e *RetryAfterError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter wraps err so that the worker fails the job retryably with the next attempt
// due after delay (if the job has attempts left). RetryAfter(nil, d) is nil.
func RetryAfter(err error, delay time.Duration) error {
	if err == nil {
		return nil
	}
	return &RetryAfterError{Err: err, Delay: delay}
}
