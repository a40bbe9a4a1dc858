/**
 * Where the batcher's batches go: on the client's EnqueueStream for their durability level, or
 * as EnqueueBatch calls to a server that has no EnqueueStream (older than it). The batcher asks `streaming` for the
 * numbers of its rule: stream messages are smaller and more of them may be unanswered.
 */

import { frameBatch } from "./batch-wire.js";
import { StreamUnsupportedError, type EnqueueStream } from "./enqueue-stream.js";
import type { EnqueueBatchResponse, EnqueueResponse } from "./gen/jobqueue/v1/job_queue_service.js";

export interface BatchSender {
  /** True while batches go on the EnqueueStream; false once they go as EnqueueBatch calls. */
  readonly streaming: boolean;
  /**
   * Sends one batch of encoded EnqueueRequests, answered by `deadline` (ms since the epoch):
   * one response per job, or a rejection with the error that refused them all.
   */
  send(requests: readonly Uint8Array[], deadline: number, level: number): Promise<readonly EnqueueResponse[]>;
  /** Ends what `send` opened; called once every batch is answered. */
  close(): Promise<void>;
}

/** Sends an encoded EnqueueBatchRequest with an absolute deadline (ms since the epoch). */
export type SendCall = (body: Buffer, deadline: number) => Promise<EnqueueBatchResponse>;

/**
 * An EnqueueStream per durability level while the server has them (a stream is answered in
 * order: a batch waiting for the disk must not hold up another level's answers), EnqueueBatch
 * calls after it answered UNIMPLEMENTED.
 */
export class StreamOrCalls implements BatchSender {
  private readonly streams = new Map<number, EnqueueStream>();
  private unsupported = false;

  constructor(
    private readonly newStream: () => EnqueueStream,
    private readonly call: SendCall,
  ) {}

  get streaming(): boolean {
    return !this.unsupported;
  }

  async send(requests: readonly Uint8Array[], deadline: number, level: number): Promise<readonly EnqueueResponse[]> {
    if (!this.unsupported) {
      let stream = this.streams.get(level);
      if (stream === undefined) {
        stream = this.newStream();
        this.streams.set(level, stream);
      }
      try {
        return await stream.send(requests, deadline);
      } catch (error) {
        // The server read none of it: the same batch goes again, as a call.
        if (!(error instanceof StreamUnsupportedError)) throw error;
        this.unsupported = true;
      }
    }
    return (await this.call(frameBatch(requests), deadline)).responses;
  }

  async close(): Promise<void> {
    await Promise.all([...this.streams.values()].map((stream) => stream.close()));
  }
}
