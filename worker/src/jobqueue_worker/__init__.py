"""The reference worker: job handlers and the runtime that leases jobs and runs them."""
