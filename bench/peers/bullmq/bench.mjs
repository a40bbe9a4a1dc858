// BullMQ peer benchmark (contract: bench/PROTOCOL.md).
//
//   node bench.mjs --scenario drain --redis-url redis://127.0.0.1:6390/0 --jobs 20000 --workers 1 --concurrency 50
//
// Worker processes are this script with a leading `worker` argument (child_process.fork, own process
// group). Each runs one `new Worker(queue, async job => {...}, {connection, concurrency: C})` and reports
// {ready, count, first, last, cpu, lat} over the IPC channel every 50 ms (or per job for latency_idle).
// A job's start is the handler's first line; its end is the Worker's 'completed' event.

import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Queue, Worker } from 'bullmq';

const QUEUE = 'bench';
const IDLE_GAP_MS = 20;
const SETTLE_MS = 300;
const STOP_GRACE_MS = 5000;
const CONNECT_TIMEOUT_MS = 10000; // ioredis retries forever; fail the run instead
const SCENARIOS = ['enqueue_unary', 'enqueue_batch', 'drain', 'end_to_end', 'latency_rate', 'latency_idle'];

const nowS = () => (performance.timeOrigin + performance.now()) / 1000; // wall clock, seconds
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const withTimeout = (p, ms, what) => {
  let timer;
  const t = new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`timed out ${what}`)), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
};
const log = (msg) => process.stderr.write(`[bullmq ${process.pid}] ${msg}\n`);

function parseArgs(argv) {
  const a = {
    scenario: null, redisUrl: 'redis://127.0.0.1:6379/0', jobs: 20000, workers: 1, concurrency: 50,
    batch: 1000, inFlight: 64, payloadBytes: 100, rate: 200, duration: 10, timeout: 300, workerIndex: 0,
  };
  const names = {
    '--scenario': 'scenario', '--redis-url': 'redisUrl', '--jobs': 'jobs', '--workers': 'workers',
    '--concurrency': 'concurrency', '--batch': 'batch', '--in-flight': 'inFlight',
    '--payload-bytes': 'payloadBytes', '--rate': 'rate', '--duration': 'duration', '--timeout': 'timeout',
    '--worker-index': 'workerIndex',
  };
  for (let i = 0; i < argv.length; i++) {
    let [k, v] = argv[i].split('=', 2);
    const key = names[k];
    if (!key) { log(`ignoring unknown argument ${argv[i]}`); continue; }
    if (v === undefined) v = argv[++i];
    a[key] = key === 'scenario' || key === 'redisUrl' ? v : Number(v);
  }
  if (!SCENARIOS.includes(a.scenario)) throw new Error(`--scenario must be one of ${SCENARIOS.join(', ')}`);
  return a;
}

const configOf = (a) => ({
  jobs: a.jobs, workers: a.workers, concurrency: a.concurrency, batch: a.batch, in_flight: a.inFlight,
  payload_bytes: a.payloadBytes, rate: a.rate, duration: a.duration,
});

function payloadMaker(size) {
  const base = JSON.stringify({ t: nowS(), pad: '' }).length;
  const pad = 'x'.repeat(Math.max(0, size - base));
  return () => ({ t: nowS(), pad });
}

// statistics.quantiles(method="inclusive") definition: linear interpolation on (n-1)*p.
function summarizeMs(samples) {
  if (!samples.length) return null;
  const x = [...samples].sort((p, q) => p - q);
  const q = (p) => {
    const pos = (x.length - 1) * p;
    const lo = Math.floor(pos);
    return lo + 1 < x.length ? x[lo] + (x[lo + 1] - x[lo]) * (pos - lo) : x[lo];
  };
  const r = (v) => Math.round(v * 1000) / 1000;
  return { p50: r(q(0.5)), p90: r(q(0.9)), p99: r(q(0.99)), max: r(x[x.length - 1]) };
}

function versions() {
  const pkg = (name) => {
    const url = new URL(`./node_modules/${name}/package.json`, import.meta.url);
    return JSON.parse(readFileSync(url, 'utf8')).version;
  };
  return { bullmq: pkg('bullmq'), ioredis: pkg('ioredis'), node: process.version };
}

// ------------------------------------------------------------------------------------ worker process

async function runWorker(a) {
  const immediate = process.env.PEER_STATS_MODE === 'immediate';
  const recordLatency = process.env.PEER_RECORD_LATENCY === '1';
  const st = { count: 0, first: null, last: null, lat: [], sent: -1 };
  const cpuS = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
  const report = (ready = false) => {
    const lat = st.lat; st.lat = []; st.sent = st.count;
    process.send({ ready, count: st.count, first: st.first, last: st.last, cpu: cpuS(), lat });
  };
  const worker = new Worker(
    QUEUE,
    async (job) => {
      const now = nowS();
      if (st.first === null) st.first = now;
      if (recordLatency) st.lat.push((now - job.data.t) * 1000);
    },
    { connection: { url: a.redisUrl, maxRetriesPerRequest: null }, concurrency: a.concurrency },
  );
  worker.on('completed', () => {
    st.last = nowS();
    st.count += 1;
    if (immediate) report();
  });
  worker.on('error', (err) => log(`worker error: ${err}`));
  if (!immediate) setInterval(() => { if (st.count !== st.sent) report(); }, 50);
  await worker.waitUntilReady();
  report(true);
  process.on('SIGTERM', () => process.exit(0));
  process.on('disconnect', () => process.exit(0)); // parent gone: do not linger
}

// ------------------------------------------------------------------------------------ parent side

class Pool {
  constructor(a, n, { immediate = false, latency = false } = {}) {
    this.a = a; this.n = n; this.immediate = immediate; this.latency = latency;
    this.ws = []; this.waiters = []; this.startedAt = 0;
  }

  start() {
    this.startedAt = nowS();
    const script = fileURLToPath(import.meta.url);
    for (let i = 0; i < this.n; i++) {
      const child = fork(script, ['worker', ...process.argv.slice(2), '--worker-index', String(i)], {
        detached: true, // own process group, stopped by its id
        stdio: ['ignore', 2, 2, 'ipc'], // child stdout -> our stderr: one JSON line on our stdout
        env: {
          ...process.env,
          PEER_STATS_MODE: this.immediate ? 'immediate' : 'interval',
          PEER_RECORD_LATENCY: this.latency ? '1' : '0',
        },
      });
      const w = { child, ready: false, exited: false, count: 0, first: null, last: null, cpu0: null, cpu: null, lat: [] };
      child.on('message', (m) => {
        if (m.ready) { w.ready = true; w.cpu0 = m.cpu; }
        w.count = m.count; w.first = m.first; w.last = m.last; w.cpu = m.cpu;
        for (const x of m.lat) w.lat.push(x);
        this.poke();
      });
      child.on('exit', () => { w.exited = true; this.poke(); });
      this.ws.push(w);
    }
  }

  poke() { for (const f of this.waiters.splice(0)) f(); }

  async waitFor(pred, timeoutS, what) {
    const deadline = Date.now() + timeoutS * 1000;
    while (!pred()) {
      const dead = this.ws.filter((w) => w.exited).map((w) => w.child.pid);
      if (dead.length) throw new Error(`worker(s) ${dead} exited while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what} (count=${this.count})`);
      await new Promise((r) => { this.waiters.push(r); setTimeout(r, Math.min(left, 500)); });
    }
  }

  async waitReady() {
    await this.waitFor(() => this.ws.every((w) => w.ready), 60, 'workers ready');
    await sleep(SETTLE_MS);
  }

  waitCount(n, timeoutS) { return this.waitFor(() => this.count >= n, timeoutS, `${n} jobs completed`); }
  get count() { return this.ws.reduce((s, w) => s + w.count, 0); }
  first() { return Math.min(...this.ws.filter((w) => w.first !== null).map((w) => w.first)); }
  last() { return Math.max(...this.ws.filter((w) => w.last !== null).map((w) => w.last)); }
  latencies() { return this.ws.flatMap((w) => w.lat); }
  cpuSeconds() { return this.ws.reduce((s, w) => s + ((w.cpu ?? 0) - (w.cpu0 ?? 0)), 0); }

  async stop() {
    const signal = (w, sig) => { try { process.kill(-w.child.pid, sig); } catch { /* already gone */ } };
    for (const w of this.ws) if (!w.exited) signal(w, 'SIGTERM');
    const deadline = Date.now() + STOP_GRACE_MS;
    while (this.ws.some((w) => !w.exited) && Date.now() < deadline) await sleep(20);
    for (const w of this.ws) signal(w, 'SIGKILL'); // also whatever a worker started
    this.ws = [];
  }
}

let activePools = [];
async function withPool(pool, fn) {
  activePools.push(pool);
  try { pool.start(); return await fn(pool); } finally {
    await pool.stop();
    activePools = activePools.filter((p) => p !== pool);
  }
}

async function unary(queue, make, n, f) {
  let next = 0; const lats = [];
  const loop = async () => {
    while (next++ < n) {
      const data = make(); const t0 = performance.now();
      await queue.add('noop', data);
      lats.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, f) }, loop));
  return lats;
}

async function batch(queue, make, n, b) {
  const lats = [];
  for (let i = 0; i < n; i += b) {
    const chunk = Array.from({ length: Math.min(b, n - i) }, () => ({ name: 'noop', data: make() }));
    const t0 = performance.now();
    await queue.addBulk(chunk);
    lats.push(performance.now() - t0);
  }
  return lats;
}

function notes(a) {
  let s = `BullMQ ${a.workers} worker process(es), one Worker each, concurrency ${a.concurrency}; ioredis ` +
    'connection (maxRetriesPerRequest null on the Worker); default job options: removeOnComplete/removeOnFail ' +
    'unset (completed jobs are kept; the docs suggest removal for memory, not for speed), attempts 1; job end = ' +
    "the Worker's 'completed' event.";
  if (['enqueue_batch', 'drain', 'end_to_end'].includes(a.scenario)) s += ` Batches: Queue.addBulk of ${a.batch}.`;
  if (a.scenario === 'enqueue_unary') s += ` Unary: Queue.add, ${a.inFlight} in flight on one Queue.`;
  return s;
}

async function runScenario(a) {
  const sc = a.scenario;
  const out = { system: 'bullmq', scenario: sc, config: configOf(a) };
  const make = payloadMaker(a.payloadBytes);
  const queue = new Queue(QUEUE, { connection: { url: a.redisUrl } });
  let n = a.jobs; let seconds; let lat = null; let workerCpu = null; const extra = {};
  try {
    await withTimeout(queue.waitUntilReady(), CONNECT_TIMEOUT_MS, 'connecting to Redis');
    if (sc === 'enqueue_unary' || sc === 'enqueue_batch') {
      const t0 = performance.now();
      const samples = sc === 'enqueue_unary' ? await unary(queue, make, n, a.inFlight) : await batch(queue, make, n, a.batch);
      seconds = (performance.now() - t0) / 1000;
      lat = summarizeMs(samples);
      extra.latency_is = 'per enqueue call' + (sc === 'enqueue_batch' ? ` of ${a.batch} jobs` : '');
    } else if (sc === 'drain') {
      const t0 = performance.now();
      await batch(queue, make, n, a.batch);
      extra.fill_seconds = Math.round(performance.now() - t0) / 1000;
      await withPool(new Pool(a, a.workers), async (pool) => {
        await pool.waitCount(n, a.timeout);
        seconds = pool.last() - pool.first();
        extra.seconds_incl_startup = Math.round((pool.last() - pool.startedAt) * 1e4) / 1e4;
        extra.completed = pool.count;
        workerCpu = pool.cpuSeconds();
      });
    } else if (sc === 'end_to_end') {
      await withPool(new Pool(a, a.workers), async (pool) => {
        await pool.waitReady();
        const tFirst = nowS();
        await batch(queue, make, n, a.batch);
        extra.enqueue_seconds = Math.round((nowS() - tFirst) * 1e4) / 1e4;
        await pool.waitCount(n, a.timeout);
        seconds = pool.last() - tFirst;
        extra.completed = pool.count;
        workerCpu = pool.cpuSeconds();
      });
    } else if (sc === 'latency_rate') {
      await withPool(new Pool(a, a.workers, { latency: true }), async (pool) => {
        await pool.waitReady();
        n = Math.max(1, Math.floor(a.rate * a.duration));
        const tFirst = nowS(); const t0 = performance.now();
        for (let i = 0; i < n; i++) {
          const delay = t0 + (i * 1000) / a.rate - performance.now();
          if (delay > 0) await sleep(delay);
          await queue.add('noop', make());
        }
        const sendS = nowS() - tFirst;
        await pool.waitCount(n, a.timeout);
        seconds = pool.last() - tFirst;
        const samples = pool.latencies();
        lat = summarizeMs(samples);
        Object.assign(extra, { achieved_rate: Math.round((n / sendS) * 10) / 10, samples: samples.length, completed: pool.count });
        workerCpu = pool.cpuSeconds();
      });
    } else if (sc === 'latency_idle') {
      await withPool(new Pool(a, Math.max(1, a.workers), { immediate: true, latency: true }), async (pool) => {
        await pool.waitReady();
        const tFirst = nowS();
        for (let i = 0; i < n; i++) {
          await queue.add('noop', make());
          await pool.waitCount(i + 1, Math.min(a.timeout, 30));
          await sleep(IDLE_GAP_MS);
        }
        seconds = nowS() - tFirst;
        const samples = pool.latencies();
        lat = summarizeMs(samples);
        extra.samples = samples.length;
      });
    }
  } finally {
    await withTimeout(queue.close(), CONNECT_TIMEOUT_MS, 'closing the queue').catch((e) => log(String(e)));
  }
  return Object.assign(out, {
    jobs: n,
    seconds: Math.round(seconds * 1e6) / 1e6,
    jobs_per_second: seconds > 0 ? Math.round((n / seconds) * 10) / 10 : null,
    latency_ms: lat,
    cost: workerCpu === null ? null : {
      redis_commands_per_job: null, redis_script_calls_per_job: null, redis_cpu_us_per_job: null,
      server_cpu_us_per_job: null, worker_cpu_us_per_job: Math.round((workerCpu / n) * 1e8) / 100,
    },
    versions: versions(),
    notes: notes(a),
    extra,
  });
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv[0] === 'worker') { await runWorker(parseArgs(argv.slice(1))); return; }
  let a;
  try { a = parseArgs(argv); } catch (e) {
    process.stdout.write(JSON.stringify({ system: 'bullmq', scenario: null, error: String(e) }) + '\n');
    process.exit(2);
  }
  // The driver's timeout may SIGTERM us: stop the workers first.
  process.on('SIGTERM', async () => {
    for (const p of activePools) await p.stop();
    process.stdout.write(JSON.stringify({ system: 'bullmq', scenario: a.scenario, error: 'Terminated: SIGTERM' }) + '\n');
    process.exit(143);
  });
  try {
    const result = await runScenario(a);
    process.stdout.write(JSON.stringify(result) + '\n');
    process.exit(0); // do not wait for ioredis sockets to drain
  } catch (e) {
    log(e && e.stack ? e.stack : String(e));
    process.stdout.write(JSON.stringify({ system: 'bullmq', scenario: a.scenario, error: String(e) }) + '\n');
    process.exit(1);
  }
}

await main();
