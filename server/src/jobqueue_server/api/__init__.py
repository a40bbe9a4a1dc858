"""gRPC servicers: validate, call the store, map records to messages."""
