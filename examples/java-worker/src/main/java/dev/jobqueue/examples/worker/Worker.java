package dev.jobqueue.examples.worker;

import dev.jobqueue.v1.JobQueueServiceGrpc;
import dev.jobqueue.v1.JobQueueServiceGrpc.JobQueueServiceStub;
import io.grpc.Channel;
import io.grpc.Status;
import io.grpc.Status.Code;
import java.time.Duration;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

/**
 * Leases jobs from some queues on one Lease stream and runs the handler for each, at most
 * {@code concurrency} at a time (also the stream's window, max_in_flight). While a handler
 * runs, its lease is extended; its outcome is acked or failed on the stream that delivered
 * it. When the stream breaks, the worker reconnects with backoff; handlers still running
 * for the lost stream are interrupted, since the server released their jobs.
 */
public final class Worker {
  private static final Logger log = Logger.getLogger(Worker.class.getName());
  /** Errors that reconnecting would only repeat. */
  private static final Set<Code> FATAL =
      EnumSet.of(Code.INVALID_ARGUMENT, Code.UNIMPLEMENTED, Code.UNAUTHENTICATED,
          Code.PERMISSION_DENIED);

  /** What the worker subscribes with, and how long a stop waits for running handlers. */
  public record Options(List<String> queues, int concurrency, String workerId, Duration grace) {}

  /** The stream ended with an error that reconnecting cannot fix. */
  public static final class FatalException extends Exception {
    private static final long serialVersionUID = 1L;

    FatalException(Status status) {
      super(status.getCode() + ": " + status.getDescription(), status.asException());
    }
  }

  private final JobQueueServiceStub stub;
  private final Options options;
  private final Handler handler;
  /** One per running handler, across streams: a lost stream's handlers may still be finishing. */
  private final Semaphore slots;
  private final ExecutorService pool = Executors.newCachedThreadPool(r -> {
    Thread thread = new Thread(r, "jobqueue-handler");
    thread.setDaemon(true);
    return thread;
  });
  private final CompletableFuture<Void> ready = new CompletableFuture<>();
  private final CountDownLatch stopped = new CountDownLatch(1);
  private final Backoff backoff = new Backoff();
  private Session current; // guarded by this
  private boolean stopping; // guarded by this

  public Worker(Channel channel, Options options, Handler handler) {
    this.stub = JobQueueServiceGrpc.newStub(channel);
    this.options = options;
    this.handler = handler;
    this.slots = new Semaphore(options.concurrency());
  }

  /** Completes once the first stream's subscription is accepted. */
  public CompletableFuture<Void> ready() {
    return ready;
  }

  /** Runs until {@link #stop()} has drained the stream, or until a fatal error. */
  public void run() throws FatalException, InterruptedException {
    try {
      while (true) {
        Session session;
        synchronized (this) {
          if (stopping) {
            return;
          }
          session = current = new Session(this, stub);
        }
        long began = System.nanoTime();
        Status end = session.await();
        if (end == null || isStopping()) {
          return;
        }
        if (FATAL.contains(end.getCode())) {
          throw new FatalException(end);
        }
        backoff.connectionEnded(Duration.ofNanos(System.nanoTime() - began));
        Duration delay = backoff.next();
        log.warning(() -> "lease stream ended (" + end.getCode() + ": " + end.getDescription()
            + "); reconnecting in " + delay.toMillis() + " ms");
        if (stopped.await(delay.toMillis(), TimeUnit.MILLISECONDS)) {
          return;
        }
      }
    } finally {
      pool.shutdownNow();
    }
  }

  /** Stops taking jobs; running handlers get the grace period to finish. Returns at once. */
  public void stop() {
    synchronized (this) {
      stopping = true;
      if (current != null) {
        current.drain();
      }
    }
    stopped.countDown();
  }

  private synchronized boolean isStopping() {
    return stopping;
  }

  // -- for the session ------------------------------------------------------------------

  Options options() {
    return options;
  }

  Handler handler() {
    return handler;
  }

  Semaphore slots() {
    return slots;
  }

  ExecutorService pool() {
    return pool;
  }

  void markReady() {
    ready.complete(null);
  }
}
