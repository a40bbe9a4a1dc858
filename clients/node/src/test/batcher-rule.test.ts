// The batcher's sending rule without a server (docs/clients.md, "Producer batching"). With
// EnqueueBatch calls, under load one batch is in flight at a time and a second goes out beside
// it only after its linger. On the EnqueueStream a batch is full at 32 jobs and a full one goes
// at once while fewer than 64 are unanswered; one not full still waits for its linger.

import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, mock, test } from "node:test";

import type { BatchSender } from "../batch-sender.js";
import { Batcher, STREAM_BATCH_JOBS, STREAM_MAX_IN_FLIGHT, batchingSettings } from "../batcher.js";
import { enqueueRequest } from "../convert.js";
import type { EnqueueResponse } from "../gen/jobqueue/v1/job_queue_service.js";
import type { BatchingOptions } from "../types.js";

const LINGER_MS = 50;

/** A BatchSender whose batches stay unanswered until the test answers them. */
class HeldBatches implements BatchSender {
  readonly sent: Array<{ jobs: number; answer: () => void }> = [];

  constructor(readonly streaming: boolean) {}

  send(requests: readonly Uint8Array[]): Promise<readonly EnqueueResponse[]> {
    return new Promise((resolve) => {
      const jobs = requests.length;
      this.sent.push({ jobs, answer: () => resolve(Array.from({ length: jobs }, (_, i) => ({ jobId: `q:${i}`, duplicate: false }))) });
    });
  }

  async close(): Promise<void> {}

  sizes(): number[] {
    return this.sent.map((batch) => batch.jobs);
  }

  /** Answers the `index`th batch sent. */
  answer(index: number): void {
    this.sent[index]?.answer();
  }
}

/** Lets setImmediate callbacks and promise jobs run (the batcher sends from setImmediate). */
async function turns(count = 3): Promise<void> {
  for (let i = 0; i < count; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

function setUp(streaming: boolean, options: BatchingOptions = {}) {
  const sender = new HeldBatches(streaming);
  const batcher = new Batcher(sender, batchingSettings({ lingerMs: LINGER_MS, ...options }));
  const add = (count = 1): Promise<unknown> =>
    Promise.all(Array.from({ length: count }, () => batcher.add(enqueueRequest({ queue: "q" }), Date.now() + 60_000)));
  return { sender, add };
}

describe("the batcher's sending rule", () => {
  beforeEach(() => mock.timers.enable({ apis: ["setTimeout"] }));
  afterEach(() => mock.timers.reset());

  test("with calls, beside a batch in flight only one that has lingered takes the second slot", async () => {
    const { sender, add } = setUp(false);

    const first = add(); // nothing in flight: goes at once
    await turns();
    assert.equal(sender.sent.length, 1);

    const second = add();
    await turns();
    assert.equal(sender.sent.length, 1, "a batch waits for the one in flight");
    mock.timers.tick(LINGER_MS); // it has lingered: it goes beside the first
    assert.equal(sender.sent.length, 2);

    const third = add();
    sender.answer(0);
    await first;
    await turns();
    assert.equal(sender.sent.length, 2, "not lingered: it waits for the second's answer");

    sender.answer(1);
    await second;
    await turns();
    assert.equal(sender.sent.length, 3);
    sender.answer(2);
    await third;
  });

  test("with calls, a batch is full at maxJobs and waits while two are in flight", async () => {
    const { sender, add } = setUp(false, { maxJobs: 100 });
    const jobs = add(350); // nothing in flight: the first fills, then the second beside it
    await turns();
    assert.deepEqual(sender.sizes(), [100, 100], "a full batch goes only while fewer than 2 are in flight");
    sender.answer(0);
    await turns();
    assert.deepEqual(sender.sizes(), [100, 100, 100]);
    sender.answer(1);
    await turns();
    assert.deepEqual(sender.sizes(), [100, 100, 100], "beside a batch in flight, one not full lingers first");
    mock.timers.tick(LINGER_MS);
    assert.deepEqual(sender.sizes(), [100, 100, 100, 50]);
    sender.answer(2);
    sender.answer(3);
    await jobs;
  });

  test("on the stream, a batch is full at 32 jobs and full ones go at once, up to 64 unanswered", async () => {
    const { sender, add } = setUp(true);
    const first = add(); // nothing in flight: goes at once, alone
    await turns();
    assert.deepEqual(sender.sizes(), [1]);

    const full = add(STREAM_BATCH_JOBS * (STREAM_MAX_IN_FLIGHT - 1)); // 63 full batches beside it
    assert.equal(sender.sent.length, STREAM_MAX_IN_FLIGHT);
    assert.ok(sender.sizes().slice(1).every((jobs) => jobs === STREAM_BATCH_JOBS));

    const waiting = add(STREAM_BATCH_JOBS); // full, but every slot is taken
    const open = add(5); // not full
    await turns();
    mock.timers.tick(LINGER_MS); // lingered, but no slot is free
    await turns();
    assert.equal(sender.sent.length, STREAM_MAX_IN_FLIGHT, "a 65th batch waits for an answer");

    sender.answer(0);
    await first;
    await turns();
    assert.equal(sender.sent.length, STREAM_MAX_IN_FLIGHT + 1, "the full batch takes the freed slot");
    assert.equal(sender.sent.at(-1)?.jobs, STREAM_BATCH_JOBS);

    sender.answer(1);
    await turns();
    assert.equal(sender.sent.length, STREAM_MAX_IN_FLIGHT + 2, "then the one that lingered");
    assert.equal(sender.sent.at(-1)?.jobs, 5);

    sender.answer(2);
    await turns();
    const late = add(3); // a slot is free, but beside batches in flight one not full lingers first
    await turns();
    assert.equal(sender.sent.length, STREAM_MAX_IN_FLIGHT + 2);
    mock.timers.tick(LINGER_MS);
    assert.equal(sender.sent.length, STREAM_MAX_IN_FLIGHT + 3);
    assert.equal(sender.sent.at(-1)?.jobs, 3);

    for (let index = 3; index < sender.sent.length; index += 1) sender.answer(index);
    await Promise.all([full, waiting, open, late]);
  });

  test("on the stream, a maxJobs below 32 still makes a batch full", async () => {
    const { sender, add } = setUp(true, { maxJobs: 10 });
    const jobs = add(25);
    assert.deepEqual(sender.sizes(), [10, 10]);
    mock.timers.tick(LINGER_MS);
    assert.deepEqual(sender.sizes(), [10, 10, 5]);
    sender.sent.forEach((batch) => batch.answer());
    await jobs;
  });
});
