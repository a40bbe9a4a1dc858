"""Python client for the jobqueue gRPC service."""
