// The compiled programs run as their users run them: the conformance worker and producer, and
// the example.

import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";

import { Client } from "../index.js";
import { PACKAGE_ROOT, TestServer, serverSkipReason } from "./helpers/server.js";
import { uniqueQueue, waitUntil } from "./helpers/wait.js";

const skip = serverSkipReason();
if (skip !== undefined) console.log(`skipping process tests: ${skip}`);

/** A node process whose stdout lines are collected. */
class Program {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;
  private stderr = "";

  constructor(script: string, env: Record<string, string>) {
    this.child = spawn(process.execPath, [join(PACKAGE_ROOT, "dist", script)], {
      env: { ...process.env, ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let partial = "";
    this.child.stdout?.on("data", (chunk: Buffer) => {
      const text = partial + chunk.toString();
      const parts = text.split("\n");
      partial = parts.pop() ?? "";
      this.lines.push(...parts);
    });
    this.child.stderr?.on("data", (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
  }

  async line(wanted: string, timeoutMs = 15_000): Promise<void> {
    await waitUntil(() => this.lines.includes(wanted), `${JSON.stringify(wanted)} on stdout (stderr: ${this.stderr})`, timeoutMs);
  }

  /** Writes `command` as a JSON line and returns the JSON line it is answered with. */
  async ask(command: object): Promise<unknown> {
    const seen = this.lines.length;
    this.child.stdin?.write(`${JSON.stringify(command)}\n`);
    await waitUntil(() => this.lines.length > seen, `an answer to ${JSON.stringify(command)} (stderr: ${this.stderr})`);
    return JSON.parse(this.lines[seen] as string);
  }

  endInput(): void {
    this.child.stdin?.end();
  }

  terminate(): void {
    this.child.kill("SIGTERM");
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill("SIGKILL");
  }
}

describe("the conformance worker", { skip, timeout: 60_000 }, () => {
  let server: TestServer;
  let client: Client;
  const programs: Program[] = [];

  before(async () => {
    server = await TestServer.start();
    client = await Client.connect(server.target);
  });

  after(async () => {
    for (const program of programs) program.kill();
    await client?.close();
    await server?.stop();
  });

  function conformanceWorker(queue: string, env: Record<string, string> = {}): Program {
    const program = new Program("conformance-worker.js", {
      JOBQ_TARGET: server.target,
      JOBQ_QUEUES: queue,
      JOBQ_CONCURRENCY: "2",
      JOBQ_WORKER_ID: "conformance-node",
      JOBQ_GRACE_SECONDS: "10",
      JOBQ_LOG_LEVEL: "error",
      ...env,
    });
    programs.push(program);
    return program;
  }

  test("prints READY, START and END, and acks and echoes", async () => {
    const queue = uniqueQueue();
    const worker = conformanceWorker(queue);
    await worker.line("READY");
    const acked = await client.enqueue(queue, { action: "ack", result: { ok: true } });
    const payload = { action: "echo", nested: { a: [1, 2.5, "ü"] }, empty: "" };
    const echoed = await client.enqueue(queue, payload, { metadata: { k: "v" } });
    assert.deepEqual((await client.waitFor(acked.jobId)).result, { ok: true });
    const echo = await client.waitFor(echoed.jobId);
    assert.deepEqual(echo.result, {
      job_id: echoed.jobId,
      queue,
      attempt: 1,
      max_attempts: 3,
      payload,
      metadata: { k: "v" },
      worker_id: "conformance-node",
    });
    await worker.line(`START ${acked.jobId}`);
    await worker.line(`END ${acked.jobId}`);
    const unknown = await client.enqueue(queue, { action: "dance" });
    const dead = await client.waitFor(unknown.jobId);
    assert.equal(dead.state, "dead");
    assert.match(dead.lastError, /unknown action/);
    worker.terminate();
    assert.equal(await worker.exited, 0);
  });

  test("SIGTERM lets a running job finish, then exits 0", async () => {
    const queue = uniqueQueue();
    const worker = conformanceWorker(queue);
    await worker.line("READY");
    const { jobId } = await client.enqueue(queue, { action: "sleep", ms: 300, result: { slept: true } });
    await worker.line(`START ${jobId}`);
    worker.terminate();
    assert.equal(await worker.exited, 0);
    assert.ok(worker.lines.includes(`END ${jobId}`));
    const job = await client.getStatus(jobId);
    assert.equal(job.state, "completed");
    assert.deepEqual(job.result, { slept: true });
  });

  test("wait_stop prints STOPPED with the stop's reason: cancelled, then timed_out", async () => {
    const queue = uniqueQueue();
    const worker = conformanceWorker(queue);
    await worker.line("READY");
    const cancelled = await client.enqueue(queue, { action: "wait_stop", result: { ignored: true } });
    await worker.line(`START ${cancelled.jobId}`);
    await client.cancel(cancelled.jobId);
    await worker.line(`STOPPED ${cancelled.jobId} cancelled`);
    await worker.line(`END ${cancelled.jobId}`);
    const job = await client.waitFor(cancelled.jobId, { timeoutMs: 10_000 });
    assert.equal(job.state, "cancelled");
    assert.equal(job.result, undefined);
    const timed = await client.enqueue(queue, { action: "wait_stop" }, { executionTimeoutMs: 1_000, maxAttempts: 1 });
    await worker.line(`STOPPED ${timed.jobId} timed_out`, 20_000);
    await worker.line(`END ${timed.jobId}`);
    assert.equal((await client.waitFor(timed.jobId, { timeoutMs: 10_000 })).state, "dead");
    worker.terminate();
    assert.equal(await worker.exited, 0);
  });

  test("progress reports the payload's percent, message and lines, then waits for the file", async () => {
    const queue = uniqueQueue();
    const dir = mkdtempSync(join(tmpdir(), "jobq-node-progress-"));
    const path = join(dir, "go");
    const worker = conformanceWorker(queue);
    try {
      await worker.line("READY");
      const payload = { action: "progress", percent: 37.5, message: "copying", lines: ["one", "two", "three"], path, result: { ok: 1 } };
      const { jobId } = await client.enqueue(queue, payload);
      const running = await waitUntil(async () => {
        const job = await client.getStatus(jobId);
        return job.progress !== undefined && job.logs.length === 3 ? job : undefined;
      }, "the reported progress in getStatus");
      assert.equal(running.state, "active");
      assert.equal(running.progress?.percent, 37.5);
      assert.equal(running.progress?.message, "copying");
      assert.deepEqual(
        running.logs.map((entry) => entry.line),
        ["one", "two", "three"],
      );
      writeFileSync(path, "");
      const done = await client.waitFor(jobId, { timeoutMs: 10_000 });
      assert.equal(done.state, "completed");
      assert.deepEqual(done.result, { ok: 1 });
      worker.terminate();
      assert.equal(await worker.exited, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("with JOBQ_TRACE_FILE it writes its spans as JSON lines once stopped, joined to the producer's", async () => {
    const queue = uniqueQueue();
    const dir = mkdtempSync(join(tmpdir(), "jobq-node-trace-"));
    const file = join(dir, "spans.jsonl");
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const producer = new Client(server.target, { batching: false, tracerProvider: provider });
    const worker = conformanceWorker(queue, { JOBQ_TRACE_FILE: file });
    try {
      await worker.line("READY");
      const acked = await producer.enqueue(queue, { action: "ack" });
      const failed = await producer.enqueue(queue, { action: "fail_permanent" });
      await client.waitFor(acked.jobId);
      await client.waitFor(failed.jobId);
      worker.terminate();
      assert.equal(await worker.exited, 0);
      const spans = readFileSync(file, "utf8")
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      const sent = exporter.getFinishedSpans().map((span) => span.spanContext());
      assert.equal(spans.length, 2);
      for (const [index, { jobId }] of [acked, failed].entries()) {
        const span = spans.find((s) => (s["attributes"] as Record<string, unknown>)["messaging.message.id"] === jobId);
        const send = sent[index];
        assert.ok(span !== undefined && send !== undefined);
        assert.deepEqual(span, {
          name: `process ${queue}`,
          kind: "CONSUMER",
          trace_id: send.traceId,
          span_id: span["span_id"],
          parent_span_id: send.spanId,
          links: [{ trace_id: send.traceId, span_id: send.spanId }],
          attributes: {
            "messaging.system": "jobqueue",
            "messaging.destination.name": queue,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.message.id": jobId,
            "jobqueue.job.attempt": 1,
            "jobqueue.worker.id": "conformance-node",
          },
          status: jobId === acked.jobId ? "UNSET" : "ERROR",
        });
        assert.match(String(span["span_id"]), /^[0-9a-f]{16}$/);
      }
    } finally {
      await producer.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the exit action ends the process with code 3 and the job is released", async () => {
    const queue = uniqueQueue();
    const worker = conformanceWorker(queue);
    await worker.line("READY");
    const { jobId } = await client.enqueue(queue, { action: "exit" });
    assert.equal(await worker.exited, 3);
    assert.ok(!worker.lines.includes(`END ${jobId}`));
    const job = await waitUntil(async () => {
      const current = await client.getStatus(jobId);
      return current.state === "queued" ? current : undefined;
    }, "the crashed worker's job to be released");
    assert.equal(job.attempts, 1);
  });
});

describe("the conformance producer", { skip, timeout: 60_000 }, () => {
  test("answers each command in order, with the library's typed errors, and exits 0 at the end of input", async () => {
    const server = await TestServer.start();
    const producer = new Program("conformance-producer.js", { JOBQ_TARGET: server.target });
    try {
      const queue = uniqueQueue();
      const options = { priority: "high", max_attempts: 4, idempotency_key: "k1", metadata: { t: "a" }, durability: "fsynced" };
      const enqueued = (await producer.ask({ op: "enqueue", queue, payload: { n: 1 }, options })) as { ok: { job_id: string } };
      const id = enqueued.ok.job_id;
      assert.deepEqual(await producer.ask({ op: "enqueue", queue, payload: { n: 2 }, options }), { ok: { job_id: id, duplicate: true } });
      const batch = (await producer.ask({
        op: "enqueue_batch",
        durability: "fsynced",
        jobs: [{ queue, payload: { n: 3 } }, { queue, options: { delay_ms: 60_000 } }],
      })) as { ok: { job_id: string; duplicate: boolean }[] };
      assert.equal(batch.ok.length, 2);
      assert.deepEqual(await producer.ask({ op: "get", job_id: id }), {
        ok: {
          id,
          queue,
          state: "queued",
          attempts: 0,
          max_attempts: 4,
          payload: { n: 1 },
          result: null,
          metadata: { t: "a" },
          last_error: "",
          errors: [],
        },
      });
      assert.deepEqual(await producer.ask({ op: "stats", queue }), {
        ok: [{ queue, queued: 2, scheduled: 1, active: 0, completed: 0, dead: 0, cancelled: 0 }],
      });
      assert.deepEqual(await producer.ask({ op: "list_jobs", queue, state: "queued", page_size: 1 }), {
        ok: [id, batch.ok[0]?.job_id],
      });
      assert.deepEqual(await producer.ask({ op: "cancel", job_id: id }), { ok: null });
      assert.deepEqual(await producer.ask({ op: "cancel", job_id: id }), {
        error: { type: "WrongStateError", reason: "WRONG_STATE", code: "FAILED_PRECONDITION", field: "" },
      });
      const waited = (await producer.ask({ op: "wait", job_id: id, timeout_ms: 5_000 })) as { ok: { state: string } };
      assert.equal(waited.ok.state, "cancelled");
      assert.deepEqual(await producer.ask({ op: "retry", job_id: id }), { ok: null });
      assert.deepEqual(await producer.ask({ op: "enqueue", queue: "bad queue!" }), {
        error: { type: "InvalidArgumentError", reason: "INVALID_ARGUMENT", code: "INVALID_ARGUMENT", field: "queue" },
      });
      assert.deepEqual(await producer.ask({ op: "get", job_id: "q:01ARZ3NDEKTSV4RRFFQ69G5FAV" }), {
        error: { type: "NotFoundError", reason: "JOB_NOT_FOUND", code: "NOT_FOUND", field: "" },
      });
      producer.endInput();
      assert.equal(await producer.exited, 0);
    } finally {
      producer.kill();
      await server.stop();
    }
  });
});

describe("examples/minimal-worker", { skip, timeout: 60_000 }, () => {
  test("handles an email job and stops on SIGTERM", async () => {
    const server = await TestServer.start();
    const client = await Client.connect(server.target);
    const example = new Program("examples/minimal-worker.js", { JOBQ_TARGET: server.target });
    try {
      const { jobId } = await client.enqueue("emails", { to: "ada@example.com", subject: "hi" });
      const job = await client.waitFor(jobId, { timeoutMs: 15_000 });
      assert.equal(job.state, "completed");
      assert.deepEqual(job.result, { sent: true });
      const bad = await client.enqueue("emails", { to: "nobody", subject: "hi" });
      assert.equal((await client.waitFor(bad.jobId, { timeoutMs: 15_000 })).state, "dead");
      example.terminate();
      assert.equal(await example.exited, 0);
    } finally {
      example.kill();
      await client.close();
      await server.stop();
    }
  });
});
