// The client and the worker against the real `jobq serve --auth` over mTLS (certificates made
// by openssl): the bootstrap admin token, scoped tokens made with createToken, listed and
// revoked, and the refusals the server sends for a missing, unknown, revoked or out-of-scope
// token.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import {
  Client,
  InvalidArgumentError,
  QueueNotAllowedError,
  PermissionDeniedError,
  RoleNotAllowedError,
  TokenInvalidError,
  TokenMissingError,
  TokenNotFoundError,
  UnavailableError,
  Worker,
  consoleLogger,
  type ClientOptions,
  type TokenRole,
} from "../index.js";
import { SERVER_NAME, makePki, type Pki } from "./helpers/certs.js";
import { TestServer, serverSkipReason } from "./helpers/server.js";
import { uniqueQueue } from "./helpers/wait.js";

const skip = serverSkipReason();
if (skip !== undefined) console.log(`skipping auth integration tests: ${skip}`);

describe("jobq serve --auth over mTLS", { skip, timeout: 120_000 }, () => {
  let pki: Pki;
  let server: TestServer;
  let admin: Client;
  const opened: Client[] = [];

  /** A client over mTLS; the target is 127.0.0.1, so the certificate is checked for SERVER_NAME. */
  function connect(token: string | undefined, options: ClientOptions = {}): Client {
    const tls = { caFile: pki.ca, certFile: pki.clientCert, keyFile: pki.clientKey, serverName: SERVER_NAME };
    const client = new Client(server.target, { ...tls, token: token ?? "", timeoutMs: 5_000, ...options });
    opened.push(client);
    return client;
  }

  async function createToken(role: TokenRole, queues: string[]): Promise<string> {
    return (await admin.createToken("node-test", role, queues)).token;
  }

  /** The InvalidArgumentError check for `field`. */
  const invalid = (field: string) => (error: unknown) => {
    assert.ok(error instanceof InvalidArgumentError, String(error));
    assert.equal(error.field, field);
    return true;
  };

  before(async () => {
    pki = makePki();
    server = await TestServer.start({
      args: ["--auth", "--tls-cert", pki.serverCert, "--tls-key", pki.serverKey, "--tls-client-ca", pki.ca],
    });
    admin = connect(readFileSync(join(server.dataDir, "admin.token"), "utf8"));
  });

  after(async () => {
    await Promise.all(opened.map((client) => client.close()));
    await server?.stop();
    pki?.remove();
  });

  test("the admin token enqueues and reads; no token, an unknown one or no client certificate is refused", async () => {
    const queue = uniqueQueue();
    const { jobId } = await admin.enqueue(queue, { n: 1 });
    assert.equal((await admin.getStatus(jobId)).state, "queued");
    await assert.rejects(connect(undefined).getStatus(jobId), TokenMissingError);
    await assert.rejects(connect("jq_0123456789abcdef_notthesecret").getStatus(jobId), TokenInvalidError);
    await assert.rejects(connect(undefined, { certFile: "", keyFile: "" }).getStatus(jobId), UnavailableError);
  });

  test("a producer token is held to its queues and its role; a worker token runs the job", async () => {
    const queue = uniqueQueue();
    const producerToken = await createToken("producer", [queue]);
    const workerToken = await createToken("worker", [queue]);
    const producer = connect(producerToken);
    const { jobId } = await producer.enqueue(queue, { to: "a@example.com" });
    await assert.rejects(producer.enqueue(uniqueQueue(), {}), (error: unknown) => {
      assert.ok(error instanceof QueueNotAllowedError, String(error));
      assert.equal(error.reason, "QUEUE_NOT_ALLOWED");
      assert.match(error.field ?? "", /queue$/);
      return true;
    });

    const tls = { caFile: pki.ca, certFile: pki.clientCert, keyFile: pki.clientKey, serverName: SERVER_NAME };
    const settings = { ...tls, queues: [queue], logger: consoleLogger("silent") };
    const refused = new Worker(server.target, { ...settings, token: producerToken }).handle(queue, async () => ({}));
    await assert.rejects(refused.run(), RoleNotAllowedError);

    const stop = new AbortController();
    const worker = new Worker(server.target, { ...settings, token: workerToken }).handle(queue, async (payload) => {
      stop.abort(); // the worker drains: this job's ack goes out, then the stream closes
      return { echoed: payload };
    });
    await worker.run({ signal: stop.signal });
    const job = await admin.waitFor(jobId, { timeoutMs: 10_000 });
    assert.equal(job.state, "completed");
    assert.deepEqual(job.result, { echoed: { to: "a@example.com" } });
  });

  test("createToken returns the secret once; listTokens describes each token without it", async () => {
    const queue = uniqueQueue();
    const started = Date.now();
    const made = await admin.createToken("node-list", "producer", [queue, `${queue}.*`]);
    const { token, info } = made;
    assert.ok(token.startsWith(`jq_${info.id}_`), "the token is jq_<id>_<secret>");
    const secret = token.slice(`jq_${info.id}_`.length);
    assert.ok(secret.length >= 16, token);
    assert.equal(info.name, "node-list");
    assert.equal(info.role, "producer");
    assert.deepEqual(info.queues, [queue, `${queue}.*`]);
    assert.ok(info.createTime instanceof Date);
    assert.ok(Math.abs(info.createTime.getTime() - started) < 60_000, `created ${info.createTime.toISOString()}`);
    assert.ok(!("expireTime" in info), "no ttl: no expiry");

    const others = await Promise.all(
      (["worker", "admin"] as const).map((role) => admin.createToken(`node-${role}`, role, [queue])),
    );
    const listed = await admin.listTokens();
    assert.deepEqual(listed.find((t) => t.id === info.id), info);
    for (const other of others) {
      assert.equal(listed.find((t) => t.id === other.info.id)?.role, other.info.role);
    }
    assert.deepEqual(others.map((o) => o.info.role), ["worker", "admin"]);
    assert.ok(
      listed.some((t) => t.role === "admin" && t.queues.includes("*")),
      "the bootstrap admin token is listed",
    );
    assert.deepEqual(listed.map((t) => t.id), listed.map((t) => t.id).sort(), "sorted by id");
    assert.ok(!JSON.stringify(listed).includes(secret), "no secret in the list");
    for (const t of listed) {
      assert.deepEqual(Object.keys(t).sort(), ["createTime", "id", "name", "queues", "role", ...("expireTime" in t ? ["expireTime"] : [])].sort());
    }
    await Promise.all(others.map((o) => admin.revokeToken(o.info.id)));
  });

  test("a producer token works on its queues only; revoked, it is refused at once and gone from the list", async () => {
    const queue = uniqueQueue();
    const { token, info } = await admin.createToken("node-revoke", "producer", [queue]);
    const producer = connect(token);
    const { jobId } = await producer.enqueue(queue, { n: 1 });
    assert.equal((await producer.getStatus(jobId)).state, "queued");
    await assert.rejects(producer.enqueue(uniqueQueue(), {}), QueueNotAllowedError);
    await assert.rejects(producer.listTokens(), RoleNotAllowedError);

    await admin.revokeToken(info.id);
    await assert.rejects(producer.getStatus(jobId), TokenInvalidError);
    await assert.rejects(connect(token).enqueue(queue, { n: 2 }), TokenInvalidError);
    assert.equal((await admin.stats(queue))[0]?.queued, 1, "only the job enqueued before the revocation");
    assert.equal((await admin.listTokens()).find((t) => t.id === info.id), undefined);

    await assert.rejects(admin.revokeToken(info.id), TokenNotFoundError); // revoked already
    await assert.rejects(admin.revokeToken("0123456789abcdef"), (error: unknown) => {
      assert.ok(error instanceof TokenNotFoundError, String(error));
      assert.equal(error.reason, "TOKEN_NOT_FOUND");
      return true;
    });
  });

  test("schedules take an admin token for `*`: producers and queue-scoped admins are refused", async () => {
    const queue = uniqueQueue();
    const name = `${queue}-sched`;
    const info = await admin.createSchedule({ name, everyMs: 3_600_000, queue });
    try {
      assert.equal((await admin.getSchedule(name)).name, name);
      const producer = connect(await createToken("producer", [queue]));
      await assert.rejects(producer.getSchedule(name), RoleNotAllowedError);
      await assert.rejects(producer.createSchedule({ name: `${name}-2`, everyMs: 3_600_000, queue }), RoleNotAllowedError);
      const scoped = connect(await createToken("admin", [queue]));
      for (const call of [
        () => scoped.listSchedules(),
        () => scoped.pauseSchedule(name),
        () => scoped.createSchedule({ name: `${name}-3`, everyMs: 3_600_000, queue }),
      ]) {
        await assert.rejects(call(), (error: unknown) => {
          assert.ok(error instanceof RoleNotAllowedError, String(error)); // as for token methods
          assert.ok(error instanceof PermissionDeniedError);
          return true;
        });
      }
      assert.deepEqual(await admin.getSchedule(name), info, "nothing was changed");
    } finally {
      await admin.deleteSchedule(name);
    }
  });

  test("ttlMs sets expireTime; a zero ttl is the server's InvalidArgumentError, an unknown role the client's", async () => {
    const queue = uniqueQueue();
    const ttlMs = 3_600_000;
    const { token, info } = await admin.createToken("node-ttl", "producer", [queue], { ttlMs });
    assert.ok(info.expireTime instanceof Date);
    assert.equal(info.expireTime.getTime() - info.createTime.getTime(), ttlMs);
    assert.deepEqual((await admin.listTokens()).find((t) => t.id === info.id)?.expireTime, info.expireTime);
    await connect(token).enqueue(queue, {}); // not expired yet

    await assert.rejects(admin.createToken("node-ttl0", "producer", [queue], { ttlMs: 0 }), invalid("ttl"));
    // Refused before sending: a client with no server behind it answers the same.
    const offline = new Client("127.0.0.1:9", { tls: false, token: "", timeoutMs: 1_000 });
    opened.push(offline);
    for (const client of [admin, offline]) {
      await assert.rejects(client.createToken("node-bad", "reader" as TokenRole, [queue]), invalid("role"));
      await assert.rejects(client.createToken("node-bad", "producer", [queue], { ttlMs: -5 }), invalid("ttl"));
    }
  });
});
