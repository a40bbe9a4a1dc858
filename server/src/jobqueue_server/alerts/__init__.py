"""Failure alerts: webhooks the servers call when jobs die or queues pass thresholds."""
