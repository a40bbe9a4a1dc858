/** Channel construction and the options shared by producers and workers. */

import type { ChannelOptions, Interceptor, InterceptorProvider } from "@grpc/grpc-js";

import { channelSecurity, type ChannelSecurity, type SecurityOptions } from "./credentials.js";
import { JobQueueServiceClient } from "./gen/jobqueue/v1/job_queue_service.js";

/**
 * A Lease stream may sit idle for hours behind NATs and load balancers: ping so that a dead
 * peer is noticed in ~40 s instead of at the next write. The server allows pings every 10 s.
 */
export const KEEPALIVE_OPTIONS: ChannelOptions = {
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
  "grpc.keepalive_permit_without_calls": 1,
};

/**
 * gRPC's own reconnect backoff grows to 120 s by default, which would hide the worker's
 * (0.1 s to 10 s): a channel in backoff fails every call at once until it tries again.
 */
export const RECONNECT_OPTIONS: ChannelOptions = {
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 10_000,
};

/**
 * The server never sends a message over gRPC's default receive limit (4 MiB), so receiving
 * keeps the default; a batch of big jobs may be sent up to the server's own limit, 64 MiB.
 */
export const MESSAGE_SIZE_OPTIONS: ChannelOptions = {
  "grpc.max_send_message_length": 64 * 1024 * 1024,
};

export const DEFAULT_CHANNEL_OPTIONS: ChannelOptions = {
  ...KEEPALIVE_OPTIONS,
  ...RECONNECT_OPTIONS,
  ...MESSAGE_SIZE_OPTIONS,
};

/**
 * How to reach the server: TLS and the token (each from its `JOBQ_*` variable when the
 * option is not given; see {@link SecurityOptions}), and channel options.
 */
export interface ConnectionOptions extends SecurityOptions {
  /** Extra channel options; each replaces the default with the same key (interceptors are added to the token's). */
  channelOptions?: ChannelOptions;
}

/** A channel's settings, resolved (files read, variables looked up) when a Client or Worker is built. */
export type Connection = ChannelSecurity;

/** The settings `options`, else the environment, ask for; throws InvalidArgumentError on a bad one. */
export function resolveConnection(options: ConnectionOptions = {}): Connection {
  const security = channelSecurity(options);
  return { credentials: security.credentials, channelOptions: mergeChannelOptions(security.channelOptions, options.channelOptions) };
}

/**
 * The caller's channel options over the security ones. The token's interceptor runs first
 * (outermost), so the caller's interceptors see the header; grpc-js takes either
 * `interceptors` or `interceptor_providers`, so it joins whichever the caller uses.
 */
function mergeChannelOptions(security: ChannelOptions, given: ChannelOptions = {}): ChannelOptions {
  const merged = { ...security, ...given };
  const ours = (security["interceptors"] ?? []) as Interceptor[];
  if (ours.length === 0) return merged;
  const providers = given["interceptor_providers"] as InterceptorProvider[] | undefined;
  if (providers !== undefined && providers.length > 0) {
    if (given["interceptors"] === undefined) delete merged["interceptors"];
    merged["interceptor_providers"] = [...ours.map((interceptor) => () => interceptor), ...providers];
  } else {
    merged["interceptors"] = [...ours, ...((given["interceptors"] ?? []) as Interceptor[])];
  }
  return merged;
}

/** The generated grpc-js client for `target` ("host:port"), with the default options. */
export function serviceClient(target: string, connection: Connection = resolveConnection()): JobQueueServiceClient {
  return new JobQueueServiceClient(target, connection.credentials, {
    ...DEFAULT_CHANNEL_OPTIONS,
    ...connection.channelOptions,
  });
}
