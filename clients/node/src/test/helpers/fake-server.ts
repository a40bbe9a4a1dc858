/**
 * An in-test grpc-js JobQueueService whose methods the test writes: what a real server cannot
 * be made to do on cue (a JobStop and a job in the same message, a WatchJob that breaks, a
 * server without WatchJob). Methods left out answer UNIMPLEMENTED, as grpc-js does for them.
 * Lease streams are recorded: every message the worker sends, and the open calls, so that the
 * test can write LeaseResponses.
 */

import {
  Server,
  ServerCredentials,
  status as GrpcStatus,
  type ServerDuplexStream,
  type ServerErrorResponse,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";

import { Job, JobState } from "../../gen/jobqueue/v1/job.js";
import {
  JobQueueServiceService,
  type LeaseRequest,
  type LeaseResponse,
  type LeasedJob,
} from "../../gen/jobqueue/v1/job_queue_service.js";
import { waitUntil } from "./wait.js";

export type LeaseCall = ServerDuplexStream<LeaseRequest, LeaseResponse>;

export class FakeServer {
  /** Every message received on Lease streams, in order. */
  readonly received: LeaseRequest[] = [];
  /** Lease streams opened, in order. */
  readonly leases: LeaseCall[] = [];
  private readonly server = new Server();
  private port = 0;

  private constructor(methods: UntypedServiceImplementation) {
    this.server.addService(JobQueueServiceService, {
      lease: (call: LeaseCall) => {
        this.leases.push(call);
        call.on("data", (request: LeaseRequest) => this.received.push(request));
        call.on("end", () => call.end());
        call.on("error", () => undefined);
      },
      ...methods,
    });
  }

  /** `methods`: the service's methods by their generated names (`getStatus`, `watchJob`, ...). */
  static async start(methods: UntypedServiceImplementation = {}): Promise<FakeServer> {
    const started = new FakeServer(methods);
    started.port = await new Promise<number>((resolve, reject) =>
      started.server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    return started;
  }

  get target(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** The Lease stream once its Subscribe arrived. */
  async subscribed(): Promise<LeaseCall> {
    await waitUntil(() => this.received.some((request) => request.subscribe !== undefined), "a Subscribe");
    return this.leases.at(-1) as LeaseCall;
  }

  /** The windows asked for so far (the Subscribe's max_in_flight, then each later one). */
  windows(): number[] {
    return this.received.flatMap((request) => (request.subscribe === undefined ? [] : [request.subscribe.maxInFlight]));
  }

  /** The ids of the jobs acked or failed so far. */
  settled(): string[] {
    return this.received.flatMap((request) => [...request.acks, ...request.fails].map((entry) => entry.jobId));
  }

  /** Ends every call still open. */
  stop(): void {
    this.server.forceShutdown();
  }
}

/** A LeasedJob for `id` (`queue:...`), leased now for `leaseMs`. */
export function leased(id: string, leaseToken: string, leaseMs = 30_000): LeasedJob {
  const now = new Date();
  const job = Job.fromPartial({
    id,
    queue: id.slice(0, id.indexOf(":")),
    state: JobState.JOB_STATE_ACTIVE,
    attempts: 1,
    maxAttempts: 3,
    payload: {},
    startTime: now,
  });
  return { job, leaseToken, leaseExpireTime: new Date(now.getTime() + leaseMs) };
}

/** A LeaseResponse with only what is given. */
export function response(parts: Partial<LeaseResponse>): LeaseResponse {
  return { jobs: [], confirmations: [], stops: [], ...parts };
}

/** The error a server method sends: a status without details. */
export function statusError(code: GrpcStatus, details: string): ServerErrorResponse {
  return Object.assign(new Error(details), { code, details });
}
