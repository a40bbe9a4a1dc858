"""Channel construction and options shared by producers and workers."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from jobqueue.security import ChannelOption as ChannelOption
from jobqueue.security import Tls, aio_interceptors, resolve, sync_interceptor

# A Lease stream may sit idle for hours behind NATs and load balancers: ping so a dead peer
# is noticed in ~40 s instead of at the next write. The server permits pings every 10 s.
KEEPALIVE_OPTIONS: list[ChannelOption] = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]
# gRPC's own reconnect backoff grows to 120 s by default, which would hide ours (0.1 s to
# 10 s): a channel in backoff fails every call at once until it tries again.
RECONNECT_OPTIONS: list[ChannelOption] = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 10_000),
]
# The server never sends a message over gRPC's default receive limit (4 MiB), so receiving
# keeps the default; a batch of big jobs may be sent up to the server's own limit, 64 MiB.
MESSAGE_SIZE_OPTIONS: list[ChannelOption] = [
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]
DEFAULT_OPTIONS: list[ChannelOption] = KEEPALIVE_OPTIONS + RECONNECT_OPTIONS + MESSAGE_SIZE_OPTIONS


def _options(extra: Sequence[ChannelOption]) -> list[ChannelOption]:
    """The defaults, with any key given in `extra` replaced (no key appears twice)."""
    keys = {key for key, _ in extra}
    return list(extra) + [(key, value) for key, value in DEFAULT_OPTIONS if key not in keys]


def aio_channel(
    target: str,
    credentials: grpc.ChannelCredentials | None = None,
    options: Sequence[ChannelOption] = (),
    *,
    token: str | None = None,
    tls: Tls | None = None,
) -> grpc.aio.Channel:
    """A grpc.aio channel to `target` ("host:port"): TLS when `credentials` or `tls` are given
    (or JOBQ_TLS* ask for it), with `token` (or JOBQ_TOKEN) on every call (security.py)."""
    chosen = resolve(credentials, token, tls)
    interceptors = aio_interceptors(chosen.token)
    merged = _options([*chosen.options, *options])
    if chosen.credentials is not None:
        return grpc.aio.secure_channel(target, chosen.credentials, options=merged, interceptors=interceptors)
    return grpc.aio.insecure_channel(target, options=merged, interceptors=interceptors)


def sync_channel(
    target: str,
    credentials: grpc.ChannelCredentials | None = None,
    options: Sequence[ChannelOption] = (),
    *,
    token: str | None = None,
    tls: Tls | None = None,
) -> grpc.Channel:
    """A blocking grpc channel to `target`, secured as `aio_channel` says."""
    chosen = resolve(credentials, token, tls)
    merged = _options([*chosen.options, *options])
    if chosen.credentials is not None:
        channel = grpc.secure_channel(target, chosen.credentials, options=merged)
    else:
        channel = grpc.insecure_channel(target, options=merged)
    return grpc.intercept_channel(channel, sync_interceptor(chosen.token)) if chosen.token else channel
