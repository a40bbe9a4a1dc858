"""Fetch a source image: over http(s) with SSRF defences, or from a file inside allowed folders.

URLs: only http and https, no credentials in the URL. The host is resolved here and every address
it resolves to must be public (jobqueue/addresses.py) unless ``allow_private_networks``. The
request then goes to the vetted address itself (the URL's host swapped for the IP, the name kept
in the Host header and, for https, in SNI and certificate verification), so a second DNS answer
cannot redirect it (DNS rebinding). Redirects are followed by
hand, at most ``MAX_REDIRECTS``, each hop vetted like the first. Proxies from the environment are
ignored, since a proxy would make its own DNS lookups. The whole download has one deadline, and the
body is streamed and cut off past ``max_bytes`` (decoded size, so gzip cannot inflate past it).

Files: the path must be absolute and, once symlinks and ``..`` are resolved, lie inside one of the
allowed folders.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from pathlib import Path

import httpx

from jobqueue.addresses import AddressRefused, HostNotFound, ResolutionFailed, resolve_vetted
from jobqueue.errors import NonRetryableError

MAX_REDIRECTS = 3
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_RETRYABLE_STATUSES = frozenset({408, 429})


class TransientImageError(Exception):
    """Fetching the image failed in a way a later attempt may not: the job should be retried."""


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    max_bytes: int
    timeout_seconds: float
    allow_private_networks: bool = False
    #: A PEM bundle of CAs to trust instead of the default (certifi) bundle.
    cafile: Path | None = None


async def fetch_url(
    url: str, policy: FetchPolicy, *, transport: httpx.AsyncBaseTransport | None = None
) -> bytes:
    """Download ``url`` under ``policy``; ``transport`` replaces the network in tests."""
    verify = ssl.create_default_context(cafile=policy.cafile) if policy.cafile else True
    async with httpx.AsyncClient(
        transport=transport, verify=verify, trust_env=False, timeout=policy.timeout_seconds
    ) as client:
        try:
            async with asyncio.timeout(policy.timeout_seconds):
                return await _follow(client, _parse_url(url), policy)
        except TimeoutError as exc:
            raise TransientImageError(f"downloading {url} took over {policy.timeout_seconds}s") from exc
        except httpx.TransportError as exc:  # connect/read errors and httpx's own timeouts
            raise TransientImageError(f"downloading {url} failed: {exc!r}") from exc


async def _follow(client: httpx.AsyncClient, url: httpx.URL, policy: FetchPolicy) -> bytes:
    for _ in range(MAX_REDIRECTS + 1):
        response = await _send_pinned(client, url, policy.allow_private_networks)
        try:
            location = _redirect_location(response)
            if location is None:
                _check_status(url, response)
                return await _read_capped(url, response, policy.max_bytes)
        finally:
            await response.aclose()
        url = _parse_url(str(url.join(location)))
    raise NonRetryableError(f"imageUrl: more than {MAX_REDIRECTS} redirects")


def _parse_url(text: str) -> httpx.URL:
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as exc:
        raise NonRetryableError(f"imageUrl: invalid URL {text!r}: {exc}") from exc
    if url.scheme not in ("http", "https"):
        raise NonRetryableError(f"imageUrl: scheme {url.scheme!r} is not allowed (http or https)")
    if not url.raw_host:
        raise NonRetryableError(f"imageUrl: {text!r} has no host")
    if url.userinfo:
        raise NonRetryableError("imageUrl: credentials in the URL are not accepted")
    return url


async def _send_pinned(client: httpx.AsyncClient, url: httpx.URL, allow_private: bool) -> httpx.Response:
    """Send GET to each vetted address of ``url``'s host in turn, until one connects."""
    host = url.raw_host.decode("ascii")
    port = url.port or (443 if url.scheme == "https" else 80)
    error: httpx.ConnectError | None = None
    for address in await _vetted(host, port, allow_private):
        request = client.build_request(
            "GET",
            url.copy_with(host=address),
            headers={"Host": url.netloc.decode("ascii")},
            extensions={"sni_hostname": host} if url.scheme == "https" else {},
        )
        try:
            return await client.send(request, stream=True, follow_redirects=False)
        except httpx.ConnectError as exc:
            error = exc
    assert error is not None  # resolve_vetted never returns an empty list
    raise error


async def _vetted(host: str, port: int, allow_private: bool) -> list[str]:
    """The addresses to connect to (jobqueue/addresses.py), its refusals as the job's errors."""
    try:
        return await resolve_vetted(host, port, allow_private)
    except (AddressRefused, HostNotFound) as exc:
        raise NonRetryableError(f"imageUrl: {exc}") from exc
    except ResolutionFailed as exc:
        raise TransientImageError(f"imageUrl: {exc}") from exc


def _redirect_location(response: httpx.Response) -> str | None:
    if response.status_code in _REDIRECT_STATUSES:
        return response.headers.get("Location") or None
    return None


def _check_status(url: httpx.URL, response: httpx.Response) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    message = f"GET {url} answered {status} {response.reason_phrase}"
    if status >= 500 or status in _RETRYABLE_STATUSES:
        raise TransientImageError(message)
    raise NonRetryableError(f"imageUrl: {message}")


async def _read_capped(url: httpx.URL, response: httpx.Response, max_bytes: int) -> bytes:
    too_big = f"imageUrl: {url} is larger than the {max_bytes}-byte limit"
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise NonRetryableError(too_big)
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise NonRetryableError(too_big)
    return bytes(body)


def read_allowed_file(path_text: str, allowed_dirs: tuple[Path, ...], max_bytes: int) -> bytes:
    """Read an image file that must resolve inside one of ``allowed_dirs`` (blocking: use a thread)."""
    path = Path(path_text)
    if not path.is_absolute():
        raise NonRetryableError(f"imageUrl: {path_text!r} is neither an http(s) URL nor an absolute path")
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise NonRetryableError(f"imageUrl: {path_text!r} cannot be read: {exc}") from exc
    if not any(real.is_relative_to(folder.resolve()) for folder in allowed_dirs):
        raise NonRetryableError(f"imageUrl: {path_text!r} is outside the allowed input folders")
    if not real.is_file():
        raise NonRetryableError(f"imageUrl: {path_text!r} is not a regular file")
    with real.open("rb") as file:
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise NonRetryableError(f"imageUrl: {path_text!r} is larger than the {max_bytes}-byte limit")
    return data
