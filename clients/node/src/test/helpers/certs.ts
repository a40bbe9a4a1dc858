/**
 * A throwaway PKI for TLS tests, made with the `openssl` command line in a temporary folder:
 * a CA, a server certificate for `localhost` and `jobq.test` (no IP address, so a target
 * given as 127.0.0.1 needs the server name override), a client certificate, and a second CA
 * with a client certificate of its own that the first CA does not vouch for.
 */

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The name in the server certificate besides `localhost`. */
export const SERVER_NAME = "jobq.test";

export interface Pki {
  dir: string;
  /** File paths, PEM. */
  ca: string;
  otherCa: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate signed by `otherCa`. */
  strangerCert: string;
  strangerKey: string;
  read(file: string): Buffer;
  remove(): void;
}

/** P-256 keys: quick to make, and every TLS stack takes them. */
const NEW_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
const DAYS = ["-days", "2"];

export function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), "jobq-node-pki-"));
  const path = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): void => {
    execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  };
  const ca = (name: string): void =>
    openssl("req", "-x509", ...NEW_KEY, ...DAYS, "-keyout", path(`${name}.key`), "-out", path(`${name}.pem`),
      "-subj", `/CN=jobq ${name}`, "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign");
  const leaf = (name: string, issuer: string, extensions: string): void => {
    openssl("req", "-new", ...NEW_KEY, "-keyout", path(`${name}.key`), "-out", path(`${name}.csr`), "-subj", `/CN=${name}`);
    writeFileSync(path(`${name}.ext`), `basicConstraints=CA:FALSE\n${extensions}\n`);
    openssl("x509", "-req", ...DAYS, "-in", path(`${name}.csr`), "-CA", path(`${issuer}.pem`), "-CAkey", path(`${issuer}.key`),
      "-set_serial", `0x${Date.now().toString(16)}${name.length}`, "-extfile", path(`${name}.ext`), "-out", path(`${name}.pem`));
  };
  ca("ca");
  ca("other-ca");
  leaf("server", "ca", `subjectAltName=DNS:localhost,DNS:${SERVER_NAME}\nextendedKeyUsage=serverAuth`);
  leaf("client", "ca", "extendedKeyUsage=clientAuth");
  leaf("stranger", "other-ca", "extendedKeyUsage=clientAuth");
  return {
    dir,
    ca: path("ca.pem"),
    otherCa: path("other-ca.pem"),
    serverCert: path("server.pem"),
    serverKey: path("server.key"),
    clientCert: path("client.pem"),
    clientKey: path("client.key"),
    strangerCert: path("stranger.pem"),
    strangerKey: path("stranger.key"),
    read: (file) => readFileSync(file),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
