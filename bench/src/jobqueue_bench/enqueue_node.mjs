#!/usr/bin/env node
// jobq bench's TypeScript producer: N jobs through Client.enqueue, one job per call, from
// `concurrency` concurrent loops (the shape of a web application), batching on as by default.
//
//   node enqueue_node.mjs --client-dir clients/node --target HOST:PORT --queue Q --jobs 20000
//       [--concurrency 64] [--warmup 2000] [--payload-bytes 100]
//
// The client is imported from <client-dir>/dist (built), so its own node_modules serve it.
// Prints one JSON line: jobs, errors, seconds, jobs_per_second, latency_ms (p50/p90/p99/max of
// each call, inclusive quantiles as bench/PROTOCOL.md asks), this process's CPU over the
// measurement (client_cpu_seconds), the calls (or stream messages) made and the warm-up jobs sent
// before.

import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    "client-dir": { type: "string" },
    target: { type: "string" },
    queue: { type: "string", default: "bench-node" },
    jobs: { type: "string", default: "20000" },
    concurrency: { type: "string", default: "64" },
    warmup: { type: "string", default: "2000" },
    "payload-bytes": { type: "string", default: "100" },
  },
});
if (values["client-dir"] === undefined || values.target === undefined) {
  console.error("enqueue_node: --client-dir and --target are required");
  process.exit(2);
}
const clientDir = path.resolve(values["client-dir"]);
const { Client } = await import(pathToFileURL(path.join(clientDir, "dist", "index.js")).href);
// grpc-js as the client resolves it (its own node_modules): the same module instance.
const { InterceptingCall } = createRequire(path.join(clientDir, "package.json"))("@grpc/grpc-js");

const jobs = Number(values.jobs);
const concurrency = Number(values.concurrency);
const warmup = Number(values.warmup);
const payloadBytes = Number(values["payload-bytes"]);
const pad = "x".repeat(Math.max(0, payloadBytes - JSON.stringify({ t: Date.now() / 1000, pad: "" }).length));

/** Counts the batches that reach the wire: a unary call's message or an EnqueueStream message. */
function callCounter() {
  const counter = { calls: 0 };
  counter.interceptor = (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      sendMessage(message, next) {
        counter.calls += 1;
        next(message);
      },
    });
  return counter;
}

/** n jobs from `concurrency` loops; the latency of each successful call in ms. */
async function drive(client, n) {
  let next = 0;
  let errors = 0;
  let firstError;
  const latencies = [];
  const loop = async () => {
    while (next++ < n) {
      const start = performance.now();
      try {
        await client.enqueue(values.queue, { t: (performance.timeOrigin + start) / 1000, pad });
        latencies.push(performance.now() - start);
      } catch (error) {
        errors += 1;
        firstError ??= String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, loop));
  return { latencies, errors, firstError };
}

/** Python's statistics.quantiles(method="inclusive") at p, on sorted samples. */
function quantile(sorted, p) {
  if (sorted.length === 1) return sorted[0];
  const m = sorted.length - 1;
  const j = Math.floor((p * m) / 100);
  const delta = (p * m) % 100;
  return (sorted[j] * (100 - delta) + sorted[j + 1] * delta) / 100;
}

const counter = callCounter();
const client = await Client.connect(values.target, { channelOptions: { interceptors: [counter.interceptor] } });
try {
  if (warmup > 0) await drive(client, warmup);
  counter.calls = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const { latencies, errors, firstError } = await drive(client, jobs);
  const seconds = (performance.now() - started) / 1000;
  const { user, system } = process.cpuUsage(cpu);
  latencies.sort((a, b) => a - b);
  const latency = latencies.length
    ? { p50: quantile(latencies, 50), p90: quantile(latencies, 90), p99: quantile(latencies, 99), max: latencies.at(-1) }
    : null;
  const report = {
    jobs: latencies.length,
    errors,
    seconds,
    jobs_per_second: latencies.length / seconds,
    latency_ms: latency,
    client_cpu_seconds: (user + system) / 1e6,
    calls: counter.calls,
    jobs_per_call: latencies.length / Math.max(counter.calls, 1),
    warmup,
    concurrency,
    payload_bytes: payloadBytes,
    node: process.version,
  };
  if (firstError !== undefined) report.first_error = firstError;
  console.log(JSON.stringify(report));
} finally {
  await client.close();
}
