/**
 * What a worker does when the server refuses one of its acks or fails on the Lease stream,
 * as the contract's ErrorReason comments say. Kept apart from the stream so that each
 * reason's handling can be read (and tested) in one place.
 */

import {
  DurabilityUnavailableError,
  FsyncNotConfirmedError,
  InvalidArgumentError,
  ReplicationNotConfirmedError,
  UnavailableError,
  type JobQueueError,
} from "./errors.js";

/**
 * - `settled`: the write stands, only its fsync or its replication went unconfirmed
 *   (FSYNC_NOT_CONFIRMED, REPLICATION_NOT_CONFIRMED). A resend could not change that: it
 *   would meet LEASE_LOST, or DURABILITY_UNAVAILABLE once Redis stopped fsyncing (or lost
 *   its replicas). The job may come back if Redis loses power (or fails over).
 * - `resend`: the job is still held by this stream; send the same ack or fail again.
 * - `fail`: this ack can never succeed as sent, and the job is still held: fail the attempt
 *   instead, with `message`, so that the job does not wait for its lease to run out.
 * - `drop`: the lease is gone (LEASE_LOST, JOB_NOT_FOUND) or the entry is refused for good.
 */
export type Refusal =
  | { action: "settled" }
  | { action: "resend" }
  | { action: "fail"; nonRetryable: boolean; message: string }
  | { action: "drop" };

export function refusal(kind: "ack" | "fail", error: JobQueueError): Refusal {
  if (error instanceof FsyncNotConfirmedError || error instanceof ReplicationNotConfirmedError) return { action: "settled" };
  // STORE_UNAVAILABLE and codes without ErrorInfo (a deadline): nothing is known to have changed.
  if (error instanceof UnavailableError) return { action: "resend" };
  if (kind !== "ack") return { action: "drop" };
  if (error instanceof DurabilityUnavailableError) {
    // Nothing was written. Acking at "applied" instead would quietly weaken what the
    // caller asked for; a retryable fail keeps the job (and the reason, in its history)
    // until the operator can offer "fsynced" (or "replicated") again.
    return { action: "fail", nonRetryable: false, message: `the server cannot confirm acks on disk: ${error.message}` };
  }
  if (error instanceof InvalidArgumentError) {
    // The same ack cannot succeed (a result over the size limit, ...): fail for good.
    return { action: "fail", nonRetryable: true, message: `the server refused the handler's result: ${error.message}` };
  }
  return { action: "drop" };
}
