"""Fault-injection tests: real processes, minutes long, marked `fault` (deselect with -m 'not fault')."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fault: starts real servers, workers and Valkey and injects faults (minutes)"
    )
