// The smallest useful worker: sends "emails", extends leases while it works, retries on
// failure, and stops gracefully on SIGTERM or Ctrl-C.
//
//   JOBQ_TARGET=localhost:50051 node dist/examples/minimal-worker.js
import { NonRetryableError, Worker } from "@jobqueue/client";

interface Email {
  to: string;
  subject: string;
}

const worker = new Worker(process.env["JOBQ_TARGET"] ?? "localhost:50051", { concurrency: 4 });

worker.handle<Email>("emails", async (payload, ctx) => {
  if (!payload.to?.includes("@")) throw new NonRetryableError(`bad address: ${payload.to}`);
  console.log(`job ${ctx.jobId} (attempt ${ctx.attempt}): mailing ${payload.to}`);
  await new Promise((resolve) => setTimeout(resolve, 100)); // the real work, e.g. an SMTP call
  return { sent: true };
});

const stop = new AbortController();
process.once("SIGTERM", () => stop.abort());
process.once("SIGINT", () => stop.abort());
await worker.run({ signal: stop.signal });
