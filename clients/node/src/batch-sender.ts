/**
 * Where the batcher's batches go: on the client's EnqueueStream, or as EnqueueBatch calls to a
 * server that has no EnqueueStream (older than it). The batcher asks `streaming` for the
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
  send(requests: readonly Uint8Array[], deadline: number): Promise<readonly EnqueueResponse[]>;
  /** Ends what `send` opened; called once every batch is answered. */
  close(): Promise<void>;
}

/** Sends an encoded EnqueueBatchRequest with an absolute deadline (ms since the epoch). */
export type SendCall = (body: Buffer, deadline: number) => Promise<EnqueueBatchResponse>;

/** The EnqueueStream while the server has it, EnqueueBatch calls after it answered UNIMPLEMENTED. */
export class StreamOrCalls implements BatchSender {
  constructor(
    private readonly stream: EnqueueStream,
    private readonly call: SendCall,
  ) {}

  get streaming(): boolean {
    return !this.stream.unsupported;
  }

  async send(requests: readonly Uint8Array[], deadline: number): Promise<readonly EnqueueResponse[]> {
    if (!this.stream.unsupported) {
      try {
        return await this.stream.send(requests, deadline);
      } catch (error) {
        // The server read none of it: the same batch goes again, as a call.
        if (!(error instanceof StreamUnsupportedError)) throw error;
      }
    }
    return (await this.call(frameBatch(requests), deadline)).responses;
  }

  close(): Promise<void> {
    return this.stream.close();
  }
}
