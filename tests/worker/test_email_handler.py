"""The email handler against a real aiosmtpd server on 127.0.0.1 (plain, STARTTLS, TLS, AUTH)."""

from __future__ import annotations

import asyncio
import email
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest

from jobqueue.errors import NonRetryableError
from jobqueue_worker.handlers.email import EmailSettings, TransientEmailError, send_email

from .conftest import SMTP_PASSWORD, SMTP_USER, SmtpServer, check_login

SENDER = "Jobs <jobs@example.com>"


def plain(server: SmtpServer, **overrides: Any) -> EmailSettings:
    options: dict[str, Any] = {"security": "none", "default_sender": SENDER, "timeout_seconds": 10.0}
    options.update(overrides)
    return EmailSettings(host=server.host, port=server.port, **options)


def delivered(server: SmtpServer) -> EmailMessage:
    (envelope,) = server.handler.envelopes
    assert isinstance(envelope.content, bytes)
    message = email.message_from_bytes(envelope.content, policy=default_policy)
    assert isinstance(message, EmailMessage)
    return message


def payload(**fields: Any) -> dict[str, Any]:
    return {"to": "Ann <ann@example.com>", "subject": "Hello", "body": "Hi Ann", **fields}


async def test_message_arrives_with_the_headers_the_payload_asked_for(smtp_server: SmtpServer) -> None:
    result = await send_email(
        payload(cc=["cy@example.com"], reply_to="help@example.com", **{"from": "Bo <bo@example.org>"}),
        plain(smtp_server),
    )

    message = delivered(smtp_server)
    assert message["From"] == "Bo <bo@example.org>"
    assert message["To"] == "Ann <ann@example.com>"
    assert message["Cc"] == "cy@example.com"
    assert message["Reply-To"] == "help@example.com"
    assert message["Subject"] == "Hello"
    assert message["Message-ID"] == result["message_id"]
    assert result["message_id"].endswith("@example.org>")
    assert message.get_content().strip() == "Hi Ann"
    assert smtp_server.handler.envelopes[0].mail_from == "bo@example.org"
    assert result["accepted"] == ["ann@example.com", "cy@example.com"]
    assert result["rejected"] == {}
    assert result["response"]


async def test_bcc_recipients_are_in_the_envelope_but_in_no_header(smtp_server: SmtpServer) -> None:
    result = await send_email(payload(bcc=["hidden@example.com"]), plain(smtp_server))

    envelope = smtp_server.handler.envelopes[0]
    assert "Bcc" not in delivered(smtp_server)
    assert isinstance(envelope.content, bytes) and b"hidden@example.com" not in envelope.content
    assert envelope.rcpt_tos == ["ann@example.com", "hidden@example.com"]
    assert "hidden@example.com" in result["accepted"]


async def test_html_makes_a_multipart_alternative_with_text_and_html(smtp_server: SmtpServer) -> None:
    await send_email(payload(html="<p>Hi <b>Ann</b></p>"), plain(smtp_server))

    message = delivered(smtp_server)
    assert message.get_content_type() == "multipart/alternative"
    text, html = message.iter_parts()
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    assert text.get_content_type() == "text/plain"
    assert text.get_content().strip() == "Hi Ann"
    assert html.get_content_type() == "text/html"
    assert html.get_content().strip() == "<p>Hi <b>Ann</b></p>"


async def test_a_unicode_body_and_display_name_travel_7_bit_clean_and_arrive_intact(
    smtp_server: SmtpServer,
) -> None:
    await send_email(
        payload(to="Zoë Ünal <zoe@example.com>", body="Grüße, Zoë", html="<p>Grüße</p>"), plain(smtp_server)
    )

    content = smtp_server.handler.envelopes[0].content
    assert isinstance(content, bytes) and content.isascii()
    message = delivered(smtp_server)
    assert message["To"] == "Zoë Ünal <zoe@example.com>"
    text, html = message.iter_parts()
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    assert (text.get_content().strip(), html.get_content().strip()) == ("Grüße, Zoë", "<p>Grüße</p>")


async def test_the_default_sender_is_used_when_the_payload_names_none(smtp_server: SmtpServer) -> None:
    await send_email(payload(), plain(smtp_server))

    assert delivered(smtp_server)["From"] == SENDER
    assert smtp_server.handler.envelopes[0].mail_from == "jobs@example.com"


async def test_repeated_recipients_get_one_copy(smtp_server: SmtpServer) -> None:
    result = await send_email(payload(cc="ANN@example.com", bcc="ann@example.com"), plain(smtp_server))

    assert result["accepted"] == ["ann@example.com"]


async def test_starttls_with_auth_delivers_when_the_server_requires_both(
    start_smtp: Callable[..., SmtpServer], server_tls_context: ssl.SSLContext, ca_file: Path
) -> None:
    server = start_smtp(
        tls_context=server_tls_context, require_starttls=True, authenticator=check_login, auth_required=True
    )
    settings = plain(server, security="starttls", cafile=ca_file, username=SMTP_USER, password=SMTP_PASSWORD)

    result = await send_email(payload(), settings)

    assert result["accepted"] == ["ann@example.com"]
    assert delivered(server)["Subject"] == "Hello"


async def test_a_wrong_password_is_not_retryable(
    start_smtp: Callable[..., SmtpServer], server_tls_context: ssl.SSLContext, ca_file: Path
) -> None:
    server = start_smtp(
        tls_context=server_tls_context, require_starttls=True, authenticator=check_login, auth_required=True
    )
    settings = plain(server, security="starttls", cafile=ca_file, username=SMTP_USER, password="wrong")

    with pytest.raises(NonRetryableError, match="535"):
        await send_email(payload(), settings)
    assert server.handler.envelopes == []


async def test_implicit_tls_delivers(
    start_smtp: Callable[..., SmtpServer], server_tls_context: ssl.SSLContext, ca_file: Path
) -> None:
    server = start_smtp(ssl_context=server_tls_context)

    await send_email(payload(), plain(server, security="tls", cafile=ca_file))

    assert delivered(server)["To"] == "Ann <ann@example.com>"


async def test_a_certificate_from_an_untrusted_ca_is_refused_as_retryable(
    start_smtp: Callable[..., SmtpServer], server_tls_context: ssl.SSLContext
) -> None:
    server = start_smtp(tls_context=server_tls_context, require_starttls=True)

    with pytest.raises(TransientEmailError) as caught:
        await send_email(payload(), plain(server, security="starttls"))
    assert caught.value.__cause__ is not None
    assert server.handler.envelopes == []


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"to": "not-an-address"}, "to"),
        ({"to": "ann@"}, "to"),
        ({"to": "ann@intranet"}, "to"),
        ({"to": "ann@[127.0.0.1]"}, "to"),
        ({"to": "ann@example.com, bo@example.com"}, "to"),
        ({"to": ["ann@example.com", "bo at example.com"]}, r"to\[1\]"),
        ({"cc": "@example.com"}, "cc"),
        ({"from": "nobody"}, "from"),
        ({"reply_to": ["ok@example.com", "x@y@z.com"]}, r"reply_to\[1\]"),
        ({"to": 42}, "to"),
    ],
)
async def test_an_invalid_address_is_not_retryable_and_names_its_field(
    fields: dict[str, Any], named: str, refused_port: int
) -> None:
    settings = EmailSettings(host="127.0.0.1", port=refused_port, security="none", default_sender=SENDER)

    with pytest.raises(NonRetryableError, match=rf"^{named}[: ]"):
        await send_email(payload(**fields), settings)


async def test_an_address_on_localhost_is_accepted(smtp_server: SmtpServer) -> None:
    result = await send_email(payload(to="root@localhost"), plain(smtp_server))

    assert result["accepted"] == ["root@localhost"]


@pytest.mark.parametrize("line_break", ["\r\n", "\n", "\r", "\u2028"])
async def test_a_line_break_in_the_subject_is_refused_as_header_injection(
    line_break: str, smtp_server: SmtpServer
) -> None:
    with pytest.raises(NonRetryableError, match=r"^subject contains a line break"):
        await send_email(payload(subject=f"Hi{line_break}Bcc: victim@example.com"), plain(smtp_server))
    assert smtp_server.handler.envelopes == []


async def test_a_line_break_in_an_address_is_refused_as_header_injection(smtp_server: SmtpServer) -> None:
    with pytest.raises(NonRetryableError, match=r"^to contains a line break"):
        await send_email(payload(to="ann@example.com\r\nBcc: victim@example.com"), plain(smtp_server))


@pytest.mark.parametrize(
    ("fields", "refusal"),
    [
        # Issue 12's probe: CR/LF inside an RFC 2047 encoded word passed the raw check, and
        # CPython before the fix for CVE-2024-6923 wrote a real X-Injected header.
        ({"subject": "=?utf-8?q?hi=0D=0AX-Injected:_1?="}, r"^subject \(decoded\) contains a line break"),
        ({"subject": "=?utf-8?b?aGkNCg0KQm9keQ==?="}, r"^subject \(decoded\) contains a line break"),
        ({"to": "=?utf-8?q?Ann=0D=0ABcc:_victim@example.com?= <ann@example.com>"}, r"^to: "),
    ],
)
async def test_a_line_break_inside_an_encoded_word_is_refused_as_header_injection(
    fields: dict[str, str], refusal: str, smtp_server: SmtpServer
) -> None:
    with pytest.raises(NonRetryableError, match=refusal):
        await send_email(payload(**fields), plain(smtp_server))
    assert smtp_server.handler.envelopes == []


@pytest.mark.parametrize(
    ("fields", "refusal"),
    [
        ({"to": "a" * 84_000 + "@example.com"}, r"^to is longer than 998 characters"),
        ({"subject": "x" * 280_000}, r"^subject is longer than 998 characters"),
        ({"to": [f"u{n}@example.com" for n in range(101)]}, r"^to: at most 100 addresses, got 101"),
        # Each nested comment is a level of the parser's recursion: refused, not retried.
        ({"to": "a@b.co " + "(" * 495 + ")" * 495}, r"^to: invalid email address"),
    ],
)
async def test_header_fields_too_large_to_parse_safely_are_refused_before_parsing(
    fields: dict[str, Any], refusal: str, smtp_server: SmtpServer
) -> None:
    with pytest.raises(NonRetryableError, match=refusal):
        await send_email(payload(**fields), plain(smtp_server))
    assert smtp_server.handler.envelopes == []


def slowest_allowed_to() -> list[str]:
    """The most addresses a field takes, each a valid mailbox of the longest length allowed.

    A run of comments is among the slowest valid forms for the stdlib header parser: about
    15 ms each here, so parsing this list takes about a second and a half of CPU.
    """
    addresses = []
    for n in range(100):
        mailbox = f"u{n:03}@example.com"
        addresses.append("(a)" * ((998 - len(mailbox)) // 3) + mailbox)
    return addresses


async def test_a_slow_header_parse_runs_off_the_loop_which_meanwhile_delivers_another_email(
    smtp_server: SmtpServer,
) -> None:
    settings = plain(smtp_server)
    slow = asyncio.create_task(
        send_email(payload(to=slowest_allowed_to(), **{"from": "slow@example.com"}), settings)
    )
    await asyncio.sleep(0)  # the slow job starts first: on the loop, its parse would block all else

    await send_email(payload(**{"from": "quick@example.com"}), settings)
    await slow

    # The quick email went through the whole SMTP exchange before the slow one, still being
    # parsed, even opened its transaction.
    events = smtp_server.handler.events
    assert events.index(("DATA", "quick@example.com")) < events.index(("MAIL", "slow@example.com"))
    assert len(smtp_server.handler.envelopes[1].rcpt_tos) == 100


async def test_a_header_parse_past_its_timeout_fails_the_job_without_sending(
    smtp_server: SmtpServer,
) -> None:
    settings = plain(smtp_server, parse_timeout_seconds=0.01)

    refusal = (
        r"^the header fields took longer than the worker's 0\.01 s limit .*\(email_parse_timeout_seconds\)$"
    )
    with pytest.raises(NonRetryableError, match=refusal):
        await send_email(payload(to=slowest_allowed_to()), settings)
    assert smtp_server.handler.events == []


async def test_an_encoded_word_without_line_breaks_is_delivered_decoded(smtp_server: SmtpServer) -> None:
    await send_email(payload(subject="=?utf-8?q?Gr=C3=BC=C3=9Fe?="), plain(smtp_server))

    assert delivered(smtp_server)["Subject"] == "Grüße"


@pytest.mark.parametrize("missing", ["to", "subject"])
async def test_a_payload_without_to_or_subject_is_not_retryable(
    missing: str, smtp_server: SmtpServer
) -> None:
    fields = payload()
    del fields[missing]

    with pytest.raises(NonRetryableError, match=f"^{missing} is required"):
        await send_email(fields, plain(smtp_server))


async def test_a_payload_without_from_and_no_default_sender_is_not_retryable(smtp_server: SmtpServer) -> None:
    with pytest.raises(NonRetryableError, match=r"^from is required"):
        await send_email(payload(), plain(smtp_server, default_sender=None))


async def test_a_451_reply_to_data_is_retryable(smtp_server: SmtpServer) -> None:
    smtp_server.handler.data_reply = "451 4.3.0 try later"

    with pytest.raises(TransientEmailError, match="451") as caught:
        await send_email(payload(), plain(smtp_server))
    assert caught.value.__cause__ is not None


async def test_550_for_every_recipient_is_not_retryable(smtp_server: SmtpServer) -> None:
    smtp_server.handler.rcpt_replies = {
        "ann@example.com": "550 5.1.1 no such user",
        "bo@example.com": "550 5.1.1 no such user",
    }

    with pytest.raises(NonRetryableError, match="every recipient was refused"):
        await send_email(payload(cc="bo@example.com"), plain(smtp_server))
    assert smtp_server.handler.envelopes == []


async def test_every_recipient_refused_with_one_temporary_refusal_is_retryable(
    smtp_server: SmtpServer,
) -> None:
    smtp_server.handler.rcpt_replies = {
        "ann@example.com": "550 5.1.1 no such user",
        "bo@example.com": "450 4.2.1 mailbox busy",
    }

    with pytest.raises(TransientEmailError, match="450"):
        await send_email(payload(cc="bo@example.com"), plain(smtp_server))


async def test_a_partial_refusal_is_reported_and_the_rest_delivered(smtp_server: SmtpServer) -> None:
    smtp_server.handler.rcpt_replies = {"bo@example.com": "550 5.1.1 no such user"}

    result = await send_email(payload(cc="bo@example.com"), plain(smtp_server))

    assert result["accepted"] == ["ann@example.com"]
    assert result["rejected"] == {"bo@example.com": "550 5.1.1 no such user"}
    assert smtp_server.handler.envelopes[0].rcpt_tos == ["ann@example.com"]


async def test_a_refused_connection_is_retryable(refused_port: int) -> None:
    settings = EmailSettings(host="127.0.0.1", port=refused_port, security="none", default_sender=SENDER)

    with pytest.raises(TransientEmailError) as caught:
        await send_email(payload(), settings)
    assert isinstance(caught.value.__cause__, ConnectionError)


async def test_a_server_that_never_greets_times_out_as_retryable() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # say nothing until the client gives up
        writer.close()

    async with await asyncio.start_server(silent, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        settings = EmailSettings(
            host="127.0.0.1", port=port, security="none", default_sender=SENDER, timeout_seconds=0.2
        )
        with pytest.raises(TransientEmailError) as caught:
            await send_email(payload(), settings)
    assert isinstance(caught.value.__cause__, TimeoutError)


async def test_a_server_that_hangs_up_mid_conversation_is_retryable() -> None:
    async def rude(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 localhost ESMTP\r\n")
        await reader.readline()  # EHLO
        writer.close()

    async with await asyncio.start_server(rude, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        settings = EmailSettings(host="127.0.0.1", port=port, security="none", default_sender=SENDER)
        with pytest.raises(TransientEmailError) as caught:
            await send_email(payload(), settings)
    assert isinstance(caught.value.__cause__, ConnectionError)
