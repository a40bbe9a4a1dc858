"""One webhook delivery: a signed JSON POST to a vetted address.

The URL's host is resolved and vetted by the same rules as the reference worker's downloads
(jobqueue/addresses.py), at every delivery, and the request goes to the vetted address itself with
the name in the Host header and SNI, so a DNS answer that changed cannot send it elsewhere. No
redirect is followed and no proxy from the environment is used.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx

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


def checked_url(text: str) -> httpx.URL:
    """An http(s) URL with a host and no credentials; ValueError saying what is wrong."""
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as exc:
        raise ValueError(f"is not a URL: {exc}") from exc
    if url.scheme not in ("http", "https") or not url.raw_host:
        raise ValueError("must be an http:// or https:// URL with a host")
    if url.userinfo:
        raise ValueError("must not carry credentials (the signature authenticates deliveries)")
    return url


async def vetted_addresses(url: httpx.URL, allow_private: bool) -> list[str]:
    """Where the URL's host may be reached; DeliveryFailed when nowhere (a refused address)."""
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        return await resolve_vetted(url.raw_host.decode("ascii"), port, allow_private)
    except (AddressRefused, HostNotFound, ResolutionFailed) as exc:
        raise DeliveryFailed(str(exc)) from exc


async def deliver(
    client: httpx.AsyncClient,
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
        "Host": url.netloc.decode("ascii"),
        "Jobqueue-Event": event,
        "Jobqueue-Delivery": delivery_id,
        "Jobqueue-Timestamp": timestamp,
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }
    host = url.raw_host.decode("ascii")
    error: Exception | None = None
    for address in await vetted_addresses(url, allow_private):
        request = client.build_request(
            "POST",
            url.copy_with(host=address),
            content=body,
            headers=headers,
            extensions={"sni_hostname": host} if url.scheme == "https" else {},
        )
        try:
            response = await client.send(request, follow_redirects=False)
        except httpx.ConnectError as exc:  # the next address may answer
            error = exc
            continue
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{target}: {exc!r}") from exc
        if 200 <= response.status_code < 300:
            return
        raise DeliveryFailed(f"{target} answered {response.status_code}")
    raise DeliveryFailed(f"{target}: {error!r}")


def http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(trust_env=False, timeout=TIMEOUT_S)
