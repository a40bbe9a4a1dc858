/** Delays between attempts: the worker's reconnect policy and `waitFor`'s poll schedule. */

export interface ReconnectBackoffOptions {
  /** The first ceiling, in ms (default 100). */
  baseMs?: number;
  /** The largest ceiling, in ms (default 10 s). */
  capMs?: number;
  /** A connection that stayed up this long (ms) was healthy: start again from `baseMs` (default 30 s). */
  resetAfterMs?: number;
  /** Uniform random in [0, 1); injectable for tests. */
  random?: () => number;
}

/**
 * Exponential backoff with full jitter, reset once a connection stayed healthy.
 *
 * The n-th consecutive failure waits a uniform random time in [0, min(cap, base * 2^n)]
 * (AWS's "full jitter"), so a fleet of workers that lost the same server does not come
 * back in lockstep.
 */
export class ReconnectBackoff {
  readonly baseMs: number;
  readonly capMs: number;
  readonly resetAfterMs: number;
  private readonly random: () => number;
  /** Consecutive failures since the last healthy connection. */
  failures = 0;

  constructor(options: ReconnectBackoffOptions = {}) {
    this.baseMs = options.baseMs ?? 100;
    this.capMs = options.capMs ?? 10_000;
    this.resetAfterMs = options.resetAfterMs ?? 30_000;
    this.random = options.random ?? Math.random;
  }

  /** The ceiling of the next delay, before jitter. */
  ceilingMs(): number {
    // The exponent is bounded so a long outage cannot overflow.
    return Math.min(this.capMs, this.baseMs * 2 ** Math.min(this.failures, 32));
  }

  /** The wait before the next attempt; counts one more failure. */
  nextDelayMs(): number {
    const ceiling = this.ceilingMs();
    this.failures += 1;
    return this.random() * ceiling;
  }

  /** Reports how long (ms) the last connection was up. */
  connectionEnded(lastedMs: number): void {
    if (lastedMs >= this.resetAfterMs) this.reset();
  }

  reset(): void {
    this.failures = 0;
  }
}

/** Growing waits between status polls: quick for short jobs, at most `capMs` for long ones. */
export function* pollIntervals(firstMs = 10, factor = 1.5, capMs = 500): Generator<number, never> {
  let interval = firstMs;
  for (;;) {
    yield interval;
    interval = Math.min(capMs, interval * factor);
  }
}
