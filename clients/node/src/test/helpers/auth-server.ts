/**
 * An in-test grpc-js JobQueueService (plaintext, TLS or mTLS) that records the
 * `authorization` header of every call it receives, and refuses the tokens of a table the
 * way `jobq serve --auth` does: a status with a google.rpc.ErrorInfo (and a BadRequest for
 * QUEUE_NOT_ALLOWED) in the `grpc-status-details-bin` trailer.
 *
 * Methods: Stats and ListTokens (unary, answered empty), EnqueueStream (each batch answered
 * with made-up job ids), Lease (held open until the worker half-closes it).
 */

import {
  Metadata,
  Server,
  ServerCredentials,
  status as GrpcStatus,
  type ServerDuplexStream,
  type ServerErrorResponse,
  type ServerUnaryCall,
  type sendUnaryData,
} from "@grpc/grpc-js";

import { BadRequest, ErrorInfo } from "../../gen/google/rpc/error_details.js";
import { Status } from "../../gen/google/rpc/status.js";
import {
  JobQueueServiceService,
  type EnqueueStreamRequest,
  type EnqueueStreamResponse,
  type LeaseRequest,
  type LeaseResponse,
  type ListTokensResponse,
  type StatsResponse,
} from "../../gen/jobqueue/v1/job_queue_service.js";

export interface Received {
  /** The RPC's name, e.g. `Lease`. */
  method: string;
  /** The `authorization` header as it arrived, if any. */
  authorization: string | undefined;
}

/** How the server refuses a token: a status code, the ErrorInfo reason, the BadRequest field. */
export interface Refusal {
  code: GrpcStatus;
  reason: string;
  field?: string;
}

export interface AuthServerOptions {
  /** Default: plaintext. */
  credentials?: ServerCredentials;
  /** `Bearer <token>` header values and how each is refused, on every method. */
  refusals?: Record<string, Refusal>;
  /** Refuse calls without a header with TOKEN_MISSING. */
  requireToken?: boolean;
}

export class AuthServer {
  readonly received: Received[] = [];
  private readonly server = new Server();
  private port = 0;

  private constructor(private readonly options: AuthServerOptions) {
    const unary =
      <Req, Res>(method: string, answer: Res) =>
      (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
        const error = this.judge(method, call.metadata);
        if (error === undefined) callback(null, answer);
        else callback(error);
      };
    this.server.addService(JobQueueServiceService, {
      stats: unary<unknown, StatsResponse>("Stats", { queues: [], nextPageToken: "" }),
      listTokens: unary<unknown, ListTokensResponse>("ListTokens", { tokens: [] }),
      enqueueStream: (call: ServerDuplexStream<EnqueueStreamRequest, EnqueueStreamResponse>) => {
        const error = this.judge("EnqueueStream", call.metadata);
        if (error !== undefined) return void call.emit("error", error);
        call.on("data", (request: EnqueueStreamRequest) => {
          const responses = request.requests.map((job, index) => ({ jobId: `${job.queue}:${request.sequence}-${index}`, duplicate: false }));
          call.write({ sequence: request.sequence, responses, error: undefined });
        });
        call.on("end", () => call.end());
      },
      lease: (call: ServerDuplexStream<LeaseRequest, LeaseResponse>) => {
        const error = this.judge("Lease", call.metadata);
        if (error !== undefined) return void call.emit("error", error);
        call.on("data", () => undefined); // the Subscribe, then the drain's window of 0
        call.on("end", () => call.end());
      },
    });
  }

  static async start(options: AuthServerOptions = {}): Promise<AuthServer> {
    const started = new AuthServer(options);
    started.port = await new Promise<number>((resolve, reject) =>
      started.server.bindAsync("127.0.0.1:0", options.credentials ?? ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    return started;
  }

  /** `host:port`; the server listens on 127.0.0.1 (`localhost` reaches it too). */
  target(host = "127.0.0.1"): string {
    return `${host}:${this.port}`;
  }

  /** The headers received by one RPC, in order. */
  headersOf(method: string): (string | undefined)[] {
    return this.received.filter((call) => call.method === method).map((call) => call.authorization);
  }

  /** Ends every call still open (a worker that failed to stop must not hold the test). */
  stop(): void {
    this.server.forceShutdown();
  }

  /** Records the call's header; the refusal its token earns, if any. */
  private judge(method: string, metadata: Metadata): ServerErrorResponse | undefined {
    const header = metadata.get("authorization")[0];
    const authorization = typeof header === "string" ? header : undefined;
    this.received.push({ method, authorization });
    if (authorization === undefined) {
      return this.options.requireToken ? refusal({ code: GrpcStatus.UNAUTHENTICATED, reason: "TOKEN_MISSING" }) : undefined;
    }
    const refused = this.options.refusals?.[authorization];
    return refused === undefined ? undefined : refusal(refused);
  }
}

/** The status `jobq serve --auth` sends: ErrorInfo in our domain, BadRequest naming the field. */
export function refusal({ code, reason, field }: Refusal): ServerErrorResponse {
  const message = reason.toLowerCase().replaceAll("_", " ");
  const details = [
    {
      typeUrl: "type.googleapis.com/google.rpc.ErrorInfo",
      value: Buffer.from(ErrorInfo.encode({ reason, domain: "jobqueue.dev", metadata: {} }).finish()),
    },
  ];
  if (field !== undefined) {
    const violation = { field, description: "not allowed for this token", reason: "", localizedMessage: undefined };
    details.push({
      typeUrl: "type.googleapis.com/google.rpc.BadRequest",
      value: Buffer.from(BadRequest.encode({ fieldViolations: [violation] }).finish()),
    });
  }
  const metadata = new Metadata();
  metadata.set("grpc-status-details-bin", Buffer.from(Status.encode({ code, message, details }).finish()));
  return Object.assign(new Error(message), { code, details: message, metadata });
}
