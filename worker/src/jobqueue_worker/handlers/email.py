"""Send one email over SMTP: the reference worker's ``email`` job handler.

Payload (a JSON object)::

    to        str | list[str]  required; each item one mailbox, "user@host" or "Name <user@host>"
    subject   str              required
    body      str              the plain-text body (default "")
    html      str              optional HTML alternative; the message becomes multipart/alternative
    cc, bcc, reply_to          str | list[str], optional
    from      str              optional; defaults to ``EmailSettings.default_sender``

Addresses are parsed with the stdlib header parser (``email.policy.default``). Each item must be
exactly one mailbox with no parse defects, a non-empty ASCII local part (SMTPUTF8 is never needed)
and a domain that is either ``localhost`` or a dotted host name of letters, digits and hyphens
(``mail.example.com``); address literals such as ``user@[192.0.2.1]`` are refused. Display names
may be any Unicode. Bcc recipients receive the message but appear in no header.

Parsing, checking and writing out the message run in a thread, never on the event loop: the
email package's header parser and folder are super-linear on some inputs. Within the caps below,
a ``to`` of 100 valid addresses can take a second and a half to parse and Unicode display names a
minute or more to fold, and the loop must serve other jobs and the lease stream meanwhile. Past
``EmailSettings.parse_timeout_seconds`` the job fails; the thread itself cannot be stopped and
runs to its end in the background. The message is written 7-bit clean (a non-ASCII body is
quoted-printable or base64), which every SMTP server accepts, since the server's 8BITMIME support
is not known until the connection that follows.

Result::

    {"accepted": ["user@host", ...],          # envelope recipients the server took
     "rejected": {"user@host": "450 busy"},   # refused while others were accepted
     "message_id": "<...@sender-domain>",
     "response": "250 queued as ..."}         # the server's reply to DATA

A partial refusal still succeeds: retrying would send a second copy to those who got the first.

Failures:

- ``NonRetryableError``: a bad payload (missing ``to``/``subject``, an invalid address, a line
  break or other control character in any header field, also inside an RFC 2047 encoded word,
  a header field longer than 998 characters, more than 100 addresses in one field, named in the
  message); a message the email package refuses to write (``HeaderWriteError``); headers that take
  longer than ``parse_timeout_seconds`` to parse and write; every recipient refused with 5xx; any
  other 5xx reply (sender refused, authentication failed, message rejected).
- ``TransientEmailError`` (retryable, cause chained): 4xx replies, including every recipient refused
  when at least one refusal was 4xx; connection refused or reset, disconnects, timeouts, TLS
  handshake failures, and a server that stops offering STARTTLS or AUTH (a stripped-STARTTLS
  downgrade or a relay being reconfigured: worth another attempt, never a cleartext fallback).
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email import errors as email_errors
from email import policy
from email.errors import MessageError
from email.generator import BytesGenerator
from email.headerregistry import Address, AddressHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Literal

import aiosmtplib
from aiosmtplib import SMTPException, SMTPRecipientsRefused, SMTPResponse, SMTPResponseException

from jobqueue.errors import NonRetryableError

logger = logging.getLogger(__name__)

Security = Literal["none", "starttls", "tls"]

# Any C0 control except TAB, DEL, and the Unicode line separators str.splitlines() honours:
# each could end a header line early and smuggle in a new header.
_CONTROL_CHARS = re.compile("[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOTTED_HOST = re.compile(rf"(?:{_LABEL}\.)+{_LABEL}")
_HEADERS = HeaderRegistry()
# RFC 5322's limit for one header line. The email package's header parser is super-linear on
# some inputs (an 84 KB address took 17 s, a 280 KB subject 2.7 GB): nothing longer is parsed.
MAX_HEADER_CHARS = 998
MAX_ADDRESSES_PER_FIELD = 100
# Raised when a header would be written with a line break in it: CPython 3.11.10+ and 3.12.5+
# (the fix for CVE-2024-6923); older releases write the header as it is.
_HEADER_WRITE_ERROR: type[Exception] = getattr(email_errors, "HeaderWriteError", MessageError)
# 7-bit clean from the start: set_content then picks quoted-printable or base64 for non-ASCII text.
_MESSAGE_POLICY = policy.default.clone(cte_type="7bit")
_WIRE_POLICY = policy.SMTP.clone(cte_type="7bit")  # CRLF line ends, encoded words for Unicode


@dataclass(frozen=True, slots=True)
class EmailSettings:
    """How to reach the SMTP server; one per worker process."""

    host: str = "localhost"
    #: None picks the usual port for ``security``: 25, 587 (starttls) or 465 (tls).
    port: int | None = None
    #: "none" sends in clear, "starttls" upgrades (and fails if it can't), "tls" is implicit TLS.
    security: Security = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: The From address when a payload has none.
    default_sender: str | None = None
    timeout_seconds: float = 30.0
    validate_certs: bool = True
    #: A PEM bundle of CAs to trust instead of the system's (a private relay's CA).
    cafile: Path | None = None
    #: How long parsing, checking and writing out one message may take (in a thread).
    parse_timeout_seconds: float = 30.0


class TransientEmailError(Exception):
    """Delivery failed in a way a later attempt may not: the job should be retried."""


@dataclass(frozen=True, slots=True)
class PreparedEmail:
    """A checked message written out for SMTP: all the event loop needs to send it."""

    message_id: str
    sender: str
    recipients: list[str]
    data: bytes


async def send_email(payload: Mapping[str, Any], settings: EmailSettings) -> dict[str, Any]:
    """Build the message described by ``payload`` and deliver it; see the module docstring."""
    email = await _prepare_off_loop(payload, settings)
    refused, reply = await _deliver(email, settings)
    logger.info(
        "sent %s to %d of %d recipients",
        email.message_id,
        len(email.recipients) - len(refused),
        len(email.recipients),
    )
    return {
        "accepted": [r for r in email.recipients if r not in refused],
        "rejected": {addr: f"{resp.code} {resp.message}" for addr, resp in refused.items()},
        "message_id": email.message_id,
        "response": reply,
    }


async def _prepare_off_loop(payload: Mapping[str, Any], settings: EmailSettings) -> PreparedEmail:
    timeout = settings.parse_timeout_seconds
    try:
        async with asyncio.timeout(timeout):
            return await asyncio.to_thread(prepare_email, payload, settings.default_sender)
    except TimeoutError as exc:
        raise NonRetryableError(
            f"the header fields took longer than the worker's {timeout:g} s limit to parse and "
            "write (email_parse_timeout_seconds)"
        ) from exc


def prepare_email(payload: Mapping[str, Any], default_sender: str | None) -> PreparedEmail:
    """Check ``payload``, build the message and write it out: CPU work, for a thread."""
    message, sender, recipients = build_message(payload, default_sender)
    buffer = io.BytesIO()
    try:
        BytesGenerator(buffer, policy=_WIRE_POLICY).flatten(message)
    except _HEADER_WRITE_ERROR as exc:
        raise NonRetryableError(f"the message cannot be written safely: {exc}") from exc
    return PreparedEmail(str(message["Message-ID"]), sender.addr_spec, recipients, buffer.getvalue())


def build_message(
    payload: Mapping[str, Any], default_sender: str | None
) -> tuple[EmailMessage, Address, list[str]]:
    """Validate ``payload`` and return the message, its sender and the envelope recipients."""
    to = _addresses(payload, "to", required=True)
    subject = _text(payload, "subject", required=True, header=True)
    cc = _addresses(payload, "cc")
    bcc = _addresses(payload, "bcc")
    reply_to = _addresses(payload, "reply_to")
    sender = _sender(payload, default_sender)
    message = EmailMessage(policy=_MESSAGE_POLICY)
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    if reply_to:
        message["Reply-To"] = reply_to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.domain)
    message.set_content(_text(payload, "body") or "")
    html = _text(payload, "html")
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message, sender, _unique(a.addr_spec for a in (*to, *cc, *bcc))


def parse_address(field_name: str, value: str) -> Address:
    """Parse one mailbox, raising NonRetryableError that names ``field_name`` if it is invalid."""
    _refuse_control_chars(field_name, value)
    _refuse_long(field_name, value)
    try:
        header = _HEADERS("to", value)
    # The parser raises these on some garbage, and recurses once per nested comment.
    except (MessageError, IndexError, ValueError, RecursionError) as exc:
        raise NonRetryableError(f"{field_name}: invalid email address {value[:100]!r}") from exc
    if not isinstance(header, AddressHeader) or header.defects or len(header.addresses) != 1:
        raise NonRetryableError(f"{field_name}: expected one valid email address, got {value!r}")
    address = header.addresses[0]
    # The display name as decoded from encoded words: a line break there is a header injection.
    _refuse_control_chars(f"{field_name} (decoded)", address.display_name or "")
    if header.groups[0].display_name is not None:
        raise NonRetryableError(f"{field_name}: address groups are not accepted: {value!r}")
    if not address.username or not address.username.isascii():
        raise NonRetryableError(f"{field_name}: the address needs an ASCII local part: {value!r}")
    if address.domain.lower() != "localhost" and not _DOTTED_HOST.fullmatch(address.domain):
        raise NonRetryableError(f"{field_name}: the address needs a host name like example.com: {value!r}")
    return address


def _sender(payload: Mapping[str, Any], default_sender: str | None) -> Address:
    if payload.get("from") is not None:
        return parse_address("from", _text(payload, "from", required=True) or "")
    if default_sender is None:
        raise NonRetryableError("from is required: the payload has none and no default sender is set")
    return parse_address("from (default sender)", default_sender)


def _addresses(payload: Mapping[str, Any], name: str, *, required: bool = False) -> list[Address]:
    raw = payload.get(name)
    if raw is None or raw == "" or raw == []:
        if required:
            raise NonRetryableError(f"{name} is required")
        return []
    if isinstance(raw, str):
        return [parse_address(name, raw)]
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise NonRetryableError(f"{name} must be a string or a list of strings")
    if len(raw) > MAX_ADDRESSES_PER_FIELD:
        raise NonRetryableError(f"{name}: at most {MAX_ADDRESSES_PER_FIELD} addresses, got {len(raw)}")
    return [parse_address(f"{name}[{i}]", item) for i, item in enumerate(raw)]


def _text(
    payload: Mapping[str, Any], name: str, *, required: bool = False, header: bool = False
) -> str | None:
    value = payload.get(name)
    if value is None:
        if required:
            raise NonRetryableError(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise NonRetryableError(f"{name} must be a string")
    if header:
        _refuse_control_chars(name, value)
        _refuse_long(name, value)
        # As the header will read once its encoded words are decoded.
        _refuse_control_chars(f"{name} (decoded)", str(_HEADERS(name, value)))
    return value


def _refuse_control_chars(field_name: str, value: str) -> None:
    if _CONTROL_CHARS.search(value):
        raise NonRetryableError(f"{field_name} contains a line break or control character")


def _refuse_long(field_name: str, value: str) -> None:
    if len(value) > MAX_HEADER_CHARS:
        raise NonRetryableError(f"{field_name} is longer than {MAX_HEADER_CHARS} characters")


def _unique(addresses: Iterable[str]) -> list[str]:
    """Drop repeated envelope recipients (case-insensitively), keeping first-seen order."""
    seen: dict[str, str] = {}
    for address in addresses:
        seen.setdefault(address.lower(), address)
    return list(seen.values())


async def _deliver(email: PreparedEmail, settings: EmailSettings) -> tuple[dict[str, SMTPResponse], str]:
    try:
        return await aiosmtplib.send(
            email.data,
            sender=email.sender,
            recipients=email.recipients,
            hostname=settings.host,
            port=settings.port,
            username=settings.username,
            password=settings.password,
            use_tls=settings.security == "tls",
            start_tls=settings.security == "starttls",
            validate_certs=settings.validate_certs,
            cert_bundle=str(settings.cafile) if settings.cafile else None,
            timeout=settings.timeout_seconds,
        )
    except SMTPRecipientsRefused as exc:
        raise _all_refused(exc) from exc
    except SMTPResponseException as exc:
        raise _classify_reply(exc) from exc
    except (SMTPException, OSError) as exc:  # OSError covers refused/reset connections and TLS errors
        raise TransientEmailError(f"SMTP delivery via {settings.host} failed: {exc!r}") from exc


def _all_refused(exc: SMTPRecipientsRefused) -> Exception:
    details = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
    if all(r.code >= 500 for r in exc.recipients):
        return NonRetryableError(f"every recipient was refused: {details}")
    return TransientEmailError(f"every recipient was refused, some temporarily: {details}")


def _classify_reply(exc: SMTPResponseException) -> Exception:
    text = f"SMTP server replied {exc.code} {exc.message}"
    if exc.code >= 500:
        return NonRetryableError(text)
    return TransientEmailError(text)
