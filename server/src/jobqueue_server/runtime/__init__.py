"""Process plumbing: configuration to a running server, embedded Valkey, health."""
