"""The address lists of the cluster and Sentinel URLs:
`scheme://[user:password@]host:port[,host:port...][/path]`."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True, slots=True)
class Addresses:
    hosts: list[tuple[str, int]]
    username: str | None
    password: str | None
    #: What follows the addresses, without its slashes (Sentinel's service name).
    path: str


def parse_addresses(url: str, scheme: str, what: str, limit: int) -> Addresses:
    """The (host, port) pairs `url` names, 1 to `limit` of them (`what` they are, for errors)."""
    parts = urlsplit(url)
    credentials, _, hosts = parts.netloc.rpartition("@")
    username, _, password = credentials.partition(":")
    found = []
    for address in filter(None, hosts.split(",")):
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{scheme} URL: {address!r} is not host:port")
        found.append((host.strip("[]"), int(port)))
    if not found or len(found) > limit:
        raise ValueError(f"{scheme} URL: name 1 to {limit} {what} as host:port,host:port")
    return Addresses(found, unquote(username) or None, unquote(password) or None, parts.path.strip("/"))
