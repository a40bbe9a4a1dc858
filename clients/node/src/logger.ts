/** The default logger: warnings and errors to stderr, quieter levels dropped. */

import type { Logger } from "./types.js";

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3, silent: 4 };

/** A Logger writing `[jobqueue] LEVEL message` lines to stderr at `level` and above. */
export function consoleLogger(level: LogLevel = "warn"): Logger {
  const at = (wanted: Exclude<LogLevel, "silent">) => (message: string) => {
    if (ORDER[wanted] >= ORDER[level]) console.error(`[jobqueue] ${wanted.toUpperCase()} ${message}`);
  };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}
