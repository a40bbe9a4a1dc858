/** A gRPC client interceptor that records the calls a Client makes: which RPC, how many jobs, the deadline. */

import { InterceptingCall, type Deadline, type Interceptor } from "@grpc/grpc-js";

import { EnqueueBatchRequest } from "../../gen/jobqueue/v1/job_queue_service.js";

export interface RecordedCall {
  /** The RPC's name, e.g. `EnqueueBatch`. */
  method: string;
  /** The jobs an EnqueueBatch call carried (1 for any other call). */
  jobs: number;
  deadline: Deadline | undefined;
}

export class CallRecorder {
  readonly calls: RecordedCall[] = [];

  /** Pass as `channelOptions: { interceptors: [recorder.interceptor] }`. */
  readonly interceptor: Interceptor = (options, nextCall) => {
    const path = options.method_definition.path;
    const method = path.slice(path.lastIndexOf("/") + 1);
    return new InterceptingCall(nextCall(options), {
      sendMessage: (message: unknown, next) => {
        const jobs = method === "EnqueueBatch" ? batchLength(message) : 1;
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

  clear(): void {
    this.calls.length = 0;
  }
}

/** The batcher hands gRPC the encoded request; `enqueueBatch` a message object. */
function batchLength(message: unknown): number {
  const request = message instanceof Uint8Array ? EnqueueBatchRequest.decode(message) : (message as EnqueueBatchRequest);
  return request.requests.length;
}
