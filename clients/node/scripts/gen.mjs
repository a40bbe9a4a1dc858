#!/usr/bin/env node
// Regenerates src/gen from ../../proto with buf and ts-proto (both pinned in
// package-lock.json). `node scripts/gen.mjs --check` generates into a temporary directory
// and exits 1 when src/gen differs from it.
//
// buf needs every imported file inside its input. jobqueue imports google/rpc/status.proto and
// google/api/annotations.proto, which buf would fetch from the BSR; instead the protos are copied
// into a temporary input next to those files from the google-proto-files npm package.
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const protoRoot = join(here, "..", "..", "proto");
const generated = "src/gen";
const googleFiles = { rpc: ["status.proto", "error_details.proto"], api: ["annotations.proto", "http.proto"] };
const require = createRequire(import.meta.url);

function stageInput(stage) {
  // Only .proto files: a buf.yaml under proto/ may name BSR dependencies we cannot fetch.
  cpSync(protoRoot, stage, {
    recursive: true,
    filter: (source) => statSync(source).isDirectory() || source.endsWith(".proto"),
  });
  const google = join(dirname(require.resolve("google-proto-files/package.json")), "google");
  for (const [folder, files] of Object.entries(googleFiles)) {
    mkdirSync(join(stage, "google", folder), { recursive: true });
    for (const file of files) {
      const target = join(stage, "google", folder, file);
      if (!existsSync(target)) cpSync(join(google, folder, file), target);
    }
  }
  writeFileSync(join(stage, "buf.yaml"), "version: v2\n");
}

function generate(outputBase) {
  const scratch = mkdtempSync(join(tmpdir(), "jobqueue-proto-"));
  try {
    stageInput(scratch);
    const buf = require.resolve("@bufbuild/buf/bin/buf");
    execFileSync(process.execPath, [buf, "generate", scratch, "--template", "buf.gen.yaml", "--output", outputBase], {
      cwd: here,
      stdio: "inherit",
    });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function listFiles(root, dir = root) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? listFiles(root, path) : [relative(root, path)];
  });
}

function differences(expectedDir, actualDir) {
  const expected = new Set(listFiles(expectedDir));
  const actual = new Set(listFiles(actualDir));
  const stale = [];
  for (const file of expected) {
    if (!actual.has(file)) stale.push(`missing: ${file}`);
    else if (!readFileSync(join(expectedDir, file)).equals(readFileSync(join(actualDir, file)))) stale.push(`differs: ${file}`);
  }
  for (const file of actual) if (!expected.has(file)) stale.push(`not generated: ${file}`);
  return stale.sort();
}

if (process.argv.includes("--check")) {
  const out = mkdtempSync(join(tmpdir(), "jobqueue-gen-"));
  try {
    generate(out);
    const stale = differences(join(out, generated), join(here, generated));
    if (stale.length > 0) {
      console.error(`${generated} is stale: run \`npm run gen\` and commit the result`);
      for (const line of stale) console.error(`  ${line}`);
      process.exitCode = 1;
    } else {
      console.log(`${generated} is up to date`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
} else {
  generate(".");
  console.log(`regenerated ${generated}`);
}
