package dev.jobqueue.examples.worker;

import com.google.protobuf.Struct;
import dev.jobqueue.v1.AckRequest;
import dev.jobqueue.v1.FailRequest;
import dev.jobqueue.v1.LeaseRequest;
import dev.jobqueue.v1.LeasedJob;

/** The ack or the fail that answers one job (exactly one of the two is set). */
record Settlement(AckRequest ack, FailRequest fail) {

  /** A result acks the job; an exception fails it, for good when it is non-retryable. */
  static Settlement of(LeasedJob leased, Struct result, Throwable error) {
    String id = leased.getJob().getId();
    if (error == null) {
      AckRequest.Builder ack =
          AckRequest.newBuilder().setJobId(id).setLeaseToken(leased.getLeaseToken());
      if (result != null) {
        ack.setResult(result);
      }
      return new Settlement(ack.build(), null);
    }
    String message = error.getMessage() != null ? error.getMessage() : error.toString();
    return fail(id, leased.getLeaseToken(), message, error instanceof NonRetryableException);
  }

  static Settlement fail(String jobId, String leaseToken, String message, boolean nonRetryable) {
    return new Settlement(null, FailRequest.newBuilder()
        .setJobId(jobId)
        .setLeaseToken(leaseToken)
        .setError(message)
        .setNonRetryable(nonRetryable)
        .build());
  }

  boolean isAck() {
    return ack != null;
  }

  LeaseRequest request() {
    return isAck()
        ? LeaseRequest.newBuilder().addAcks(ack).build()
        : LeaseRequest.newBuilder().addFails(fail).build();
  }
}
