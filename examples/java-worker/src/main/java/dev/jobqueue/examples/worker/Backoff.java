package dev.jobqueue.examples.worker;

import java.time.Duration;
import java.util.concurrent.ThreadLocalRandom;

/**
 * The reconnect policy every jobqueue client shares: the n-th consecutive failure waits a
 * uniform random time in [0, min(cap, base * 2^n)] ("full jitter", so a fleet that lost the
 * same server does not come back in lockstep), reset once a connection stayed healthy.
 */
final class Backoff {
  private static final long BASE_MS = 100;
  private static final long CAP_MS = 10_000;
  private static final Duration RESET_AFTER = Duration.ofSeconds(30);

  private int failures;

  /** Records how long the last connection lasted: a healthy one resets the count. */
  void connectionEnded(Duration lasted) {
    if (lasted.compareTo(RESET_AFTER) >= 0) {
      failures = 0;
    }
  }

  Duration next() {
    long ceiling = Math.min(CAP_MS, BASE_MS << Math.min(failures, 20));
    failures++;
    return Duration.ofMillis(ThreadLocalRandom.current().nextLong(ceiling + 1));
  }
}
