#!/usr/bin/env node
// Producer throughput of `Client.enqueue`, one job per call from many concurrent loops (the
// shape of a web application), with batching on and off:
//
//   npm run build && node scripts/enqueue-throughput.mjs [--target HOST:PORT] [--seconds 5]
//       [--concurrency 64] [--max-jobs 1000] [--linger-ms 1]
//
// Without --target it starts `jobq serve` on an embedded Valkey (../../.venv/bin/jobq, or
// $JOBQ_SERVE_BIN) as the tests do. Prints one line per mode: jobs/s, the messages sent (with
// batching on, EnqueueStream messages; EnqueueBatch calls to a server without the stream),
// each call's latency (p50, p99), and this process's CPU time per job (the client's own cost,
// whatever the server's). Figures from a shared machine are indicative only.

import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";

import { InterceptingCall } from "@grpc/grpc-js";

import { Client } from "../dist/index.js";
import { TestServer } from "../dist/test/helpers/server.js";

const { values } = parseArgs({
  options: {
    target: { type: "string" },
    seconds: { type: "string", default: "5" },
    concurrency: { type: "string", default: "64" },
    "max-jobs": { type: "string" },
    "linger-ms": { type: "string" },
  },
});
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const WARMUP_MS = 1_000;
const batchingOptions = {};
if (values["max-jobs"] !== undefined) batchingOptions.maxJobs = Number(values["max-jobs"]);
if (values["linger-ms"] !== undefined) batchingOptions.lingerMs = Number(values["linger-ms"]);

/**
 * Counts the messages sent of each RPC: one per unary call, one per batch on the EnqueueStream
 * (cheap enough to leave on: one increment per message).
 */
function callCounter() {
  const counts = new Map();
  const interceptor = (options, nextCall) => {
    const path = options.method_definition.path;
    return new InterceptingCall(nextCall(options), {
      sendMessage: (message, next) => {
        counts.set(path, (counts.get(path) ?? 0) + 1);
        next(message);
      },
    });
  };
  return { counts, interceptor };
}

/** `concurrency` loops enqueueing one job at a time until `until`; the latency of each call. */
async function drive(client, queue, until) {
  const latencies = [];
  const loop = async () => {
    while (performance.now() < until) {
      const start = performance.now();
      await client.enqueue(queue, { to: "ada@example.com", n: latencies.length });
      latencies.push(performance.now() - start);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return latencies;
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function measure(target, label, batching) {
  const counter = callCounter();
  const client = await Client.connect(target, { batching, channelOptions: { interceptors: [counter.interceptor] } });
  const queue = `bench-${randomBytes(4).toString("hex")}`;
  try {
    await drive(client, queue, performance.now() + WARMUP_MS);
    counter.counts.clear();
    const cpu = process.cpuUsage();
    const started = performance.now();
    const latencies = await drive(client, queue, started + seconds * 1_000);
    const elapsed = (performance.now() - started) / 1_000;
    const { user, system } = process.cpuUsage(cpu);
    latencies.sort((a, b) => a - b);
    const streamed = counter.counts.get("/jobqueue.v1.JobQueueService/EnqueueStream") ?? 0;
    const batches = counter.counts.get("/jobqueue.v1.JobQueueService/EnqueueBatch") ?? 0;
    const singles = counter.counts.get("/jobqueue.v1.JobQueueService/Enqueue") ?? 0;
    console.log(
      `${label.padEnd(13)} ${String(Math.round(latencies.length / elapsed)).padStart(7)} jobs/s` +
        `  ${latencies.length} jobs in ${streamed} EnqueueStream messages + ${batches} EnqueueBatch + ${singles} Enqueue calls` +
        `  latency p50 ${percentile(latencies, 50).toFixed(2)} ms, p99 ${percentile(latencies, 99).toFixed(2)} ms` +
        `  client CPU ${((user + system) / latencies.length).toFixed(1)} µs/job`,
    );
  } finally {
    await client.close();
  }
}

const server = values.target === undefined ? await TestServer.start() : undefined;
const target = values.target ?? server.target;
console.log(`${concurrency} concurrent enqueue() loops against ${target}, ${seconds} s per mode (after ${WARMUP_MS} ms of warm-up)`);
try {
  await measure(target, "batching on", batchingOptions);
  await measure(target, "batching off", false);
} finally {
  await server?.stop();
}
