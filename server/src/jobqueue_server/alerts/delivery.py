"""One webhook delivery: a signed JSON POST to a vetted address.

The URL's host is resolved and vetted by the same rules as the reference worker's downloads
(jobqueue/addresses.py), at every delivery, and the request goes to the vetted address itself with
the name in the Host header and in SNI (and certificate checks), so a DNS answer that changed
cannot send it elsewhere. No redirect is followed and no proxy from the environment is used.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import time
from typing import Any

import aiohttp
from yarl import URL

from jobqueue.addresses import AddressRefused, HostNotFound, ResolutionFailed, resolve_vetted

TIMEOUT_S = 10.0
SIGNATURE_HEADER = "Jobqueue-Signature"


class DeliveryFailed(Exception):
    """The endpoint could not be reached or did not answer 2xx: try again later."""


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256 over "<timestamp>.<body>" (receivers check it, and that the
    timestamp is recent, to refuse forged or replayed deliveries)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def checked_url(text: str) -> URL:
    """An http(s) URL with a host and no credentials; ValueError saying what is wrong."""
    try:
        url = URL(text)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"is not a URL: {exc}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("must be an http:// or https:// URL with a host")
    if url.user or url.password:
        raise ValueError("must not carry credentials (the signature authenticates deliveries)")
    return url


async def vetted_addresses(url: URL, allow_private: bool) -> list[str]:
    """Where the URL's host may be reached; DeliveryFailed when nowhere (a refused address)."""
    assert url.host is not None and url.port is not None  # checked_url
    try:
        return await resolve_vetted(url.host, url.port, allow_private)
    except (AddressRefused, HostNotFound, ResolutionFailed) as exc:
        raise DeliveryFailed(str(exc)) from exc


def _at(url: URL, address: str) -> URL:
    """`url` with its host replaced by the vetted address (an IPv6 one in brackets)."""
    host = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    return URL(f"{url.scheme}://{host}:{url.port}{url.raw_path_qs}", encoded=True)


async def deliver(
    session: aiohttp.ClientSession,
    target: str,
    allow_private: bool,
    secret: str,
    event: str,
    delivery_id: str,
    payload: dict[str, Any],
) -> None:
    """POSTs `payload`; returns once the endpoint answered 2xx, else raises DeliveryFailed."""
    url = checked_url(target)
    body = json.dumps(payload, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "jobqueue-webhooks",
        "Host": url.raw_authority,
        "Jobqueue-Event": event,
        "Jobqueue-Delivery": delivery_id,
        "Jobqueue-Timestamp": timestamp,
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }
    error: Exception | None = None
    for address in await vetted_addresses(url, allow_private):
        try:
            async with session.post(
                _at(url, address),
                data=body,
                headers=headers,
                allow_redirects=False,
                server_hostname=url.host if url.scheme == "https" else None,
            ) as response:
                if 200 <= response.status < 300:
                    return
                raise DeliveryFailed(f"{target} answered {response.status}")
        except aiohttp.ClientConnectorError as exc:  # the next address may answer
            error = exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryFailed(f"{target}: {exc!r}") from exc
    raise DeliveryFailed(f"{target}: {error!r}")


def http_client() -> aiohttp.ClientSession:
    """A session whose connections close after each delivery: alerts are few, and an idle pooled
    connection would outlive an endpoint that went away."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(force_close=True),
        trust_env=False,
        timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
    )
