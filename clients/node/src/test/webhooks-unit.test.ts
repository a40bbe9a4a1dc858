// Webhook options to CreateWebhookRequest messages and Webhook messages back, without a real
// server: what is refused before sending, how the stored fields read, and the client's calls
// against an in-test server (the requests it sends, the errors it maps).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { status as GrpcStatus, type sendUnaryData, type ServerUnaryCall } from "@grpc/grpc-js";

import {
  Client,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  ResourceExhaustedError,
  WebhookLimitReachedError,
  WebhookNotFoundError,
  type CreateWebhookOptions,
} from "../index.js";
import { createWebhookRequest, webhookInfo } from "../convert.js";
import type {
  CreateWebhookRequest,
  CreateWebhookResponse,
  DeleteWebhookRequest,
  DeleteWebhookResponse,
  ListWebhooksResponse,
  Webhook as ProtoWebhook,
} from "../gen/jobqueue/v1/job_queue_service.js";
import { refusal } from "./helpers/auth-server.js";
import { FakeServer } from "./helpers/fake-server.js";

const invalid = (field: string) => (error: unknown) => {
  assert.ok(error instanceof InvalidArgumentError, String(error));
  assert.equal(error.field, field, error.message);
  assert.equal(error.reason, "INVALID_ARGUMENT");
  return true;
};

const CREATED = new Date("2030-01-02T03:04:05.678Z");

/** A stored webhook as the server would send it. */
function stored(overrides: Partial<ProtoWebhook> = {}): ProtoWebhook {
  return {
    id: "01HZZZWEBHOOK",
    url: "https://alerts.example.com/jobq",
    queue: "",
    oldestJobAge: undefined,
    deadJobs: 0,
    allowPrivateNetwork: false,
    createTime: CREATED,
    ...overrides,
  };
}

describe("webhook requests", () => {
  test("a URL alone: every queue, no thresholds, public addresses only", () => {
    assert.deepEqual(createWebhookRequest("https://alerts.example.com/jobq"), {
      webhook: {
        id: "",
        url: "https://alerts.example.com/jobq",
        queue: "",
        oldestJobAge: undefined,
        deadJobs: 0,
        allowPrivateNetwork: false,
        createTime: undefined,
      },
    });
  });

  test("every option maps to its field; ms become a Duration; call options are not sent", () => {
    const controller = new AbortController();
    const request = createWebhookRequest("http://127.0.0.1:8080/hooks", {
      queue: "emails",
      oldestJobAgeMs: 90_500,
      deadJobs: 25,
      allowPrivateNetwork: true,
      timeoutMs: 5_000,
      signal: controller.signal,
    });
    assert.deepEqual(request, {
      webhook: {
        id: "",
        url: "http://127.0.0.1:8080/hooks",
        queue: "emails",
        oldestJobAge: { seconds: 90, nanos: 500_000_000 },
        deadJobs: 25,
        allowPrivateNetwork: true,
        createTime: undefined,
      },
    });
  });

  test("what the server checks is sent as given (it names the field the same way)", () => {
    // A malformed URL, a queue outside the grammar, an age out of range, a negative count.
    const request = createWebhookRequest("ftp://x", { queue: "not a queue!", oldestJobAgeMs: 0, deadJobs: -1 });
    assert.equal(request.webhook?.url, "ftp://x");
    assert.equal(request.webhook?.queue, "not a queue!");
    assert.deepEqual(request.webhook?.oldestJobAge, { seconds: 0, nanos: 0 });
    assert.equal(request.webhook?.deadJobs, -1);
  });

  test("what the wire could not carry is refused before sending, naming the field", () => {
    const cases: [unknown, CreateWebhookOptions, string][] = [
      [42, {}, "webhook.url"],
      [undefined, {}, "webhook.url"],
      ["https://x", { queue: 7 as unknown as string }, "webhook.queue"],
      ["https://x", { oldestJobAgeMs: -1 }, "webhook.oldest_job_age"],
      ["https://x", { oldestJobAgeMs: Number.NaN }, "webhook.oldest_job_age"],
      ["https://x", { oldestJobAgeMs: Infinity }, "webhook.oldest_job_age"],
      ["https://x", { deadJobs: 2.5 }, "webhook.dead_jobs"],
      ["https://x", { deadJobs: 2 ** 60 }, "webhook.dead_jobs"],
      ["https://x", { deadJobs: "10" as unknown as number }, "webhook.dead_jobs"],
      ["https://x", { allowPrivateNetwork: "yes" as unknown as boolean }, "webhook.allow_private_network"],
    ];
    for (const [url, options, field] of cases) {
      assert.throws(() => createWebhookRequest(url as string, options), invalid(field), `${String(url)} ${JSON.stringify(options)}`);
    }
  });
});

describe("stored webhooks", () => {
  test("a webhook for every queue without thresholds reads without queue and age", () => {
    const read = webhookInfo(stored());
    assert.deepEqual(read, {
      id: "01HZZZWEBHOOK",
      url: "https://alerts.example.com/jobq",
      deadJobs: 0,
      allowPrivateNetwork: false,
      createTime: CREATED,
    });
    assert.ok(!("queue" in read), "undefined: every queue");
    assert.ok(!("oldestJobAgeMs" in read), "undefined: no age alert");
    assert.ok(read.createTime instanceof Date);
  });

  test("a queue, thresholds and private network read back; the age in ms", () => {
    const read = webhookInfo(
      stored({ queue: "emails", oldestJobAge: { seconds: 300, nanos: 250_000_000 }, deadJobs: 100, allowPrivateNetwork: true }),
    );
    assert.equal(read.queue, "emails");
    assert.equal(read.oldestJobAgeMs, 300_250);
    assert.equal(read.deadJobs, 100);
    assert.equal(read.allowPrivateNetwork, true);
  });

  test("a webhook without a create time is an InternalError", () => {
    assert.throws(() => webhookInfo(stored({ createTime: undefined })), InternalError);
  });
});

describe("webhook calls", () => {
  test("the client refuses bad options without a server", async () => {
    const offline = new Client("127.0.0.1:9", { timeoutMs: 1_000, batching: false });
    try {
      await assert.rejects(offline.createWebhook("https://x", { oldestJobAgeMs: -5 }), invalid("webhook.oldest_job_age"));
      await assert.rejects(offline.createWebhook("https://x", { deadJobs: 0.5 }), invalid("webhook.dead_jobs"));
    } finally {
      await offline.close();
    }
  });

  test("create, list and delete send the contract's requests and read its responses", async () => {
    const received: { create: CreateWebhookRequest[]; delete: DeleteWebhookRequest[]; lists: number } = {
      create: [],
      delete: [],
      lists: 0,
    };
    const server = await FakeServer.start({
      createWebhook: (call: ServerUnaryCall<CreateWebhookRequest, CreateWebhookResponse>, callback: sendUnaryData<CreateWebhookResponse>) => {
        received.create.push(call.request);
        callback(null, { secret: "s3cret", webhook: { ...call.request.webhook!, id: "01HW", createTime: CREATED } });
      },
      listWebhooks: (_: unknown, callback: sendUnaryData<ListWebhooksResponse>) => {
        received.lists += 1;
        callback(null, { webhooks: [stored(), stored({ id: "01HX", queue: "emails", deadJobs: 3 })] });
      },
      deleteWebhook: (call: ServerUnaryCall<DeleteWebhookRequest, DeleteWebhookResponse>, callback: sendUnaryData<DeleteWebhookResponse>) => {
        received.delete.push(call.request);
        if (call.request.id === "01HW") callback(null, {});
        else callback(refusal({ code: GrpcStatus.NOT_FOUND, reason: "WEBHOOK_NOT_FOUND" }));
      },
    } as never);
    const client = new Client(server.target, { batching: false });
    try {
      const made = await client.createWebhook("http://127.0.0.1:8080/h", { queue: "emails", oldestJobAgeMs: 2_000, allowPrivateNetwork: true });
      assert.equal(made.secret, "s3cret");
      assert.deepEqual(made.webhook, {
        id: "01HW",
        url: "http://127.0.0.1:8080/h",
        queue: "emails",
        oldestJobAgeMs: 2_000,
        deadJobs: 0,
        allowPrivateNetwork: true,
        createTime: CREATED,
      });
      assert.deepEqual(received.create[0]?.webhook?.oldestJobAge, { seconds: 2, nanos: 0 });

      const listed = await client.listWebhooks();
      assert.deepEqual(
        listed.map((w) => [w.id, w.queue, w.deadJobs]),
        [
          ["01HZZZWEBHOOK", undefined, 0],
          ["01HX", "emails", 3],
        ],
      );
      assert.equal(received.lists, 1);

      await client.deleteWebhook("01HW");
      await assert.rejects(client.deleteWebhook("gone"), (error: unknown) => {
        assert.ok(error instanceof WebhookNotFoundError, String(error));
        assert.ok(error instanceof NotFoundError);
        assert.equal(error.reason, "WEBHOOK_NOT_FOUND");
        assert.equal(error.codeName, "NOT_FOUND");
        return true;
      });
      assert.deepEqual(
        received.delete.map((request) => request.id),
        ["01HW", "gone"],
      );
    } finally {
      await client.close();
      server.stop();
    }
  });

  test("a refusal past the limit is a WebhookLimitReachedError; a response without its webhook an InternalError", async () => {
    let full = true;
    const server = await FakeServer.start({
      createWebhook: (_: unknown, callback: sendUnaryData<CreateWebhookResponse>) => {
        if (full) callback(refusal({ code: GrpcStatus.RESOURCE_EXHAUSTED, reason: "WEBHOOK_LIMIT_REACHED" }));
        else callback(null, { secret: "s", webhook: undefined });
      },
    } as never);
    const client = new Client(server.target, { batching: false });
    try {
      await assert.rejects(client.createWebhook("https://alerts.example.com/jobq"), (error: unknown) => {
        assert.ok(error instanceof WebhookLimitReachedError, String(error));
        assert.ok(error instanceof ResourceExhaustedError);
        assert.equal(error.reason, "WEBHOOK_LIMIT_REACHED");
        return true;
      });
      full = false;
      await assert.rejects(client.createWebhook("https://alerts.example.com/jobq"), InternalError);
    } finally {
      await client.close();
      server.stop();
    }
  });
});
