"""Job handlers: pure async functions over plain dicts; they never see gRPC."""
