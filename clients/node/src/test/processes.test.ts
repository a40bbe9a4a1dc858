// The compiled programs run as their users run them: the conformance worker and the example.

import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

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
      stdio: ["ignore", "pipe", "pipe"],
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
    client?.close();
    await server?.stop();
  });

  function conformanceWorker(queue: string): Program {
    const program = new Program("conformance-worker.js", {
      JOBQ_TARGET: server.target,
      JOBQ_QUEUES: queue,
      JOBQ_CONCURRENCY: "2",
      JOBQ_WORKER_ID: "conformance-node",
      JOBQ_GRACE_SECONDS: "10",
      JOBQ_LOG_LEVEL: "error",
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
      client.close();
      await server.stop();
    }
  });
});
