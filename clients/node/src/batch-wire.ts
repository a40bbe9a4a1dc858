/**
 * The wire side of a gathered batch: its EnqueueBatchRequest or EnqueueStreamRequest built
 * from requests encoded once each, and the job a refusal blames.
 */

import { InvalidArgumentError, NotFoundError, type JobQueueErrorOptions } from "./errors.js";

/** EnqueueBatchRequest field 1 (`requests`) with wire type 2 (length-delimited). */
const REQUESTS_TAG = (1 << 3) | 2;
/** EnqueueStreamRequest field 1 (`sequence`, a varint) and field 2 (`requests`, length-delimited). */
const SEQUENCE_TAG = (1 << 3) | 0;
const STREAM_REQUESTS_TAG = (2 << 3) | 2;
/** A job's index as the server writes it; nine digits bound the number parsed. */
const IN_BATCH = /^requests\[(\d{1,9})\](\.|$)/;

function varintSize(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    size += 1;
  }
  return size;
}

/** The bytes one encoded EnqueueRequest takes inside an EnqueueBatchRequest. */
export function framedSize(request: Uint8Array): number {
  return 1 + varintSize(request.length) + request.length;
}

/**
 * An EnqueueBatchRequest holding `requests` (each an encoded EnqueueRequest) and no batch
 * level: each request carries its own durability. Each job is encoded once, when it is
 * enqueued, which also gives its exact size for the `maxBytes` bound.
 */
export function frameBatch(requests: readonly Uint8Array[]): Buffer {
  return frame(requests, REQUESTS_TAG, 0, undefined);
}

/**
 * An EnqueueStreamRequest: `sequence` and `requests`, as `frameBatch` frames them; no
 * `durability`, since each request carries its own. Both tags are one byte, so `framedSize`
 * holds for its requests too.
 */
export function frameStreamRequest(sequence: number, requests: readonly Uint8Array[]): Buffer {
  return frame(requests, STREAM_REQUESTS_TAG, 1 + varintSize(sequence), sequence);
}

function frame(requests: readonly Uint8Array[], tag: number, header: number, sequence: number | undefined): Buffer {
  let size = header;
  for (const request of requests) size += framedSize(request);
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  if (sequence !== undefined) {
    out[at++] = SEQUENCE_TAG;
    at = writeVarint(out, at, sequence);
  }
  for (const request of requests) {
    out[at++] = tag;
    at = writeVarint(out, at, request.length);
    out.set(request, at);
    at += request.length;
  }
  return out;
}

/** Writes `value` (a non-negative safe integer) as a varint at `at`; the offset after it. */
function writeVarint(out: Buffer, at: number, value: number): number {
  // Division, not shifts: JavaScript's bit operators stop at 32 bits.
  while (value >= 0x80) {
    out[at++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  out[at++] = value;
  return at;
}

/** The refusals that can name one job of a batch. */
export type JobRefusal = InvalidArgumentError | NotFoundError;

/** A refusal that names one job of a batch, with the error as that job's own enqueue would get it. */
export interface Blame {
  index: number;
  error: JobRefusal;
}

/**
 * The job of a batch of `count` that `error` names (INVALID_ARGUMENT on `requests[i]...`, or
 * NOT_FOUND on a job it depends on, `requests[i].depends_on[j]`), with the field and message
 * renamed as for a single enqueue (`requests[3].queue` becomes `queue`), of the same class;
 * undefined when the refusal is the whole batch's.
 */
export function blame(error: unknown, count: number): Blame | undefined {
  if (!isJobRefusal(error) || error.field === undefined) return undefined;
  const match = IN_BATCH.exec(error.field);
  if (match === null) return undefined;
  const index = Number(match[1]);
  if (index >= count) return undefined; // a hostile or confused server: not ours to pin on anyone
  const prefix = match[0];
  const field = error.field.slice(prefix.length);
  // NOT_FOUND names one job only when it is about a job that job depends on.
  if (error instanceof NotFoundError && !field.startsWith("depends_on[")) return undefined;
  const message = field !== "" && error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
  const options = { code: error.code, reason: error.reason, cause: error.cause };
  return { index, error: sameKind(error, message, field === "" ? options : { ...options, field }) };
}

/** Whether `error` is a refusal that can name one job of a batch. */
export function isJobRefusal(error: unknown): error is JobRefusal {
  return error instanceof InvalidArgumentError || error instanceof NotFoundError;
}

/** A refusal of the same class as `error` (NotFoundError stays one) with another message and options. */
export function sameKind(error: JobRefusal, message: string, options: JobQueueErrorOptions): JobRefusal {
  const Refusal = error.constructor as new (message: string, options: JobQueueErrorOptions) => JobRefusal;
  return new Refusal(message, options);
}
