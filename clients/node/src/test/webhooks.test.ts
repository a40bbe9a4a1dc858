// Webhooks against the real `jobq serve` and a local HTTP receiver (node:http on 127.0.0.1):
// create, list and delete read and change them as the contract says, a private endpoint needs
// allowPrivateNetwork, and a job that dies is POSTed to the receiver, signed with the secret.

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";

import {
  Client,
  InvalidArgumentError,
  NonRetryableError,
  NotFoundError,
  Worker,
  WebhookNotFoundError,
  consoleLogger,
  type Webhook,
} from "../index.js";
import { TestServer, serverSkipReason } from "./helpers/server.js";
import { uniqueQueue, waitUntil } from "./helpers/wait.js";

const skip = serverSkipReason();
if (skip !== undefined) console.log(`skipping webhook integration tests: ${skip}`);

/** The server looks for events to deliver this often (default 2 s). */
const DISPATCH_INTERVAL_S = "0.1";
/** Longest wait for a delivery: a few passes, and more than the default interval. */
const DELIVERY_WAIT_MS = 15_000;

interface Post {
  path: string;
  headers: IncomingHttpHeaders;
  /** The raw body, as signed. */
  body: Buffer;
}

/** An HTTP endpoint on 127.0.0.1 that records every POST and answers 204. */
class Receiver {
  readonly posts: Post[] = [];
  private constructor(private readonly server: Server) {}

  static async start(): Promise<Receiver> {
    const server = createServer();
    const receiver = new Receiver(server);
    server.on("request", (request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        if (request.method === "POST") receiver.posts.push({ path: request.url ?? "", headers: request.headers, body: Buffer.concat(chunks) });
        response.writeHead(request.method === "POST" ? 204 : 405).end();
      });
    });
    await new Promise<void>((listening, fail) => {
      server.once("error", fail);
      server.listen(0, "127.0.0.1", () => listening());
    });
    return receiver;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  url(path = "/hooks/jobqueue"): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((closed) => this.server.close(() => closed()));
  }
}

/** `sha256=<hex of HMAC-SHA256(secret, "<timestamp>.<raw body>")>`, as the contract signs deliveries. */
function signature(secret: string, timestamp: string, body: Buffer): string {
  return `sha256=${createHmac("sha256", secret).update(`${timestamp}.`).update(body).digest("hex")}`;
}

describe("webhooks against a real server", { skip, timeout: 120_000 }, () => {
  let server: TestServer;
  let client: Client;
  let receiver: Receiver;
  const created = new Set<string>();

  before(async () => {
    server = await TestServer.start({ env: { JOBQ_WEBHOOK_INTERVAL_SECONDS: DISPATCH_INTERVAL_S } });
    client = await Client.connect(server.target);
    receiver = await Receiver.start();
  });

  after(async () => {
    // Leave no webhook delivering while the receiver and the server stop.
    await Promise.allSettled([...created].map((id) => client?.deleteWebhook(id)));
    await client?.close();
    await receiver?.stop();
    await server?.stop();
  });

  /** The InvalidArgumentError check for `field`. */
  const invalid = (field: string) => (error: unknown) => {
    assert.ok(error instanceof InvalidArgumentError, String(error));
    assert.equal(error.field, field, error.message);
    assert.equal(error.reason, "INVALID_ARGUMENT");
    return true;
  };

  /** The WebhookNotFoundError check. */
  const notFound = (error: unknown) => {
    assert.ok(error instanceof WebhookNotFoundError, String(error));
    assert.ok(error instanceof NotFoundError);
    assert.equal(error.reason, "WEBHOOK_NOT_FOUND");
    assert.equal(error.codeName, "NOT_FOUND");
    return true;
  };

  test("a dead job is POSTed to the webhook, signed with its secret; delete removes it", async () => {
    const queue = uniqueQueue("node-hook");
    const start = Date.now();
    const { secret, webhook } = await client.createWebhook(receiver.url(), { queue, allowPrivateNetwork: true });
    created.add(webhook.id);
    assert.ok(secret.length >= 32, "a secret worth its name");
    assert.ok(webhook.id !== "", "the server sets the id");
    assert.equal(webhook.url, receiver.url());
    assert.equal(webhook.queue, queue);
    assert.equal(webhook.oldestJobAgeMs, undefined);
    assert.equal(webhook.deadJobs, 0);
    assert.equal(webhook.allowPrivateNetwork, true);
    assert.ok(webhook.createTime instanceof Date);
    assert.ok(Math.abs(webhook.createTime.getTime() - start) < 60_000, webhook.createTime.toISOString());

    const listed = (await client.listWebhooks()).find((w) => w.id === webhook.id);
    assert.deepEqual(listed, webhook, "listWebhooks describes it as created, without the secret");

    // A job that fails once, for good, dies.
    const stop = new AbortController();
    const worker = new Worker(client, { queues: [queue], logger: consoleLogger("error"), gracePeriodMs: 5_000 }).handle(queue, async () => {
      throw new NonRetryableError("the payload is wrong");
    });
    const running = worker.run({ signal: stop.signal });
    let jobId: string;
    try {
      ({ jobId } = await client.enqueue(queue, { order: 42 }, { maxAttempts: 1 }));
      const dead = await client.waitFor(jobId, { timeoutMs: 10_000 });
      assert.equal(dead.state, "dead");
    } finally {
      stop.abort();
      await running;
    }

    const post = await waitUntil(
      () => receiver.posts.find((p) => p.headers["jobqueue-event"] === "job.dead"),
      "the job.dead delivery",
      DELIVERY_WAIT_MS,
    );
    assert.equal(post.path, "/hooks/jobqueue");
    assert.match(String(post.headers["content-type"]), /^application\/json/);
    const timestamp = String(post.headers["jobqueue-timestamp"]);
    assert.match(timestamp, /^\d+$/);
    assert.ok(Math.abs(Number(timestamp) - Date.now() / 1000) < 300, "a recent timestamp");
    assert.equal(post.headers["jobqueue-signature"], signature(secret, timestamp, post.body), "signed over <timestamp>.<raw body>");
    assert.notEqual(post.headers["jobqueue-signature"], signature("another secret", timestamp, post.body));
    assert.ok(String(post.headers["jobqueue-delivery"] ?? "") !== "", "a delivery id to deduplicate by");
    const event = JSON.parse(post.body.toString("utf8")) as { event: string; queue: string; webhook_id: string; job: { id: string; state: string } };
    assert.equal(event.event, "job.dead");
    assert.equal(event.queue, queue);
    assert.equal(event.webhook_id, webhook.id);
    assert.equal(event.job.id, jobId);
    assert.equal(event.job.state, "JOB_STATE_DEAD");

    await client.deleteWebhook(webhook.id);
    created.delete(webhook.id);
    assert.equal((await client.listWebhooks()).find((w) => w.id === webhook.id), undefined, "gone from the list");
    await assert.rejects(client.deleteWebhook(webhook.id), notFound);
  });

  test("an endpoint on a private address is refused without allowPrivateNetwork, naming webhook.url", async () => {
    const ids = (webhooks: Webhook[]): string[] => webhooks.map((w) => w.id);
    const existing = ids(await client.listWebhooks());
    await assert.rejects(client.createWebhook(receiver.url()), invalid("webhook.url"));
    await assert.rejects(client.createWebhook(receiver.url(), { allowPrivateNetwork: false }), invalid("webhook.url"));
    await assert.rejects(client.createWebhook("ftp://127.0.0.1/x", { allowPrivateNetwork: true }), invalid("webhook.url"));
    assert.deepEqual(ids(await client.listWebhooks()), existing, "nothing was created");
  });

  test("thresholds read back as stored; every queue reads as undefined; the server checks their ranges", async () => {
    const { webhook } = await client.createWebhook(receiver.url("/thresholds"), {
      oldestJobAgeMs: 90_000,
      deadJobs: 5,
      allowPrivateNetwork: true,
    });
    created.add(webhook.id);
    assert.equal(webhook.queue, undefined, "every queue");
    assert.equal(webhook.oldestJobAgeMs, 90_000);
    assert.equal(webhook.deadJobs, 5);
    assert.deepEqual((await client.listWebhooks()).find((w) => w.id === webhook.id), webhook);

    await assert.rejects(
      client.createWebhook(receiver.url(), { oldestJobAgeMs: 500, allowPrivateNetwork: true }),
      invalid("webhook.oldest_job_age"),
    );
    await assert.rejects(client.createWebhook(receiver.url(), { deadJobs: -1, allowPrivateNetwork: true }), invalid("webhook.dead_jobs"));
    await assert.rejects(
      client.createWebhook(receiver.url(), { queue: "not a queue!", allowPrivateNetwork: true }),
      invalid("webhook.queue"),
    );

    await client.deleteWebhook(webhook.id);
    created.delete(webhook.id);
    await assert.rejects(client.deleteWebhook("01J0000000000000000000000"), notFound);
  });
});
