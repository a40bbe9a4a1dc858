/** Waiting for conditions with deadlines, never for fixed times. */

import { randomBytes } from "node:crypto";

/** Polls `condition` until it returns a truthy value, or throws after `timeoutMs`. */
export async function waitUntil<T>(
  condition: () => T | Promise<T>,
  what: string,
  timeoutMs = 10_000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A queue name no other test uses. */
export function uniqueQueue(prefix = "node"): string {
  return `${prefix}-${randomBytes(5).toString("hex")}`;
}

/** A promise with its resolve function, for handlers that wait for the test. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open: () => void = () => undefined;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}
