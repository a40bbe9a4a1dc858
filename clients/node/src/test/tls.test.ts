// TLS, mTLS and the bearer token, against in-test grpc-js servers with certificates made by
// openssl: what reaches the server (the `authorization` header of unary calls, of the
// EnqueueStream and of the Lease stream), which handshakes fail, the JOBQ_* variables, the
// configuration errors at construction, and the classes of the server's auth refusals.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { InterceptingCall, ServerCredentials, status as GrpcStatus, type Interceptor } from "@grpc/grpc-js";

import {
  Client,
  ENV,
  InvalidArgumentError,
  PermissionDeniedError,
  QueueNotAllowedError,
  RoleNotAllowedError,
  TokenExpiredError,
  TokenInvalidError,
  TokenMissingError,
  UnauthenticatedError,
  UnavailableError,
  Worker,
  consoleLogger,
  type ClientOptions,
  type WorkerOptions,
} from "../index.js";
import { AuthServer } from "./helpers/auth-server.js";
import { SERVER_NAME, makePki, type Pki } from "./helpers/certs.js";
import { waitUntil } from "./helpers/wait.js";

const TOKEN = "jq_t0ken_s3cret";
const BEARER = `Bearer ${TOKEN}`;
const quiet = consoleLogger("silent");
const opened: { close(): unknown }[] = [];

/**
 * Runs `make` with exactly `variables` among the JOBQ_* ones (the developer's shell may set
 * others), then puts them back. Clients and workers read the environment only when built.
 */
function withEnv<T>(variables: Record<string, string>, make: () => T): T {
  const names = Object.values(ENV);
  const saved = names.map((name) => [name, process.env[name]] as const);
  for (const name of names) delete process.env[name];
  Object.assign(process.env, variables);
  try {
    return make();
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

function client(target: string, options: ClientOptions = {}, env: Record<string, string> = {}): Client {
  const made = withEnv(env, () => new Client(target, { timeoutMs: 5_000, ...options }));
  opened.push(made);
  return made;
}

function worker(target: string | Client, options: WorkerOptions = {}, env: Record<string, string> = {}): Worker {
  return withEnv(env, () =>
    new Worker(target, { queues: ["emails"], logger: quiet, ...options }).handle("emails", async () => ({})),
  );
}

/** Runs the worker until the server has seen its Lease stream, then stops it; resolves with how `run` ended. */
async function leaseOnce(server: AuthServer, subject: Worker): Promise<void> {
  const seen = server.headersOf("Lease").length;
  const stop = new AbortController();
  const running = subject.run({ signal: stop.signal });
  await Promise.race([running, waitUntil(() => server.headersOf("Lease").length > seen, "the Lease stream")]);
  stop.abort();
  await running;
}

/** Asserts that the call failed before reaching the server: the handshake refused it. */
async function refusedHandshake(server: AuthServer, call: Promise<unknown>, pattern?: RegExp): Promise<void> {
  const seen = server.received.length;
  await assert.rejects(call, (error: unknown) => {
    assert.ok(error instanceof UnavailableError, `not an UnavailableError: ${String(error)}`);
    if (pattern !== undefined) assert.match(error.message, pattern);
    return true;
  });
  assert.equal(server.received.length, seen, "the call reached the server");
}

let pki: Pki;

before(() => {
  pki = makePki();
});

after(async () => {
  await Promise.all(opened.map((made) => made.close()));
  pki?.remove();
});

describe("the token over plaintext", { timeout: 60_000 }, () => {
  let server: AuthServer;

  before(async () => {
    server = await AuthServer.start({
      requireToken: true,
      refusals: {
        "Bearer jq_expired_x": { code: GrpcStatus.UNAUTHENTICATED, reason: "TOKEN_EXPIRED" },
        "Bearer jq_revoked_x": { code: GrpcStatus.UNAUTHENTICATED, reason: "TOKEN_INVALID" },
        "Bearer jq_producer_x": { code: GrpcStatus.PERMISSION_DENIED, reason: "ROLE_NOT_ALLOWED" },
        "Bearer jq_elsewhere_x": { code: GrpcStatus.PERMISSION_DENIED, reason: "QUEUE_NOT_ALLOWED", field: "queue" },
      },
    });
  });

  after(() => server?.stop());

  test("every call carries it: unary calls, the enqueue stream, the Lease stream, calls on raw", async () => {
    const producer = client(server.target(), { token: TOKEN });
    await producer.stats();
    const { jobId } = await producer.enqueue("emails", { to: "a@example.com" });
    assert.equal(jobId, "emails:1-0", "answered on the EnqueueStream");
    await new Promise<void>((resolve, reject) => producer.raw.listTokens({}, (error) => (error ? reject(error) : resolve())));
    await leaseOnce(server, worker(server.target(), { token: TOKEN }));
    await leaseOnce(server, worker(producer)); // a Worker on a Client uses the Client's channel
    assert.deepEqual(server.headersOf("Stats"), [BEARER]);
    assert.deepEqual(server.headersOf("EnqueueStream"), [BEARER]);
    assert.deepEqual(server.headersOf("ListTokens"), [BEARER]);
    assert.deepEqual(server.headersOf("Lease"), [BEARER, BEARER]);
  });

  test("the caller's interceptors, or interceptor providers, run beside the token's and see it", async () => {
    const seen: (string | undefined)[] = [];
    const recording: Interceptor = (options, nextCall) =>
      new InterceptingCall(nextCall(options), {
        start: (metadata, listener, next) => {
          seen.push(metadata.get("authorization")[0]?.toString());
          next(metadata, listener);
        },
      });
    await client(server.target(), { token: TOKEN, channelOptions: { interceptors: [recording] } }).stats();
    await client(server.target(), { token: TOKEN, channelOptions: { interceptor_providers: [() => recording] } }).stats();
    assert.deepEqual(seen, [BEARER, BEARER]);
    assert.deepEqual(server.headersOf("Stats").slice(-2), [BEARER, BEARER]);
  });

  test("a call without a token is refused with TokenMissingError", async () => {
    await assert.rejects(client(server.target()).stats(), (error: unknown) => {
      assert.ok(error instanceof TokenMissingError, String(error));
      assert.ok(error instanceof UnauthenticatedError);
      assert.equal(error.reason, "TOKEN_MISSING");
      assert.equal(error.code, GrpcStatus.UNAUTHENTICATED);
      return true;
    });
  });

  test("the server's refusals of a token map to their classes, with the reason and the field", async () => {
    await assert.rejects(client(server.target(), { token: "jq_expired_x" }).stats(), (error: unknown) => {
      assert.ok(error instanceof TokenExpiredError && error instanceof UnauthenticatedError, String(error));
      assert.equal(error.reason, "TOKEN_EXPIRED");
      return true;
    });
    const elsewhere = client(server.target(), { token: "jq_elsewhere_x" });
    for (const call of [() => elsewhere.stats("payroll"), () => elsewhere.enqueue("payroll", {})]) {
      await assert.rejects(call(), (error: unknown) => {
        assert.ok(error instanceof QueueNotAllowedError && error instanceof PermissionDeniedError, String(error));
        assert.equal(error.reason, "QUEUE_NOT_ALLOWED");
        assert.equal(error.code, GrpcStatus.PERMISSION_DENIED);
        assert.equal(error.field, "queue");
        return true;
      });
    }
  });

  test("a worker whose token is refused stops with the error instead of reconnecting", async () => {
    const cases = [
      ["jq_revoked_x", TokenInvalidError],
      ["jq_producer_x", RoleNotAllowedError],
    ] as const;
    for (const [token, type] of cases) {
      const before = server.headersOf("Lease").length;
      const refused = worker(server.target(), { token, reconnect: { baseMs: 1, capMs: 1 } });
      await assert.rejects(refused.run(), type);
      assert.equal(server.headersOf("Lease").length, before + 1, "one Lease stream, no reconnect");
    }
  });
});

describe("TLS", { timeout: 60_000 }, () => {
  let server: AuthServer;

  before(async () => {
    const credentials = ServerCredentials.createSsl(null, [{ private_key: pki.read(pki.serverKey), cert_chain: pki.read(pki.serverCert) }]);
    server = await AuthServer.start({ credentials });
  });

  after(() => server?.stop());

  test("verified by the CA file, calls and the Lease stream carry the token", async () => {
    await client(server.target("localhost"), { caFile: pki.ca, token: TOKEN }).stats();
    await leaseOnce(server, worker(server.target("localhost"), { caFile: pki.ca, token: TOKEN }));
    await client(server.target("localhost"), { caFile: pki.ca }).stats();
    assert.deepEqual(server.headersOf("Stats"), [BEARER, undefined]);
    assert.deepEqual(server.headersOf("Lease"), [BEARER]);
  });

  test("a CA that did not sign the server's certificate fails the handshake", async () => {
    await refusedHandshake(server, client(server.target("localhost"), { caFile: pki.otherCa }).stats(), /verify/);
  });

  test("the system's roots do not know the test CA", async () => {
    await refusedHandshake(server, client(server.target("localhost"), { tls: true }).stats(), /verify/);
  });

  test("a target given as an IP address needs the server name", async () => {
    await refusedHandshake(server, client(server.target("127.0.0.1"), { caFile: pki.ca }).stats(), /altnames/);
    await client(server.target("127.0.0.1"), { caFile: pki.ca, serverName: SERVER_NAME }).stats();
  });

  test("JOBQ_TLS=1 verifies with the system's roots (here with NODE_EXTRA_CA_CERTS)", async () => {
    const env = { JOBQ_TLS: "1", JOBQ_TOKEN: TOKEN, TARGET: server.target("localhost") };
    assert.equal(await statsInChild({ ...env, NODE_EXTRA_CA_CERTS: pki.ca }), "ok");
    assert.match(await statsInChild(env), /^UnavailableError: .*(certificate|verify)/i);
    assert.deepEqual(server.headersOf("Stats").slice(-1), [BEARER], "one call went through");
  });
});

describe("mTLS", { timeout: 60_000 }, () => {
  let server: AuthServer;

  before(async () => {
    const identity = { private_key: pki.read(pki.serverKey), cert_chain: pki.read(pki.serverCert) };
    server = await AuthServer.start({ credentials: ServerCredentials.createSsl(pki.read(pki.ca), [identity], true) });
  });

  after(() => server?.stop());

  test("without a client certificate the handshake fails", async () => {
    await refusedHandshake(server, client(server.target("localhost"), { caFile: pki.ca }).stats());
  });

  test("a client certificate from another CA is refused", async () => {
    const options = { caFile: pki.ca, certFile: pki.strangerCert, keyFile: pki.strangerKey };
    await refusedHandshake(server, client(server.target("localhost"), options).stats());
  });

  test("with the client certificate, calls and the Lease stream go through with the token", async () => {
    const options = { caFile: pki.ca, certFile: pki.clientCert, keyFile: pki.clientKey, token: TOKEN };
    await client(server.target("localhost"), options).stats();
    await leaseOnce(server, worker(server.target("localhost"), options));
    assert.deepEqual(server.headersOf("Stats"), [BEARER]);
    assert.deepEqual(server.headersOf("Lease"), [BEARER]);
  });

  test("the JOBQ_* variables alone configure a Client and a Worker", async () => {
    const env = {
      JOBQ_TOKEN: "jq_from_env\n", // as `$(cat file)` would not strip it in a unit file
      JOBQ_TLS_CA: pki.ca,
      JOBQ_TLS_CLIENT_CERT: pki.clientCert,
      JOBQ_TLS_CLIENT_KEY: pki.clientKey,
      JOBQ_TLS_SERVER_NAME: SERVER_NAME,
    };
    await client(server.target("127.0.0.1"), {}, env).stats();
    await leaseOnce(server, worker(server.target("127.0.0.1"), {}, env));
    assert.deepEqual(server.headersOf("Stats").slice(-1), ["Bearer jq_from_env"]);
    assert.deepEqual(server.headersOf("Lease").slice(-1), ["Bearer jq_from_env"]);
  });

  test("an option wins over its variable", async () => {
    const env = { JOBQ_TOKEN: "jq_from_env", JOBQ_TLS_CA: pki.otherCa, JOBQ_TLS_CLIENT_CERT: pki.strangerCert, JOBQ_TLS_CLIENT_KEY: pki.strangerKey };
    const options = { token: "jq_from_option", caFile: pki.ca, certFile: pki.clientCert, keyFile: pki.clientKey };
    await client(server.target("localhost"), options, env).stats();
    await client(server.target("localhost"), { ...options, token: "" }, env).stats();
    assert.deepEqual(server.headersOf("Stats").slice(-2), ["Bearer jq_from_option", undefined]);
  });
});

describe("plaintext whatever the environment says", () => {
  test("tls: false ignores the TLS variables", async () => {
    const server = await AuthServer.start();
    try {
      const env = { JOBQ_TLS: "1", JOBQ_TLS_CA: "/nonexistent/ca.pem", JOBQ_TLS_SERVER_NAME: SERVER_NAME, JOBQ_TOKEN: TOKEN };
      await client(server.target(), { tls: false }, env).stats();
      assert.deepEqual(server.headersOf("Stats"), [BEARER]);
    } finally {
      server.stop();
    }
  });
});

describe("configuration errors at construction", () => {
  /** Asserts that building throws an InvalidArgumentError naming `field`, with `words` in its message. */
  function refused(make: () => unknown, field: string, ...words: string[]): void {
    assert.throws(make, (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError, String(error));
      assert.equal(error.field, field);
      for (const word of words) assert.ok(error.message.includes(word), `${JSON.stringify(error.message)} lacks ${word}`);
      return true;
    });
  }
  const build = (options: ClientOptions, env: Record<string, string> = {}) => () => client("localhost:1", options, env);

  test("a client certificate without its key, or a key without its certificate", () => {
    refused(build({ certFile: pki.clientCert }), "certFile", pki.clientCert, "keyFile");
    refused(build({ keyFile: pki.clientKey }), "keyFile", pki.clientKey, "certFile");
    refused(build({}, { JOBQ_TLS_CLIENT_CERT: pki.clientCert }), "JOBQ_TLS_CLIENT_CERT", "JOBQ_TLS_CLIENT_KEY");
    refused(build({}, { JOBQ_TLS_CLIENT_KEY: pki.clientKey }), "JOBQ_TLS_CLIENT_KEY", "JOBQ_TLS_CLIENT_CERT");
    refused(() => worker("localhost:1", { certFile: pki.clientCert }), "certFile", "keyFile");
  });

  test("a file that cannot be read is named", () => {
    const missing = `${pki.dir}/missing.pem`;
    refused(build({ caFile: missing }), "caFile", missing, "ENOENT");
    refused(build({}, { JOBQ_TLS_CA: missing }), "JOBQ_TLS_CA", missing);
    refused(build({ caFile: pki.dir }), "caFile", pki.dir, "EISDIR");
    refused(build({ certFile: missing, keyFile: pki.clientKey }), "certFile", missing);
    refused(build({}, { JOBQ_TLS_CLIENT_CERT: pki.clientCert, JOBQ_TLS_CLIENT_KEY: missing }), "JOBQ_TLS_CLIENT_KEY", missing);
    refused(() => worker("localhost:1", { caFile: missing }), "caFile", missing);
  });

  test("a file that holds the wrong thing is named", () => {
    refused(build({ caFile: pki.clientKey }), "caFile", pki.clientKey, "no PEM certificate");
    refused(build({ certFile: pki.clientCert, keyFile: pki.strangerKey }), "certFile", pki.clientCert, pki.strangerKey, "mismatch");
  });

  test("settings that contradict each other or need TLS", () => {
    refused(build({ serverName: SERVER_NAME }), "serverName", "needs TLS");
    refused(build({}, { JOBQ_TLS_SERVER_NAME: SERVER_NAME }), "JOBQ_TLS_SERVER_NAME", "needs TLS");
    refused(build({ tls: false, caFile: pki.ca }), "caFile", "tls is false");
    refused(build({}, { JOBQ_TLS: "yes" }), "JOBQ_TLS", "1, true, 0 or false");
  });

  test("a token that cannot be a header value, without showing it", () => {
    for (const token of ["jq_a b", "jq_a\nb", "jq_ü"]) {
      refused(build({ token }), "token", "printable ASCII");
      assert.throws(build({ token }), (error: Error) => !error.message.includes(token));
    }
    refused(build({}, { JOBQ_TOKEN: "jq_a b" }), "JOBQ_TOKEN");
  });

  test("plaintext and TLS from the variables' values alone build without error", () => {
    build({}, { JOBQ_TLS: "0", JOBQ_TOKEN: "" })();
    build({}, { JOBQ_TLS: "true" })();
    build({ tls: true, serverName: SERVER_NAME })();
  });
});

const INDEX = new URL("../index.js", import.meta.url).href;
/** A producer in a process of its own (NODE_EXTRA_CA_CERTS is read at start): "ok" or the error. */
const STATS_SCRIPT = `
import { Client } from ${JSON.stringify(INDEX)};
const client = new Client(process.env.TARGET, { timeoutMs: 5000 });
try { await client.stats(); console.log("ok"); }
catch (error) { console.log(error.name + ": " + error.message.replaceAll("\\n", " ")); }
finally { await client.close(); }
`;

async function statsInChild(variables: Record<string, string>): Promise<string> {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const name of [...Object.values(ENV), "NODE_EXTRA_CA_CERTS", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "NODE_TEST_CONTEXT"]) delete env[name];
  const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", STATS_SCRIPT], {
    env: { ...env, ...variables },
    cwd: fileURLToPath(new URL(".", import.meta.url)),
    timeout: 30_000,
  });
  return stdout.trim();
}
