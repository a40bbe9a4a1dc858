"""A local SMTP server that keeps every message it receives as an .eml file (for `jobq dev`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from jobqueue_cli.devstack.output import Output


class SaveToFolder:
    """aiosmtpd handler: writes each message, as received, to ``<folder>/<time>-<id>.eml``."""

    def __init__(self, folder: Path, output: Output) -> None:
        self.folder = folder
        self.output = output

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        content = envelope.original_content or b""
        path = self.save(content)
        subject = BytesHeaderParser(policy=default_policy).parsebytes(content).get("subject", "")
        recipients = ", ".join(envelope.rcpt_tos)
        self.output.line("smtp", f"mail from {envelope.mail_from} to {recipients}: {subject!r} -> {path}")
        return "250 Message accepted for delivery"

    def save(self, content: bytes) -> Path:
        # Written under a temporary name and renamed, so a reader never sees half a message.
        name = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}.eml"
        partial = self.folder / f".{name}.partial"
        partial.write_bytes(content)
        return partial.rename(self.folder / name)


class MailSink:
    """The SMTP sink on host:port, served by aiosmtpd in its own thread."""

    def __init__(self, folder: Path, host: str, port: int, output: Output) -> None:
        self.folder = folder
        self.host = host
        self.port = port
        self._controller = Controller(SaveToFolder(folder, output), hostname=host, port=port)

    def start(self) -> None:
        """Blocks until the server answers (aiosmtpd checks by connecting to it)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
