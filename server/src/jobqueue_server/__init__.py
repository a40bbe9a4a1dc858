"""The jobqueue gRPC server: a job queue over Redis lists, one Lua script per transition."""
