package dev.jobqueue.examples.worker;

import com.google.protobuf.Struct;
import com.google.protobuf.Timestamp;
import dev.jobqueue.v1.Confirmation;
import dev.jobqueue.v1.ConfirmationKind;
import dev.jobqueue.v1.ExtendRequest;
import dev.jobqueue.v1.Job;
import dev.jobqueue.v1.JobQueueServiceGrpc.JobQueueServiceStub;
import dev.jobqueue.v1.LeaseRequest;
import dev.jobqueue.v1.LeaseResponse;
import dev.jobqueue.v1.LeasedJob;
import dev.jobqueue.v1.Subscribe;
import io.grpc.Status;
import io.grpc.Status.Code;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One Lease stream, from Subscribe to its end (docs/protocol.md). One thread, the loop, owns
 * all of its state: gRPC callbacks, handler outcomes and timers are posted to it, and only it
 * writes to the stream. Handlers run on the worker's pool.
 */
final class Session {
  private static final Logger log = Logger.getLogger(Session.class.getName());
  /** How long, after the half-close, the server may take to confirm the last acks. */
  private static final long FLUSH_TIMEOUT_MS = 5_000;
  /** An ack or fail refused with UNAVAILABLE changed nothing: send it again after this. */
  private static final long RESEND_DELAY_MS = 500;
  /** The server's default lease, for a grant whose length cannot be read off its times. */
  private static final long DEFAULT_LEASE_NANOS = TimeUnit.SECONDS.toNanos(30);

  private final Worker worker;
  private final ScheduledExecutorService loop = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread thread = new Thread(r, "jobqueue-session");
    thread.setDaemon(true);
    return thread;
  });
  /** Completes with null after a drained close, or with the status that ended the stream. */
  private final CompletableFuture<Status> ended = new CompletableFuture<>();
  private final Map<String, Running> running = new HashMap<>();
  private final Map<String, Settlement> unconfirmed = new HashMap<>();
  private final LeaseKeeper keeper = new LeaseKeeper();
  private ClientCallStreamObserver<LeaseRequest> requests;
  private ScheduledFuture<?> keeperTimer;
  private ScheduledFuture<?> graceTimer;
  private boolean subscribed;
  private boolean draining;
  private boolean closing;
  private boolean hard;

  Session(Worker worker, JobQueueServiceStub stub) {
    this.worker = worker;
    post(() -> open(stub));
  }

  /** Blocks until the stream is over: null after a drained close, else why it ended. */
  Status await() throws InterruptedException {
    try {
      return ended.get();
    } catch (ExecutionException e) {
      return Status.fromThrowable(e.getCause());
    } finally {
      loop.shutdownNow();
    }
  }

  /** Stops taking jobs, lets running ones finish within the grace period, then closes. */
  void drain() {
    post(this::startDrain);
  }

  private void post(Runnable task) {
    try {
      loop.execute(guarded(task));
    } catch (RejectedExecutionException over) {
      // The session is over: late outcomes and callbacks have nothing left to change.
    }
  }

  /** Schedules a task on the loop; null once the session is over. */
  private ScheduledFuture<?> later(Runnable task, long delay, TimeUnit unit) {
    try {
      return loop.schedule(guarded(task), delay, unit);
    } catch (RejectedExecutionException over) {
      return null;
    }
  }

  /**
   * A loop task that does nothing once the stream has ended. One that fails would leave the
   * session's state half changed, so the stream is ended instead (the worker reconnects and
   * the server releases what the stream held).
   */
  private Runnable guarded(Runnable task) {
    return () -> {
      if (ended.isDone()) {
        return;
      }
      try {
        task.run();
      } catch (RuntimeException bug) {
        log.log(Level.SEVERE, "the Lease stream's loop failed; ending the stream", bug);
        if (requests != null) {
          requests.cancel("the worker failed", bug);
        }
        end(Status.INTERNAL.withCause(bug));
      }
    };
  }

  private void open(JobQueueServiceStub stub) {
    stub.lease(new ClientResponseObserver<LeaseRequest, LeaseResponse>() {
      @Override
      public void beforeStart(ClientCallStreamObserver<LeaseRequest> stream) {
        requests = stream;
      }

      @Override
      public void onNext(LeaseResponse response) {
        post(() -> received(response));
      }

      @Override
      public void onError(Throwable error) {
        post(() -> end(Status.fromThrowable(error)));
      }

      @Override
      public void onCompleted() {
        post(() -> end(Status.UNAVAILABLE.withDescription("the server ended the Lease stream")));
      }
    });
    Subscribe subscribe = Subscribe.newBuilder()
        .addAllQueues(worker.options().queues())
        .setMaxInFlight(worker.options().concurrency())
        .setWorkerId(worker.options().workerId())
        .build();
    requests.onNext(LeaseRequest.newBuilder().setSubscribe(subscribe).build());
  }

  private void send(LeaseRequest request) {
    if (!closing && !ended.isDone()) {
      requests.onNext(request);
    }
  }

  // -- what the server sends -------------------------------------------------------------

  private void received(LeaseResponse response) {
    if (!subscribed) {
      subscribed = true; // the first answer, empty, accepts the subscription
      worker.markReady();
    }
    response.getJobsList().forEach(this::start);
    response.getConfirmationsList().forEach(this::confirm);
    closeIfDrained();
  }

  private void start(LeasedJob leased) {
    String id = leased.getJob().getId();
    if (draining) {
      // Not started: the server releases it to its queue when the stream closes.
      log.fine(() -> "stopping; not starting job " + id);
      return;
    }
    Running old = running.get(id);
    if (old != null) {
      old.cancel(); // its lease expired and it came back to us with a new token
    }
    Running run = new Running(leased);
    running.put(id, run);
    keeper.track(id, leased.getLeaseToken(), leaseNanos(leased), System.nanoTime());
    worker.pool().execute(() -> execute(run));
    armKeeper();
  }

  /** Runs in a pool thread: wait for a slot, run the handler, report to the loop. */
  private void execute(Running run) {
    boolean started = false;
    try {
      if (!run.enter()) {
        throw new CancellationException("the job was given up before it started");
      }
      worker.slots().acquire();
      try {
        started = true;
        Struct result = worker.handler().handle(run.leased.getJob());
        post(() -> finished(run, result, null, true));
      } finally {
        worker.slots().release();
      }
    } catch (Throwable error) { // a handler's failure, whatever it is, fails the attempt
      boolean ran = started;
      post(() -> finished(run, null, error, ran));
    } finally {
      run.exit();
    }
  }

  private void finished(Running run, Struct result, Throwable error, boolean started) {
    String id = run.leased.getJob().getId();
    if (running.get(id) != run) {
      if (started) {
        log.warning(() -> "dropping the result of job " + id + ": this worker gave it up");
      }
      return;
    }
    running.remove(id);
    keeper.forget(id);
    armKeeper();
    if (!started && !run.lost) {
      return; // never ran: the server releases it when the stream closes
    }
    if (run.lost) {
      log.warning(() -> "settling job " + id + ", whose lease was lost, to free the stream's slot");
    }
    settle(id, Settlement.of(run.leased, result, error));
    closeIfDrained();
  }

  private void settle(String id, Settlement settlement) {
    unconfirmed.put(id, settlement);
    send(settlement.request());
  }

  private void confirm(Confirmation confirmation) {
    String id = confirmation.getJobId();
    com.google.rpc.Status status = confirmation.getStatus();
    Code code = Status.fromCodeValue(status.getCode()).getCode();
    if (confirmation.getKind() == ConfirmationKind.CONFIRMATION_KIND_EXTEND) {
      extended(id, code, status);
      return;
    }
    Settlement settlement = unconfirmed.remove(id);
    if (code == Code.OK || settlement == null) {
      return;
    }
    String reason = Reasons.of(status);
    if (code == Code.UNAVAILABLE && !hard) {
      // The store did not answer: the job is still ours; the token fences a duplicate.
      log.warning(() -> "could not settle " + id + " (" + Reasons.describe(status) + ")");
      unconfirmed.put(id, settlement);
      later(() -> resend(id), RESEND_DELAY_MS, TimeUnit.MILLISECONDS);
    } else if (settlement.isAck() && reason.equals("DURABILITY_UNAVAILABLE")) {
      // Nothing was written and the job is still ours, but the store cannot make the ack as
      // durable as asked: fail the attempt (retryably, with the reason), as the client libraries do.
      String error = "the server could not make the ack durable: " + status.getMessage();
      settle(id, Settlement.fail(id, settlement.ack().getLeaseToken(), error, false));
    } else if (settlement.isAck() && code == Code.INVALID_ARGUMENT) {
      // The same ack can never succeed (a result over the size limit, ...): fail the job for good.
      log.severe(() -> "the server refused job " + id + "'s result: " + Reasons.describe(status));
      String error = "the server refused the handler's result: " + status.getMessage();
      settle(id, Settlement.fail(id, settlement.ack().getLeaseToken(), error, true));
    } else {
      log.warning(() -> "the server refused to settle job " + id + ": " + Reasons.describe(status));
    }
  }

  private void resend(String id) {
    Settlement settlement = unconfirmed.get(id);
    if (settlement != null) {
      send(settlement.request());
    }
  }

  private void extended(String id, Code code, com.google.rpc.Status status) {
    Running run = running.get(id);
    if (run == null || code == Code.OK) {
      return;
    }
    if (code == Code.UNAVAILABLE) {
      log.warning(() -> "could not extend the lease of job " + id + "; trying again soon");
      keeper.retrySoon(id, System.nanoTime());
      armKeeper();
      return;
    }
    run.lost = true;
    keeper.forget(id);
    armKeeper();
    run.cancel();
    log.warning(() -> "lost the lease of " + id + ": " + Reasons.describe(status));
  }

  // -- lease extension ---------------------------------------------------------------------

  private void armKeeper() {
    if (keeperTimer != null) {
      keeperTimer.cancel(false);
    }
    keeper.next().ifPresent(at -> {
      long delay = Math.max(0, at - System.nanoTime());
      keeperTimer = later(this::extendDue, delay, TimeUnit.NANOSECONDS);
    });
  }

  private void extendDue() {
    List<ExtendRequest> due = keeper.due(System.nanoTime());
    if (!due.isEmpty()) {
      send(LeaseRequest.newBuilder().addAllExtends(due).build());
    }
    armKeeper();
  }

  /** The grant's deadline minus its start, both on the server's clock: the lease length. */
  private static long leaseNanos(LeasedJob leased) {
    Job job = leased.getJob();
    if (job.hasStartTime() && leased.hasLeaseExpireTime()) {
      long nanos = nanos(leased.getLeaseExpireTime()) - nanos(job.getStartTime());
      if (nanos > 0) {
        return nanos;
      }
    }
    com.google.protobuf.Duration own = job.getLeaseDuration();
    long ownNanos = TimeUnit.SECONDS.toNanos(own.getSeconds()) + own.getNanos();
    return ownNanos > 0 ? ownNanos : DEFAULT_LEASE_NANOS;
  }

  private static long nanos(Timestamp time) {
    return TimeUnit.SECONDS.toNanos(time.getSeconds()) + time.getNanos();
  }

  // -- stopping ------------------------------------------------------------------------------

  private void startDrain() {
    if (draining || ended.isDone()) {
      return;
    }
    draining = true;
    // A window of zero pauses delivery: each ack would otherwise make room for a job we would
    // not start (the server counts an attempt for it, then releases it at the close).
    send(LeaseRequest.newBuilder().setSubscribe(Subscribe.newBuilder().setMaxInFlight(0)).build());
    if (!running.isEmpty()) {
      log.info(() -> "stopping; waiting for " + running.size() + " running job(s)");
    }
    graceTimer = later(this::stopHard, worker.options().grace().toMillis(), TimeUnit.MILLISECONDS);
    closeIfDrained();
  }

  /** The grace period is over: interrupt what still runs; the server releases those jobs. */
  private void stopHard() {
    hard = true;
    if (!running.isEmpty()) {
      log.warning(() -> "grace period over; interrupting " + running.size() + " running job(s)");
    }
    abandonRunning();
    closeIfDrained();
  }

  private void closeIfDrained() {
    boolean settled = running.isEmpty() && unconfirmed.isEmpty();
    if (draining && !closing && !ended.isDone() && (hard || settled)) {
      closing = true;
      requests.onCompleted(); // the server confirms what is left, then ends the call with OK
      later(() -> {
        log.warning("the server did not end the stream in time after the last acks");
        requests.cancel("flush timeout", null);
        end(Status.OK);
      }, FLUSH_TIMEOUT_MS, TimeUnit.MILLISECONDS);
    }
  }

  private void end(Status status) {
    if (ended.isDone()) {
      return;
    }
    if (!running.isEmpty()) {
      // The server released these jobs when the stream ended: their results would be refused.
      log.warning(() -> "stream ended with " + running.size() + " job(s) running; interrupting");
    }
    abandonRunning();
    if (graceTimer != null) {
      graceTimer.cancel(false);
    }
    ended.complete(closing ? null : status);
  }

  private void abandonRunning() {
    for (Running run : new ArrayList<>(running.values())) {
      run.cancel();
      keeper.forget(run.leased.getJob().getId());
    }
    running.clear();
    armKeeper();
  }
}
