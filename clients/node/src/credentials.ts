/**
 * TLS, mTLS and the bearer token: what the options say, else what the environment says
 * (the variables every jobqueue client library reads), made into grpc-js credentials and
 * channel options once, when a Client or Worker is built, so that a bad setting or an
 * unreadable file fails there and not at the first call.
 */

import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";

import {
  InterceptingCall,
  credentials as grpcCredentials,
  type ChannelCredentials,
  type ChannelOptions,
  type Interceptor,
} from "@grpc/grpc-js";

import { InvalidArgumentError } from "./errors.js";

/** The environment variables, the same in every client library; an option given wins over its variable. */
export const ENV = {
  token: "JOBQ_TOKEN",
  tls: "JOBQ_TLS",
  caFile: "JOBQ_TLS_CA",
  certFile: "JOBQ_TLS_CLIENT_CERT",
  keyFile: "JOBQ_TLS_CLIENT_KEY",
  serverName: "JOBQ_TLS_SERVER_NAME",
} as const;

/** How to prove who the server is, and who we are. */
export interface SecurityOptions {
  /**
   * Sent as `authorization: Bearer <token>` on every call, unary and streaming, over TLS and
   * over plaintext alike (default `$JOBQ_TOKEN`; `""` sends none whatever the variable says).
   * It travels in a channel interceptor: a call on `client.raw` given interceptors of its
   * own (grpc-js lets those replace the channel's) must add the header itself.
   */
  token?: string;
  /**
   * TLS with the system's root CAs (default `$JOBQ_TLS`, `1` or `true`; on as well when a CA
   * file or a client certificate is given). `false`: plaintext, and every `JOBQ_TLS*`
   * variable is ignored.
   */
  tls?: boolean;
  /** PEM file of the roots that verify the server's certificate; implies TLS (default `$JOBQ_TLS_CA`). */
  caFile?: string;
  /**
   * PEM client certificate for mTLS; implies TLS, and needs `keyFile`. The two are taken
   * together: from the options if either is given, else from `$JOBQ_TLS_CLIENT_CERT` and
   * `$JOBQ_TLS_CLIENT_KEY`.
   */
  certFile?: string;
  /** PEM private key of `certFile`. */
  keyFile?: string;
  /**
   * The name checked in the server's certificate, and sent as the call's authority, when it
   * is not the target's host: a target given as an IP, a load balancer (default
   * `$JOBQ_TLS_SERVER_NAME`). Needs TLS.
   */
  serverName?: string;
  /**
   * grpc-js credentials built by the caller; they replace `tls`, `caFile`, `certFile`,
   * `keyFile` and every `JOBQ_TLS*` variable (the token and the `serverName` option still apply).
   */
  credentials?: ChannelCredentials;
}

/** What a channel is built with. */
export interface ChannelSecurity {
  credentials: ChannelCredentials;
  /** The server name override and the token's interceptor, to merge into the channel options. */
  channelOptions: ChannelOptions;
}

type Environment = Readonly<Record<string, string | undefined>>;
type TextOption = "token" | "caFile" | "certFile" | "keyFile" | "serverName";

/** A setting and where it came from (an option's name or a variable's), for error messages. */
interface Setting {
  value: string;
  source: string;
}

/** The credentials and channel options that `options`, else `env`, ask for. */
export function channelSecurity(options: SecurityOptions, env: Environment = process.env): ChannelSecurity {
  const channelOptions: ChannelOptions = {};
  const token = bearerToken(setting(options, env, "token"));
  if (token !== undefined) channelOptions["interceptors"] = [tokenInterceptor(token)];
  const { credentials, tlsEnv, plaintext } = transport(options, env);
  const serverName = setting(options, tlsEnv, "serverName");
  if (serverName !== undefined) {
    if (plaintext) throw configError(serverName, "needs TLS (tls, caFile, or JOBQ_TLS=1): it names the server's certificate");
    // The first is the name TLS checks; the second the :authority a virtual host routes by.
    channelOptions["grpc.ssl_target_name_override"] = serverName.value;
    channelOptions["grpc.default_authority"] = serverName.value;
  }
  return { credentials, channelOptions };
}

/** The channel's credentials, which environment its TLS settings come from, and whether it is plaintext. */
function transport(
  options: SecurityOptions,
  env: Environment,
): { credentials: ChannelCredentials; tlsEnv: Environment; plaintext: boolean } {
  if (options.credentials !== undefined) {
    const given = (["tls", "caFile", "certFile", "keyFile"] as const).filter((key) => options[key] !== undefined);
    if (given.length > 0) throw new InvalidArgumentError(`give either credentials or ${given.join(", ")}`, { field: "credentials" });
    return { credentials: options.credentials, tlsEnv: {}, plaintext: false }; // the caller's to judge
  }
  if (options.tls === false) {
    const given = (["caFile", "certFile", "keyFile", "serverName"] as const).find((key) => options[key] !== undefined);
    if (given !== undefined) throw new InvalidArgumentError(`${given} needs TLS, and tls is false`, { field: given });
    return { credentials: grpcCredentials.createInsecure(), tlsEnv: {}, plaintext: true };
  }
  const ca = setting(options, env, "caFile");
  const pair = clientPair(options, env);
  if (!(options.tls === true || tlsFlag(env) || ca !== undefined || pair !== undefined)) {
    return { credentials: grpcCredentials.createInsecure(), tlsEnv: env, plaintext: true };
  }
  return { credentials: tlsCredentials(ca, pair), tlsEnv: env, plaintext: false };
}

/** TLS verified by the CA file's roots (else Node's store), with the client certificate if there is one. */
function tlsCredentials(ca: Setting | undefined, pair: ClientPair | undefined): ChannelCredentials {
  const roots = ca === undefined ? null : rootCertificates(ca);
  const [cert, key] = pair === undefined ? [null, null] : [readPem(pair.cert), readPem(pair.key)];
  try {
    // null roots: Node's root store (the system's CAs, plus NODE_EXTRA_CA_CERTS).
    return grpcCredentials.createSsl(roots, key, cert);
  } catch (error) {
    // OpenSSL's words ("key values mismatch", "no start line") name no file: add them.
    const files = pair === undefined ? "" : ` (${named(pair.cert)}, ${named(pair.key)})`;
    throw new InvalidArgumentError(`the client certificate and key${files} were refused: ${message(error)}`, {
      field: pair?.cert.source ?? "certFile",
      cause: error,
    });
  }
}

interface ClientPair {
  cert: Setting;
  key: Setting;
}

/** The client certificate and its key, both or neither, from the options if either is there. */
function clientPair(options: SecurityOptions, env: Environment): ClientPair | undefined {
  const fromOptions = options.certFile !== undefined || options.keyFile !== undefined;
  const source = fromOptions ? {} : env;
  const cert = setting(options, source, "certFile");
  const key = setting(options, source, "keyFile");
  if (cert !== undefined && key !== undefined) return { cert, key };
  const needs = "a client certificate needs its private key, and the key its certificate";
  if (cert !== undefined) throw configError(cert, `is given without ${fromOptions ? "keyFile" : ENV.keyFile}: ${needs}`);
  if (key !== undefined) throw configError(key, `is given without ${fromOptions ? "certFile" : ENV.certFile}: ${needs}`);
  return undefined;
}

/** The option's value if it was given (even empty), else the variable's (empty counts as unset). */
function setting(options: SecurityOptions, env: Environment, key: TextOption): Setting | undefined {
  const option = options[key];
  if (option !== undefined) return option === "" ? undefined : { value: option, source: key };
  const value = env[ENV[key]];
  return value === undefined || value === "" ? undefined : { value, source: ENV[key] };
}

/** JOBQ_TLS: `1`/`true` turn TLS on, `0`/`false`/empty leave it off; anything else is a mistake to report. */
function tlsFlag(env: Environment): boolean {
  const value = (env[ENV.tls] ?? "").trim().toLowerCase();
  if (value === "1" || value === "true") return true;
  if (value === "" || value === "0" || value === "false") return false;
  throw new InvalidArgumentError(`${ENV.tls} must be 1, true, 0 or false, not ${JSON.stringify(env[ENV.tls])}`, { field: ENV.tls });
}

function readPem(file: Setting): Buffer {
  try {
    return readFileSync(file.value);
  } catch (error) {
    throw configError(file, `cannot be read: ${message(error)}`, error);
  }
}

/**
 * The CA file's contents, once it is seen to hold a certificate: OpenSSL silently takes a
 * file without one as no roots at all, and every handshake would then fail far from here.
 */
function rootCertificates(file: Setting): Buffer {
  const pem = readPem(file);
  try {
    new X509Certificate(pem);
  } catch (error) {
    throw configError(file, `holds no PEM certificate: ${message(error)}`, error);
  }
  return pem;
}

/**
 * A header value carries printable ASCII only: a token with a space or a line break (a
 * file read with its newline) would make every call fail in grpc-js, far from here. The
 * token itself is never put in a message.
 */
function bearerToken(token: Setting | undefined): string | undefined {
  if (token === undefined) return undefined;
  const value = token.value.trim();
  if (!/^[\x21-\x7e]+$/.test(value)) {
    throw new InvalidArgumentError(`${token.source}: a token is printable ASCII without spaces`, { field: token.source });
  }
  return value;
}

/**
 * Adds the token to every call's metadata. Not CallCredentials: grpc-js attaches those only
 * on secure channels (`combineChannelCredentials` refuses insecure ones), and the token must
 * also reach a plaintext server (a loopback dev server). An interceptor is one path for both,
 * and it also covers the calls made on `client.raw` (the admin RPCs, say).
 */
function tokenInterceptor(token: string): Interceptor {
  const header = `Bearer ${token}`;
  return (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start: (metadata, listener, next) => {
        metadata.set("authorization", header);
        next(metadata, listener);
      },
    });
}

function named(file: Setting): string {
  return `${file.source} ${file.value}`;
}

function configError(file: Setting, problem: string, cause?: unknown): InvalidArgumentError {
  return new InvalidArgumentError(`${named(file)} ${problem}`, { field: file.source, cause });
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
