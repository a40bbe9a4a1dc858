"""Fixtures shared by the end-to-end tests: an SMTP server, a `jobq serve` process, children."""

from __future__ import annotations

import contextlib
import email
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as default_policy

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.processes import ChildProcess, ServeProcess
from tests.support import EphemeralPortController, TestRedis

Spawn = Callable[..., ChildProcess]


class Mailbox:
    """An aiosmtpd handler keeping every message delivered to it."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        return [_parse(envelope) for envelope in self.envelopes]


def _parse(envelope: Envelope) -> EmailMessage:
    assert isinstance(envelope.content, bytes)
    message = email.message_from_bytes(envelope.content, policy=default_policy)
    assert isinstance(message, EmailMessage)
    return message


@dataclass
class SmtpSink:
    port: int
    mailbox: Mailbox


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    mailbox = Mailbox()
    controller = EphemeralPortController(mailbox, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        yield SmtpSink(controller.port, mailbox)
    finally:
        controller.stop()


@pytest.fixture
def server(test_redis: TestRedis, key_prefix: str) -> Iterator[ServeProcess]:
    process = ServeProcess(["--redis-url", test_redis.url], {"JOBQ_KEY_PREFIX": key_prefix})
    try:
        yield process
    finally:
        process.close()


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Starts child processes and kills whatever still runs at the end, pipes closed."""
    with contextlib.ExitStack() as cleanup:

        def start(
            args: Sequence[str], env: Mapping[str, str] | None = None, module: str = "jobqueue_cli"
        ) -> ChildProcess:
            child = ChildProcess(args, env, module=module)
            cleanup.callback(child.close)
            return child

        yield start
