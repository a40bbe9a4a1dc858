package dev.jobqueue.examples.worker;

import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import dev.jobqueue.v1.Job;
import java.nio.file.Files;
import java.nio.file.Path;

/** The conformance kit's handler: does what the payload's "action" says (tests/conformance). */
final class Actions implements Handler {
  private static final long POLL_MS = 10;

  private final String workerId;

  Actions(String workerId) {
    this.workerId = workerId;
  }

  @Override
  public Struct handle(Job job) throws Exception {
    Struct payload = job.getPayload();
    Struct result = field(payload, "result").getStructValue();
    String error = field(payload, "error").getStringValue();
    switch (field(payload, "action").getStringValue()) {
      case "ack":
        return result;
      case "echo":
        return echo(job);
      case "fail":
        throw new Exception(error);
      case "fail_permanent":
        throw new NonRetryableException(error);
      case "fail_until":
        if (job.getAttempts() < field(payload, "attempt").getNumberValue()) {
          throw new Exception(error);
        }
        return result;
      case "sleep":
        Thread.sleep((long) field(payload, "ms").getNumberValue());
        return result;
      case "wait_file":
        Path path = Path.of(field(payload, "path").getStringValue());
        while (!Files.exists(path)) {
          Thread.sleep(POLL_MS);
        }
        return result;
      case "exit":
        Runtime.getRuntime().halt(3); // a crash: no shutdown hook, nothing settled
        return null;
      default:
        throw new NonRetryableException("unknown action");
    }
  }

  private Struct echo(Job job) {
    Struct.Builder metadata = Struct.newBuilder();
    job.getMetadataMap().forEach((key, value) -> metadata.putFields(key, text(value)));
    return Struct.newBuilder()
        .putFields("job_id", text(job.getId()))
        .putFields("queue", text(job.getQueue()))
        .putFields("attempt", number(job.getAttempts()))
        .putFields("max_attempts", number(job.getMaxAttempts()))
        .putFields("payload", Value.newBuilder().setStructValue(job.getPayload()).build())
        .putFields("metadata", Value.newBuilder().setStructValue(metadata).build())
        .putFields("worker_id", text(workerId))
        .build();
  }

  private static Value field(Struct struct, String name) {
    return struct.getFieldsOrDefault(name, Value.getDefaultInstance());
  }

  private static Value text(String value) {
    return Value.newBuilder().setStringValue(value).build();
  }

  private static Value number(double value) {
    return Value.newBuilder().setNumberValue(value).build();
  }
}
