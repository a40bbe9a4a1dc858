/**
 * The conformance producer (tests/conformance/README.md, "Producer conformance"): the
 * library's Client driven by JSON lines, so the kit can check every op and every typed error.
 *
 *   JOBQ_TARGET=127.0.0.1:50051 node dist/conformance-producer.js
 *
 * Each line on stdin is a command (`{"op": "get", "job_id": "..."}`); each gets one line on
 * stdout, in order: `{"ok": value}`, or `{"error": {"type", "reason", "code", "field"}}` where
 * `type` is the class of the error the library raised. Exits 0 when stdin ends.
 */

import { writeSync } from "node:fs";
import { createInterface } from "node:readline";

import {
  Client,
  DEFAULT_PAGE_SIZE,
  DEFAULT_WAIT_MS,
  JobQueueError,
  type EnqueueOptions,
  type Job,
  type JobSpec,
  type JobState,
  type JsonObject,
} from "./index.js";

type Command = Record<string, unknown>;

function line(value: unknown): void {
  writeSync(1, `${JSON.stringify(value)}\n`); // synchronous: each answer is out before the next command
}

/** A bad command is the kit's bug, not the library's: it is answered as an untyped error. */
class CommandError extends Error {
  override readonly name = "CommandError";
}

function field<T>(command: Command, name: string, type: "string" | "number" | "object", fallback?: T): T {
  const value = command[name] ?? fallback;
  const ok = type === "object" ? value !== null && typeof value === "object" : typeof value === type;
  if (!ok) throw new CommandError(`${name}: expected a ${type}, got ${JSON.stringify(value)}`);
  return value as T;
}

const OPTION_NAMES = new Set(["priority", "delay_ms", "max_attempts", "idempotency_key", "metadata", "durability"]);

/** The protocol's snake_case options as the library's (unknown ones are refused, typos show). */
function options(raw: unknown): EnqueueOptions {
  const given = (raw ?? {}) as Command;
  const unknown = Object.keys(given).filter((name) => !OPTION_NAMES.has(name));
  if (unknown.length > 0) throw new CommandError(`unknown options: ${unknown.join(", ")}`);
  const out: EnqueueOptions = {};
  if (given["priority"] !== undefined) out.priority = given["priority"] as EnqueueOptions["priority"];
  if (given["delay_ms"] !== undefined) out.delayMs = field<number>(given, "delay_ms", "number");
  if (given["max_attempts"] !== undefined) out.maxAttempts = field<number>(given, "max_attempts", "number");
  if (given["idempotency_key"] !== undefined) out.idempotencyKey = field<string>(given, "idempotency_key", "string");
  if (given["metadata"] !== undefined) out.metadata = field<Record<string, string>>(given, "metadata", "object");
  if (given["durability"] !== undefined) out.durability = given["durability"] as EnqueueOptions["durability"];
  return out;
}

function spec(raw: unknown): JobSpec {
  const job = field<Command>({ job: raw }, "job", "object");
  const result: JobSpec = { ...options(job["options"]), queue: field<string>(job, "queue", "string") };
  if (job["payload"] !== undefined && job["payload"] !== null) result.payload = field<JsonObject>(job, "payload", "object");
  return result;
}

function jobJson(job: Job): JsonObject {
  return {
    id: job.id,
    queue: job.queue,
    state: job.state,
    attempts: job.attempts,
    max_attempts: job.maxAttempts,
    payload: job.payload,
    result: job.result ?? null,
    metadata: job.metadata,
    last_error: job.lastError,
    errors: job.errors.map((error) => error.message),
  };
}

async function perform(client: Client, command: Command): Promise<unknown> {
  const jobId = (): string => field<string>(command, "job_id", "string");
  switch (command["op"]) {
    case "enqueue": {
      const { queue, payload, ...rest } = spec(command);
      const { jobId: id, duplicate } = await client.enqueue(queue, payload, rest);
      return { job_id: id, duplicate };
    }
    case "enqueue_batch": {
      const given = command["jobs"];
      if (!Array.isArray(given)) throw new CommandError("jobs: expected a list");
      const jobs = given.map(spec);
      const durability = command["durability"] as EnqueueOptions["durability"];
      const results = await client.enqueueBatch(jobs, durability === undefined ? {} : { durability });
      return results.map((r) => ({ job_id: r.jobId, duplicate: r.duplicate }));
    }
    case "get":
      return jobJson(await client.getStatus(jobId()));
    case "stats": {
      const queue = command["queue"] === undefined ? undefined : field<string>(command, "queue", "string");
      const stats = await client.stats(queue);
      // oldestQueuedAgeMs, paused, limits, waiting and partitions are left out: the protocol
      // compares the counts it names only (tests/conformance/README.md).
      return stats.map(
        ({ oldestQueuedAgeMs: _age, paused: _paused, limits: _limits, waiting: _waiting, partitions: _partitions, ...counts }) => counts,
      );
    }
    case "list_jobs": {
      const queue = field<string>(command, "queue", "string");
      const state = field<JobState>(command, "state", "string");
      const pageSize = field<number>(command, "page_size", "number", DEFAULT_PAGE_SIZE);
      const ids: string[] = [];
      for await (const job of client.listJobs(queue, state, { pageSize })) ids.push(job.id);
      return ids;
    }
    case "cancel":
      await client.cancel(jobId());
      return null;
    case "retry":
      await client.retry(jobId());
      return null;
    case "wait": {
      const timeoutMs = field<number>(command, "timeout_ms", "number", DEFAULT_WAIT_MS);
      return jobJson(await client.waitFor(jobId(), { timeoutMs }));
    }
    default:
      throw new CommandError(`unknown op ${JSON.stringify(command["op"])}`);
  }
}

function errorJson(error: unknown): JsonObject {
  if (error instanceof JobQueueError) {
    return { type: error.name, reason: error.reason, code: error.codeName, field: error.field ?? "" };
  }
  // Not the library's typed error: a bad command or a bug. The message helps whoever reads the log.
  const name = error instanceof Error ? error.name : typeof error;
  return { type: name, reason: "", code: "", field: "", message: String(error instanceof Error ? error.message : error) };
}

async function answer(client: Client, text: string): Promise<void> {
  try {
    const command = JSON.parse(text) as unknown;
    if (command === null || typeof command !== "object" || Array.isArray(command)) throw new CommandError("a command is a JSON object");
    line({ ok: await perform(client, command as Command) });
  } catch (error) {
    line({ error: errorJson(error) });
  }
}

async function main(): Promise<void> {
  const target = process.env["JOBQ_TARGET"];
  if (target === undefined || target === "") {
    console.error("conformance producer: JOBQ_TARGET is required");
    process.exit(2);
  }
  const client = new Client(target);
  try {
    for await (const text of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
      if (text.trim() !== "") await answer(client, text);
    }
  } finally {
    await client.close();
  }
}

main().catch((error: unknown) => {
  console.error("conformance producer failed:", error);
  process.exit(1);
});
