// The client and the worker against the real `jobq serve --auth` over mTLS (certificates made
// by openssl): the bootstrap admin token, scoped tokens made with CreateToken, and the
// refusals the server sends for a missing, unknown or out-of-scope token.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { TokenRole } from "../gen/jobqueue/v1/job_queue_service.js";
import {
  Client,
  QueueNotAllowedError,
  RoleNotAllowedError,
  TokenInvalidError,
  TokenMissingError,
  UnavailableError,
  Worker,
  consoleLogger,
  fromServiceError,
  type ClientOptions,
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

  function createToken(role: TokenRole, queues: string[]): Promise<string> {
    return new Promise((resolve, reject) =>
      admin.raw.createToken({ name: "node-test", role, queues, ttl: undefined }, (error, response) =>
        error ? reject(fromServiceError(error)) : resolve(response.token),
      ),
    );
  }

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
    const producerToken = await createToken(TokenRole.TOKEN_ROLE_PRODUCER, [queue]);
    const workerToken = await createToken(TokenRole.TOKEN_ROLE_WORKER, [queue]);
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
});
