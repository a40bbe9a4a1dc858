package dev.jobqueue.examples.worker;

import com.google.protobuf.Struct;
import dev.jobqueue.v1.Job;

/**
 * Runs one job. Returning acks the job with the result (null for none); throwing fails the
 * attempt, for good when the exception is a {@link NonRetryableException}. The worker
 * interrupts the thread when the job's lease is lost or the worker stops hard: the result
 * would be refused, so a handler should give up on interruption.
 */
@FunctionalInterface
public interface Handler {
  Struct handle(Job job) throws Exception;
}
