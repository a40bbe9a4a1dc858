"""Which network addresses a request chosen by a user may reach: the SSRF rules shared by the
reference worker's image downloads and the server's webhooks.

A host is resolved here, and every address it resolves to must be public: not private, loopback,
link-local, multicast, reserved, unspecified, shared or benchmarking space, nor IPv4 embedded in
IPv6 through mapping, 6to4, Teredo or NAT64. The caller then connects to a vetted address itself
(so a second DNS answer cannot send it elsewhere) with the name in the Host header and SNI.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class AddressRefused(ValueError):
    """The host is, or resolves to, an address that is not public."""


class HostNotFound(ValueError):
    """The name does not exist: trying again will not help."""


class ResolutionFailed(OSError):
    """Resolving the name failed in a way that may pass (a DNS server down, a timeout)."""


async def resolve_vetted(host: str, port: int, allow_private: bool) -> list[str]:
    """The addresses `host` resolves to, refused unless every one of them is allowed."""
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(host)]
    except ValueError:
        addresses = await _resolve(host, port)
    for address in addresses:
        if not allow_private and not is_public_address(address):
            raise AddressRefused(f"refusing {host}: {address} is not a public address")
    return [str(address) for address in addresses]


async def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
            raise HostNotFound(f"host {host!r} does not exist") from exc
        raise ResolutionFailed(f"resolving {host!r} failed: {exc}") from exc
    unique = dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos)
    if not unique:
        raise ResolutionFailed(f"{host!r} resolved to no address")
    return list(unique)


def is_public_address(address: IPAddress) -> bool:
    """True for a globally routable unicast address, looking through IPv4-in-IPv6 embeddings."""
    embedded = _embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
    if embedded is not None:
        return is_public_address(embedded)
    return address.is_global and not (
        address.is_multicast
        or address.is_reserved
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        # fec0::/10, site-local: deprecated (RFC 3879) yet still routed inside some networks,
        # and `is_global` calls it global.
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
    )


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped or address.sixtofour:
        return address.ipv4_mapped or address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if any(address in network for network in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None
