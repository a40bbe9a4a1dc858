package dev.jobqueue.examples.worker;

/** Fails a job for good: it goes to DEAD at once, whatever attempts it has left. */
public final class NonRetryableException extends Exception {
  private static final long serialVersionUID = 1L;

  public NonRetryableException(String message) {
    super(message);
  }
}
