/**
 * A small producer on the TypeScript client, used by the cross-language tests and handy for
 * scripts:
 *
 *   node dist/jobq-node.js enqueue QUEUE '{"json":"payload"}'   prints the job id
 *   node dist/jobq-node.js wait JOB_ID                          waits until the job is finished,
 *                                                               prints it as JSON
 *
 * The server address comes from JOBQ_TARGET (default localhost:50051).
 */

import { Client } from "./index.js";

const WAIT_LIMIT_MS = 60_000;

async function main(args: string[]): Promise<void> {
  const [command, argument, json] = args;
  if (command === undefined || argument === undefined) {
    throw new Error("usage: jobq-node enqueue QUEUE JSON | jobq-node wait JOB_ID");
  }
  const client = await Client.connect(process.env["JOBQ_TARGET"] ?? "localhost:50051");
  try {
    if (command === "enqueue") {
      const payload = json === undefined ? {} : (JSON.parse(json) as Record<string, unknown>);
      const { jobId } = await client.enqueue(argument, payload);
      console.log(jobId);
    } else if (command === "wait") {
      const job = await client.waitFor(argument, { timeoutMs: WAIT_LIMIT_MS });
      const { id, state, attempts, result, payload } = job;
      console.log(JSON.stringify({ id, state, attempts, result, payload }));
    } else {
      throw new Error(`unknown command ${command}`);
    }
  } finally {
    await client.close();
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
