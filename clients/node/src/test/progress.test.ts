// Progress reports without a server: how ctx.progress and ctx.log are batched onto the Lease
// stream, split and cut.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setImmediate as nextTurn, setTimeout as delay } from "node:timers/promises";

import { LeaseContext, type ProgressSink } from "../context.js";
import { InvalidArgumentError } from "../errors.js";
import { Durability, Job, JobState } from "../gen/jobqueue/v1/job.js";
import type { LeaseRequest, ProgressUpdate } from "../gen/jobqueue/v1/job_queue_service.js";
import { Outbox } from "../outbox.js";
import { MAX_LINES_PER_UPDATE, MAX_TEXT_CHARS, ProgressQueue, checkPercent, cut, progressUpdates } from "../progress.js";

/** Resolves when `due` has been called, or rejects after `timeoutMs`. */
function dueCalls(): { due: () => void; count: () => number; next: (timeoutMs?: number) => Promise<void> } {
  let calls = 0;
  let waiter: (() => void) | undefined;
  return {
    due: () => {
      calls += 1;
      waiter?.();
    },
    count: () => calls,
    next: (timeoutMs = 5_000) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`due was not called within ${timeoutMs} ms`)), timeoutMs);
        waiter = () => {
          clearTimeout(timer);
          waiter = undefined;
          resolve();
        };
      }),
  };
}

const lines = (count: number, prefix = "line"): string[] => Array.from({ length: count }, (_, i) => `${prefix} ${i}`);

describe("ProgressQueue", () => {
  test("reports wait for a message; the latest progress wins and every line is kept in order", () => {
    const queue = new ProgressQueue(() => undefined);
    queue.progress("q:1", "t1", 10, "starting");
    queue.log("q:1", "t1", "a");
    queue.progress("q:1", "t1", 55.5, "halfway");
    queue.log("q:1", "t1", "b");
    queue.log("q:2", "t2", "other job");
    assert.equal(queue.size, 2);
    assert.ok(queue.has("q:1"));
    assert.deepEqual(queue.take(), [
      { jobId: "q:1", leaseToken: "t1", percent: 55.5, message: "halfway", logs: ["a", "b"] },
      { jobId: "q:2", leaseToken: "t2", message: "", logs: ["other job"] },
    ]);
    assert.equal(queue.size, 0);
    assert.deepEqual(queue.take(), [], "nothing is sent twice");
  });

  test("pending reports ask for a message after the interval", async () => {
    const calls = dueCalls();
    const queue = new ProgressQueue(calls.due, 20);
    const called = calls.next();
    queue.log("q:1", "t1", "a");
    queue.log("q:1", "t1", "b"); // the timer runs from the first report
    assert.equal(calls.count(), 0, "not synchronously");
    await called;
    assert.equal(calls.count(), 1);
    assert.equal(queue.take().length, 1);
    // A later report starts the timer again.
    const again = calls.next();
    queue.progress("q:1", "t1", 100, "done");
    await again;
    assert.equal(calls.count(), 2);
    queue.stop();
  });

  test("a message that carries the reports first stops the timer", async () => {
    const calls = dueCalls();
    const queue = new ProgressQueue(calls.due, 20);
    queue.log("q:1", "t1", "a");
    queue.take();
    await delay(100);
    assert.equal(calls.count(), 0);
  });

  test("a dropped job's reports are forgotten; a new lease token starts afresh", () => {
    const queue = new ProgressQueue(() => undefined);
    queue.log("q:1", "t1", "old");
    queue.log("q:2", "t2", "kept");
    queue.drop("q:1");
    assert.equal(queue.has("q:1"), false);
    queue.log("q:2", "t3", "new lease");
    assert.deepEqual(queue.take(), [{ jobId: "q:2", leaseToken: "t3", message: "", logs: ["new lease"] }]);
    queue.stop();
  });

  test("a percent outside 0 to 100 is refused when reported", () => {
    const queue = new ProgressQueue(() => undefined);
    for (const bad of [-1, 100.5, Number.NaN, Infinity, "50" as unknown as number]) {
      assert.throws(() => queue.progress("q:1", "t", bad, ""), (error: unknown) => {
        assert.ok(error instanceof InvalidArgumentError);
        assert.equal(error.field, "percent");
        return true;
      });
    }
    assert.equal(queue.size, 0);
    assert.equal(checkPercent(0), 0);
    assert.equal(checkPercent(100), 100);
  });
});

describe("progress updates", () => {
  test("more than 100 lines are split; only the first update carries the progress", () => {
    const logs = lines(2 * MAX_LINES_PER_UPDATE + 50);
    const updates = progressUpdates("q:1", "t", { percent: 30, message: "working" }, logs);
    assert.deepEqual(
      updates.map((u) => u.logs.length),
      [MAX_LINES_PER_UPDATE, MAX_LINES_PER_UPDATE, 50],
    );
    assert.deepEqual(updates.flatMap((u) => u.logs), logs, "every line, in order");
    assert.equal(updates[0]?.percent, 30);
    assert.equal(updates[0]?.message, "working");
    for (const later of updates.slice(1)) {
      assert.equal(later.percent, undefined, "log-only updates leave the progress as it was");
      assert.equal(later.message, "");
      assert.equal(later.jobId, "q:1");
      assert.equal(later.leaseToken, "t");
    }
  });

  test("exactly 100 lines fit in one update; nothing makes none", () => {
    assert.equal(progressUpdates("q:1", "t", undefined, lines(MAX_LINES_PER_UPDATE)).length, 1);
    assert.equal(progressUpdates("q:1", "t", undefined, lines(MAX_LINES_PER_UPDATE + 1)).length, 2);
    assert.deepEqual(progressUpdates("q:1", "t", undefined, []), []);
    assert.deepEqual(progressUpdates("q:1", "t", { percent: 0, message: "" }, []), [
      { jobId: "q:1", leaseToken: "t", percent: 0, message: "", logs: [] },
    ]);
  });

  test("the queue splits what it holds the same way", () => {
    const queue = new ProgressQueue(() => undefined);
    for (const line of lines(250)) queue.log("q:1", "t", line);
    assert.deepEqual(
      queue.take().map((u) => u.logs.length),
      [100, 100, 50],
    );
  });

  test("long lines and messages are cut at 1,024 characters, never inside a character", () => {
    assert.equal(cut("x".repeat(MAX_TEXT_CHARS)).length, MAX_TEXT_CHARS);
    assert.equal(cut("x".repeat(5_000)).length, MAX_TEXT_CHARS);
    const emoji = "😀".repeat(MAX_TEXT_CHARS + 10); // two UTF-16 units each
    const kept = cut(emoji);
    assert.equal([...kept].length, MAX_TEXT_CHARS);
    assert.equal(kept, "😀".repeat(MAX_TEXT_CHARS));
    const mixed = `${"a".repeat(MAX_TEXT_CHARS - 1)}😀tail`;
    assert.equal(cut(mixed), `${"a".repeat(MAX_TEXT_CHARS - 1)}😀`);
    const queue = new ProgressQueue(() => undefined);
    queue.progress("q:1", "t", 1, "m".repeat(2_000));
    queue.log("q:1", "t", "l".repeat(2_000));
    const [update] = queue.take() as [ProgressUpdate];
    assert.equal(update.message.length, MAX_TEXT_CHARS);
    assert.equal(update.logs[0]?.length, MAX_TEXT_CHARS);
  });
});

describe("progress on the Lease stream", () => {
  const ack = {
    jobId: "q:9",
    leaseToken: "t9",
    result: undefined,
    durability: Durability.DURABILITY_UNSPECIFIED,
    handlerDuration: undefined,
  };

  test("pending reports ride with the next message", async () => {
    const sent: LeaseRequest[] = [];
    const queue = new ProgressQueue(() => undefined);
    const outbox = new Outbox((request) => sent.push(request), () => queue.take());
    queue.progress("q:1", "t1", 40, "");
    outbox.ack(ack);
    await nextTurn();
    assert.equal(sent.length, 1);
    assert.equal(sent[0]?.acks.length, 1);
    assert.deepEqual(sent[0]?.progress, [{ jobId: "q:1", leaseToken: "t1", percent: 40, message: "", logs: [] }]);
    assert.equal(queue.size, 0);
  });

  test("with nothing else to send, the interval sends the reports alone", async () => {
    const sent: LeaseRequest[] = [];
    let outbox: Outbox | undefined;
    const queue = new ProgressQueue(() => outbox?.wake(), 20);
    outbox = new Outbox((request) => sent.push(request), () => queue.take());
    const calls: string[] = [];
    const sink: ProgressSink = {
      progress: (ctx, percent, message) => {
        calls.push(`progress ${percent}`);
        queue.progress(ctx.jobId, ctx.leaseToken, percent, message);
      },
      log: (ctx, line) => {
        calls.push(`log ${line}`);
        queue.log(ctx.jobId, ctx.leaseToken, line);
      },
    };
    const ctx = new LeaseContext(
      { job: Job.fromPartial({ id: "q:1", queue: "q", state: JobState.JOB_STATE_ACTIVE, attempts: 1 }), leaseToken: "t1", leaseExpireTime: undefined },
      "w",
      undefined,
      sink,
    );
    ctx.progress(75, "almost");
    for (const line of lines(120)) ctx.log(line);
    assert.throws(() => ctx.progress(101), InvalidArgumentError);
    assert.equal(sent.length, 0, "not a round trip: nothing is written synchronously");
    const deadline = Date.now() + 5_000;
    while (sent.length === 0 && Date.now() < deadline) await delay(5);
    assert.equal(sent.length, 1, "one message");
    const request = sent[0] as LeaseRequest;
    assert.equal(request.acks.length + request.fails.length + request.extends.length, 0);
    assert.deepEqual(
      request.progress.map((u) => [u.percent, u.message, u.logs.length]),
      [
        [75, "almost", 100],
        [undefined, "", 20],
      ],
    );
    assert.equal(calls.length, 121);
    queue.stop();
  });

  test("close sends the reports still pending", () => {
    const sent: LeaseRequest[] = [];
    const queue = new ProgressQueue(() => undefined);
    const outbox = new Outbox((request) => sent.push(request), () => queue.take());
    queue.log("q:1", "t1", "last words");
    outbox.close();
    assert.deepEqual(sent.map((r) => r.progress.length), [1]);
  });
});
