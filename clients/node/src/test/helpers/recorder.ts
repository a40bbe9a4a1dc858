/**
 * A gRPC client interceptor that records what a Client sends: each message's RPC, how many
 * jobs it carried and the call's deadline, and each call started.
 */

import { InterceptingCall, type Deadline, type Interceptor } from "@grpc/grpc-js";

import { EnqueueBatchRequest, EnqueueStreamRequest } from "../../gen/jobqueue/v1/job_queue_service.js";

export interface RecordedCall {
  /** The RPC's name, e.g. `EnqueueBatch`. */
  method: string;
  /** The jobs an EnqueueBatch call or EnqueueStream message carried (1 for any other). */
  jobs: number;
  deadline: Deadline | undefined;
}

export class CallRecorder {
  /** One entry per message sent (a unary call sends one). */
  readonly calls: RecordedCall[] = [];
  /** The RPC of each call started, in order (a stream counts once, however many messages). */
  readonly started: string[] = [];

  /** Pass as `channelOptions: { interceptors: [recorder.interceptor] }`. */
  readonly interceptor: Interceptor = (options, nextCall) => {
    const path = options.method_definition.path;
    const method = path.slice(path.lastIndexOf("/") + 1);
    return new InterceptingCall(nextCall(options), {
      start: (metadata, listener, next) => {
        this.started.push(method);
        next(metadata, listener);
      },
      sendMessage: (message: unknown, next) => {
        const jobs = method === "EnqueueBatch" ? batchLength(message) : method === "EnqueueStream" ? streamLength(message) : 1;
        this.calls.push({ method, jobs, deadline: options.deadline });
        next(message);
      },
    });
  };

  /** The calls of one RPC. */
  of(method: string): RecordedCall[] {
    return this.calls.filter((call) => call.method === method);
  }

  /** The number of jobs of each EnqueueBatch call, in order. */
  batchSizes(): number[] {
    return this.of("EnqueueBatch").map((call) => call.jobs);
  }

  /** The number of jobs of each EnqueueStream message, in order. */
  streamSizes(): number[] {
    return this.of("EnqueueStream").map((call) => call.jobs);
  }

  /** How many calls of one RPC were started. */
  startedOf(method: string): number {
    return this.started.filter((name) => name === method).length;
  }

  clear(): void {
    this.calls.length = 0;
    this.started.length = 0;
  }
}

/** The batcher hands gRPC the encoded request; `enqueueBatch` a message object. */
function batchLength(message: unknown): number {
  const request = message instanceof Uint8Array ? EnqueueBatchRequest.decode(message) : (message as EnqueueBatchRequest);
  return request.requests.length;
}

/** The batcher writes each stream message encoded. */
function streamLength(message: unknown): number {
  return EnqueueStreamRequest.decode(message as Uint8Array).requests.length;
}
