/** Channel construction and the options shared by producers and workers. */

import { credentials as grpcCredentials, type ChannelCredentials, type ChannelOptions } from "@grpc/grpc-js";

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

/** How to reach the server. */
export interface ConnectionOptions {
  /** TLS or other credentials; default insecure (plaintext). */
  credentials?: ChannelCredentials;
  /** Extra channel options; each replaces the default with the same key. */
  channelOptions?: ChannelOptions;
}

/** The generated grpc-js client for `target` ("host:port"), with the default options. */
export function serviceClient(target: string, options: ConnectionOptions = {}): JobQueueServiceClient {
  return new JobQueueServiceClient(target, options.credentials ?? grpcCredentials.createInsecure(), {
    ...DEFAULT_CHANNEL_OPTIONS,
    ...options.channelOptions,
  });
}
