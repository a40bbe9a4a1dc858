package dev.jobqueue.examples.worker;

import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.logging.Level;
import java.util.logging.Logger;
import sun.misc.Signal;

/**
 * The conformance worker (tests/conformance/README.md): runs a {@link Worker} with one handler
 * for every queue in JOBQ_QUEUES, prints READY, START and END lines, and on SIGTERM drains
 * within JOBQ_GRACE_SECONDS and exits 0.
 */
public final class ConformanceWorker {
  private static final PrintStream out =
      new PrintStream(new FileOutputStream(FileDescriptor.out), false, StandardCharsets.UTF_8);

  private ConformanceWorker() {}

  public static void main(String[] args) throws InterruptedException {
    System.setProperty("java.util.logging.SimpleFormatter.format", "%1$tT %4$s %3$s: %5$s%6$s%n");
    Logger log = Logger.getLogger(ConformanceWorker.class.getName());
    Map<String, String> env = System.getenv();
    String workerId = env.getOrDefault("JOBQ_WORKER_ID", "java-conformance");
    double graceSeconds = Double.parseDouble(env.getOrDefault("JOBQ_GRACE_SECONDS", "10"));
    Duration grace = Duration.ofMillis((long) (1000 * graceSeconds));
    Worker.Options options = new Worker.Options(
        List.of(env.getOrDefault("JOBQ_QUEUES", "conformance").split(",")),
        Integer.parseInt(env.getOrDefault("JOBQ_CONCURRENCY", "1")),
        workerId,
        grace);
    Actions actions = new Actions(workerId);
    String target = env.getOrDefault("JOBQ_TARGET", "localhost:50051");
    ManagedChannel channel = ManagedChannelBuilder.forTarget(target).usePlaintext().build();
    Worker worker = new Worker(channel, options, job -> {
      say("START " + job.getId());
      try {
        return actions.handle(job);
      } finally {
        say("END " + job.getId());
      }
    });
    worker.ready().thenRun(() -> say("READY"));

    // Signal handlers rather than a shutdown hook: a hook runs while the JVM is already
    // exiting (with status 143, and its logging torn down), not while the worker drains.
    Signal.handle(new Signal("TERM"), signal -> worker.stop());
    Signal.handle(new Signal("INT"), signal -> worker.stop());
    int exitCode = 0;
    try {
      worker.run();
    } catch (Worker.FatalException e) {
      log.log(Level.SEVERE, "the worker cannot go on", e);
      exitCode = 1;
    } finally {
      channel.shutdownNow();
    }
    System.exit(exitCode);
  }

  /** One line for the kit, written and flushed at once. */
  private static synchronized void say(String line) {
    out.print(line + "\n");
    out.flush();
  }
}
