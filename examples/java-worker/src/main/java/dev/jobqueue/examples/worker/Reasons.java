package dev.jobqueue.examples.worker;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.ErrorInfo;
import com.google.rpc.Status;

/** Reads the ErrorInfo reason (an ErrorReason value name) that every refusal carries. */
final class Reasons {
  private Reasons() {}

  static String of(Status status) {
    for (Any detail : status.getDetailsList()) {
      if (detail.is(ErrorInfo.class)) {
        try {
          return detail.unpack(ErrorInfo.class).getReason();
        } catch (InvalidProtocolBufferException e) {
          return "";
        }
      }
    }
    return "";
  }

  /** "CODE REASON: message", for logs. */
  static String describe(Status status) {
    io.grpc.Status.Code code = io.grpc.Status.fromCodeValue(status.getCode()).getCode();
    return code + " " + of(status) + ": " + status.getMessage();
  }
}
