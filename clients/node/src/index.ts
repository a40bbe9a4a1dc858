/**
 * @jobqueue/client: a typed client and worker for the jobqueue gRPC service.
 *
 * - {@link Client}: enqueue jobs (alone, in batches, or waiting for other jobs), read their status, list a queue, watch a job, cancel, retry, wait for results;
 *   create partitioned queues, pause queues and limit their rate and concurrency; manage schedules (recurring jobs); create, list and revoke API tokens;
 *   create, list and delete webhooks (signed failure alerts).
 * - {@link Worker}: lease jobs over one stream, run async handlers, ack or fail them.
 */

export { Client, DEFAULT_PAGE_SIZE, DEFAULT_TIMEOUT_MS, DEFAULT_WAIT_MS, MAX_BATCH } from "./client.js";
export type { ClientOptions, ConnectOptions, WaitOptions, WatchOptions } from "./client.js";
export { DEFAULT_BATCHING } from "./batcher.js";
export { Worker, defaultWorkerId, DEFAULT_CONCURRENCY, DEFAULT_GRACE_PERIOD_MS } from "./worker.js";
export type { RunOptions, WorkerEvents, WorkerOptions } from "./worker.js";
export type { JobContext } from "./context.js";
export type { Handler } from "./execution.js";
export type { WorkerCounters } from "./session.js";
export { DEFAULT_CHANNEL_OPTIONS } from "./channel.js";
export type { ConnectionOptions } from "./channel.js";
export { ENV } from "./credentials.js";
export type { SecurityOptions } from "./credentials.js";
export { ReconnectBackoff, pollIntervals } from "./backoff.js";
export type { ReconnectBackoffOptions } from "./backoff.js";
export { consoleLogger } from "./logger.js";
export type { LogLevel } from "./logger.js";
export {
  AlreadyExistsError,
  DeadlineExceededError,
  DurabilityUnavailableError,
  ERROR_CLASSES,
  ERROR_DOMAIN,
  FailedPreconditionError,
  FsyncNotConfirmedError,
  InternalError,
  InvalidArgumentError,
  JobQueueError,
  JobStoppedError,
  LeaseLostError,
  NonRetryableError,
  NotFoundError,
  PermissionDeniedError,
  QueueNotAllowedError,
  ReplicationNotConfirmedError,
  ResourceExhaustedError,
  RetryAfterError,
  RoleNotAllowedError,
  ScheduleExistsError,
  ScheduleLimitReachedError,
  ScheduleNotFoundError,
  ServerShuttingDownError,
  StoreFullError,
  StoreUnavailableError,
  TokenExpiredError,
  TokenInvalidError,
  TokenLimitReachedError,
  QueueLimitReachedError,
  TokenMissingError,
  TokenNotFoundError,
  UnauthenticatedError,
  UnavailableError,
  WebhookLimitReachedError,
  WebhookNotFoundError,
  WrongStateError,
  errorReason,
  fromServiceError,
  fromStatus,
} from "./errors.js";
export type { JobQueueErrorOptions, JobStopReason, ServerReason } from "./errors.js";
export { ErrorReason } from "./gen/jobqueue/v1/error_reason.js";
export type { CatchUpPolicy, ListSchedulesOptions, ScheduleFields, ScheduleInfo, ScheduleSpec, ScheduleTiming } from "./schedules.js";
export { TERMINAL_STATES, isTerminal } from "./types.js";
export type {
  BackoffPolicy,
  BatchingOptions,
  CallOptions,
  CreateQueueResult,
  CreatedToken,
  CreatedWebhook,
  CreateTokenOptions,
  CreateWebhookOptions,
  DependencyFailurePolicy,
  Durability,
  EnqueueBatchOptions,
  EnqueueOptions,
  EnqueueResult,
  Job,
  JobError,
  JobLogLine,
  JobProgress,
  JobSpec,
  JobState,
  JsonObject,
  JsonValue,
  ListJobsOptions,
  Logger,
  Priority,
  QueueLimits,
  QueueStats,
  TokenInfo,
  TokenRole,
  Webhook,
} from "./types.js";
