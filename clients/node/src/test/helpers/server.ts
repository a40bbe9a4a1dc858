/** Starts a real `jobq serve` (embedded Valkey) on a free port for integration tests. */

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** clients/node, from dist/test/helpers/server.js. */
export const PACKAGE_ROOT = resolve(fileURLToPath(new URL(".", import.meta.url)), "..", "..", "..");
export const SERVE_BIN = process.env["JOBQ_SERVE_BIN"] ?? resolve(PACKAGE_ROOT, "..", "..", ".venv", "bin", "jobq");
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

/** Why integration tests cannot run here, or undefined when they can. */
export function serverSkipReason(): string | undefined {
  if (existsSync(SERVE_BIN)) return undefined;
  return `no jobq server at ${SERVE_BIN}: run scripts/venv.sh at the repository root or set JOBQ_SERVE_BIN`;
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      probe.close(() => resolvePort(port));
    });
  });
}

export interface StartOptions {
  /** Default: a free one. */
  port?: number;
  /** The embedded Valkey's data folder (default: a new temporary one). */
  dataDir?: string;
  /** Use this Redis/Valkey instead of an embedded one. */
  redisUrl?: string;
  /** More `jobq serve` flags (`--auth`, `--tls-cert FILE`, ...), kept for `restart`. */
  args?: string[];
  /** More environment variables (settings: `JOBQ_WEBHOOK_INTERVAL_SECONDS`, ...), kept for `restart`. */
  env?: Record<string, string>;
}

export class TestServer {
  private process: ChildProcess | undefined;
  private output = "";
  readonly dataDir: string;

  private constructor(
    readonly port: number,
    private readonly redisUrl: string | undefined,
    private readonly args: readonly string[] = [],
    private readonly env: Readonly<Record<string, string>> = {},
  ) {
    this.dataDir = mkdtempSync(join(tmpdir(), "jobq-node-test-"));
  }

  get target(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** A server ready to take calls. */
  static async start(options: StartOptions = {}): Promise<TestServer> {
    const server = new TestServer(options.port ?? (await freePort()), options.redisUrl, options.args, options.env);
    await server.launch(options.dataDir ?? server.dataDir);
    return server;
  }

  /** Starts the server process again on the same port and data (after `kill`). */
  async restart(): Promise<void> {
    await this.launch(this.dataDir);
  }

  private async launch(dataDir: string): Promise<void> {
    const args = ["serve", "--host", "127.0.0.1", "--port", String(this.port), "--data-dir", dataDir];
    if (this.redisUrl !== undefined) args.push("--redis-url", this.redisUrl);
    args.push(...this.args);
    const child = spawn(SERVE_BIN, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, JOBQ_LOG_LEVEL: "WARNING", JOBQ_SHUTDOWN_GRACE_SECONDS: "1", ...this.env },
    });
    this.process = child;
    await new Promise<void>((ready, fail) => {
      const timer = setTimeout(() => fail(new Error(`jobq did not start in ${START_TIMEOUT_MS} ms:\n${this.output}`)), START_TIMEOUT_MS);
      const collect = (chunk: Buffer): void => {
        this.output += chunk.toString();
        if (this.output.includes("jobqueue listening on")) {
          clearTimeout(timer);
          ready();
        }
      };
      child.stdout?.on("data", collect);
      child.stderr?.on("data", (chunk: Buffer) => (this.output += chunk.toString()));
      child.once("exit", (code) => {
        clearTimeout(timer);
        fail(new Error(`jobq exited with ${code} before it was ready:\n${this.output}`));
      });
    });
  }

  /** SIGTERM, then SIGKILL if it does not exit in time. */
  async kill(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise<void>((done) => child.once("exit", () => done()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
