package dev.jobqueue.examples.worker;

import com.google.protobuf.Duration;
import dev.jobqueue.v1.ExtendRequest;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;

/**
 * When to extend each running job's lease: once two thirds of its length have passed since
 * it was granted or last extended, on the local monotonic clock (System.nanoTime), never
 * comparing our clock with the server's. Extends due within the next sixth of a lease ride
 * along with one due now, so a busy worker sends few, larger messages. Not thread-safe: the
 * session's loop thread owns it.
 */
final class LeaseKeeper {
  private static final double EXTEND_AT = 2.0 / 3;
  private static final double RIDE_ALONG = 1.0 / 6;
  /** After an extend the server could not carry out (store unavailable), retry this soon. */
  private static final long RETRY_NANOS = 500_000_000L;

  private record Lease(String token, long lengthNanos, long nextAt) {}

  private final Map<String, Lease> leases = new HashMap<>();

  void track(String jobId, String token, long lengthNanos, long now) {
    leases.put(jobId, new Lease(token, lengthNanos, now + part(lengthNanos, EXTEND_AT)));
  }

  void forget(String jobId) {
    leases.remove(jobId);
  }

  void retrySoon(String jobId, long now) {
    leases.computeIfPresent(jobId, (id, l) -> {
      long wait = Math.min(RETRY_NANOS, part(l.lengthNanos(), RIDE_ALONG));
      return new Lease(l.token(), l.lengthNanos(), now + wait);
    });
  }

  /** When the next extend is due (System.nanoTime), if any lease is kept. */
  OptionalLong next() {
    return leases.values().stream().mapToLong(Lease::nextAt).min();
  }

  /**
   * The extends to send now, each asking for the lease's full length again (explicitly: an
   * unset length would give the job's own or the server's default, not the stream's).
   */
  List<ExtendRequest> due(long now) {
    List<ExtendRequest> extends_ = new ArrayList<>();
    OptionalLong earliest = next();
    if (earliest.isEmpty() || now - earliest.getAsLong() < 0) {
      return extends_;
    }
    for (Map.Entry<String, Lease> entry : leases.entrySet()) {
      Lease l = entry.getValue();
      if (now - (l.nextAt() - part(l.lengthNanos(), RIDE_ALONG)) < 0) {
        continue;
      }
      entry.setValue(new Lease(l.token(), l.lengthNanos(), now + part(l.lengthNanos(), EXTEND_AT)));
      extends_.add(ExtendRequest.newBuilder()
          .setJobId(entry.getKey())
          .setLeaseToken(l.token())
          .setLeaseDuration(Duration.newBuilder()
              .setSeconds(l.lengthNanos() / 1_000_000_000L)
              .setNanos((int) (l.lengthNanos() % 1_000_000_000L)))
          .build());
    }
    return extends_;
  }

  private static long part(long nanos, double fraction) {
    return (long) (nanos * fraction);
  }
}
