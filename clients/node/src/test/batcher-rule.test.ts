// The batcher's sending rule without a server (docs/clients.md, "Producer batching"): under load
// one batch is in flight at a time; a second goes out beside it only after its linger.

import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, mock, test } from "node:test";

import { Batcher, batchingSettings } from "../batcher.js";
import { enqueueRequest } from "../convert.js";
import type { EnqueueBatchResponse } from "../gen/jobqueue/v1/job_queue_service.js";

const LINGER_MS = 50;

/** A SendBatch whose calls stay in flight until the test answers them. */
class HeldCalls {
  readonly answers: Array<(jobs: number) => void> = [];

  readonly send = (): Promise<EnqueueBatchResponse> =>
    new Promise((resolve) => {
      this.answers.push((jobs) =>
        resolve({ responses: Array.from({ length: jobs }, (_, i) => ({ jobId: `q:${i}`, duplicate: false })) }),
      );
    });
}

/** Lets setImmediate callbacks and promise jobs run (the batcher sends from setImmediate). */
async function turns(count = 3): Promise<void> {
  for (let i = 0; i < count; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

describe("the batcher's sending rule", () => {
  beforeEach(() => mock.timers.enable({ apis: ["setTimeout"] }));
  afterEach(() => mock.timers.reset());

  test("beside a batch in flight, only one that has lingered takes the second slot", async () => {
    const calls = new HeldCalls();
    const batcher = new Batcher(calls.send, batchingSettings({ lingerMs: LINGER_MS }));
    const add = (): Promise<unknown> => batcher.add(enqueueRequest({ queue: "q" }), Date.now() + 60_000);

    const first = add(); // nothing in flight: goes at once
    await turns();
    assert.equal(calls.answers.length, 1);

    const second = add();
    await turns();
    assert.equal(calls.answers.length, 1, "a batch waits for the one in flight");
    mock.timers.tick(LINGER_MS); // it has lingered: it goes beside the first
    assert.equal(calls.answers.length, 2);

    const third = add();
    calls.answers[0]?.(1);
    await first;
    await turns();
    assert.equal(calls.answers.length, 2, "not lingered: it waits for the second's answer");

    calls.answers[1]?.(1);
    await second;
    await turns();
    assert.equal(calls.answers.length, 3);
    calls.answers[2]?.(1);
    await third;
  });
});
