"""What a server shows operators: Prometheus metrics (docs/monitoring.md)."""
