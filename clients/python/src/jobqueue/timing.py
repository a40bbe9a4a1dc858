"""Waiting and reading time for the producer clients, in the flavour of each.

The blocking Client is generated from AsyncClient (scripts/unasync.py), which turns
``await timing.async_sleep(...)`` into ``timing.sleep(...)``: keeping both here keeps that
rewrite a plain rename. Both clients read the same monotonic clock (asyncio's loop time is
``time.monotonic`` too).
"""

from __future__ import annotations

import asyncio
import time

monotonic = time.monotonic


async def async_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def sleep(seconds: float) -> None:
    time.sleep(seconds)
