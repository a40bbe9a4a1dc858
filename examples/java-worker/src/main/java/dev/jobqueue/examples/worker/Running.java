package dev.jobqueue.examples.worker;

import dev.jobqueue.v1.LeasedJob;

/** A job this stream handed to a handler; cancelling it interrupts the handler's thread. */
final class Running {
  final LeasedJob leased;
  /** An extend was refused: the job is someone else's; its outcome only frees the slot. */
  boolean lost;
  private Thread thread;
  private boolean cancelled;

  Running(LeasedJob leased) {
    this.leased = leased;
  }

  /** Binds the handler's thread, unless the job was cancelled before it began. */
  synchronized boolean enter() {
    thread = Thread.currentThread();
    return !cancelled;
  }

  /** Unbinds it, so that a late cancel cannot interrupt the pool's next task. */
  synchronized void exit() {
    thread = null;
    Thread.interrupted();
  }

  synchronized void cancel() {
    cancelled = true;
    if (thread != null) {
      thread.interrupt();
    }
  }
}
