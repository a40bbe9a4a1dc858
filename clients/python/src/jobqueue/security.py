"""TLS, mTLS and the API token of a channel, from arguments or `JOBQ_*` environment variables.

An argument wins over the environment; JOBQ_TOKEN over JOBQ_TOKEN_FILE (a file holding it).
The token rides as `authorization: Bearer <token>` metadata on every call, through channel
interceptors rather than call credentials: gRPC sends call credentials only over TLS, and a
token on a loopback or private-network plaintext channel (compose) is a setup we support.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

ChannelOption = tuple[str, int | str]
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True)
class Tls:
    """How to reach a TLS server: `ca_file` verifies its certificate (the system's roots when
    None), `cert_file` and `key_file` are this client's certificate for mTLS, `server_name`
    overrides the name checked in the server's certificate (a target given as an address)."""

    ca_file: str | Path | None = None
    cert_file: str | Path | None = None
    key_file: str | Path | None = None
    server_name: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Tls | None:
        """TLS as JOBQ_TLS, JOBQ_TLS_CA, JOBQ_TLS_CLIENT_CERT/KEY and JOBQ_TLS_SERVER_NAME ask."""
        chosen = cls(
            environ.get("JOBQ_TLS_CA") or None,
            environ.get("JOBQ_TLS_CLIENT_CERT") or None,
            environ.get("JOBQ_TLS_CLIENT_KEY") or None,
            environ.get("JOBQ_TLS_SERVER_NAME") or None,
        )
        wanted = environ.get("JOBQ_TLS", "").lower() in TRUE_WORDS
        return chosen if wanted or chosen != cls() else None

    def credentials(self) -> grpc.ChannelCredentials:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("a TLS client certificate and its key go together (cert_file and key_file)")
        return grpc.ssl_channel_credentials(
            root_certificates=_pem(self.ca_file),
            private_key=_pem(self.key_file),
            certificate_chain=_pem(self.cert_file),
        )

    def options(self) -> list[ChannelOption]:
        if self.server_name is None:
            return []
        return [
            ("grpc.ssl_target_name_override", self.server_name),
            ("grpc.default_authority", self.server_name),
        ]


def _pem(path: str | Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror}") from error
    if b"-----BEGIN " not in data:
        raise ValueError(f"{path} is not a PEM file")
    return data


@dataclass(frozen=True)
class ChannelSecurity:
    """What a channel is built with: credentials (None: plaintext), extra options, a token."""

    credentials: grpc.ChannelCredentials | None
    options: list[ChannelOption]
    token: str | None


def resolve(
    credentials: grpc.ChannelCredentials | None,
    token: str | None,
    tls: Tls | None,
    environ: Mapping[str, str] | None = None,
) -> ChannelSecurity:
    """The arguments, with the environment filling those not given."""
    environ = os.environ if environ is None else environ
    token = token or environ.get("JOBQ_TOKEN") or _token_file(environ.get("JOBQ_TOKEN_FILE")) or None
    if token is not None and not token.isprintable():
        raise ValueError("the token must be printable text")
    if credentials is not None:
        return ChannelSecurity(credentials, tls.options() if tls else [], token)
    tls = tls or Tls.from_env(environ)
    if tls is None:
        return ChannelSecurity(None, [], token)
    return ChannelSecurity(tls.credentials(), tls.options(), token)


def _token_file(path: str | None) -> str | None:
    """The token kept in a file (a Docker or Kubernetes secret), for JOBQ_TOKEN_FILE."""
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ValueError(f"cannot read JOBQ_TOKEN_FILE {path}: {error.strerror}") from error


def _with_token(details: Any, header: tuple[str, str]) -> Any:
    return details._replace(metadata=[*(details.metadata or ()), header])


def _aio_with_token(details: Any, header: tuple[str, str]) -> Any:
    return details._replace(metadata=grpc.aio.Metadata(*(details.metadata or ()), header))


class _AioBearer:
    """Adds the authorization header to a grpc.aio call (one subclass per kind of call: the
    channel files each interceptor under the first kind it is)."""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    async def _call(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return await continuation(_aio_with_token(details, self._header), request)


class _AioUnaryUnary(_AioBearer, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return await self._call(continuation, details, request)


class _AioUnaryStream(_AioBearer, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return await self._call(continuation, details, request)


class _AioStreamUnary(_AioBearer, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(
        self, continuation: Callable[..., Any], details: Any, requests: Any
    ) -> Any:
        return await self._call(continuation, details, requests)


class _AioStreamStream(_AioBearer, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(
        self, continuation: Callable[..., Any], details: Any, requests: Any
    ) -> Any:
        return await self._call(continuation, details, requests)


class _SyncBearer(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds the authorization header to every call of a blocking channel."""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(_with_token(details, self._header), request)

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(_with_token(details, self._header), request)

    def intercept_stream_unary(self, continuation: Callable[..., Any], details: Any, requests: Any) -> Any:
        return continuation(_with_token(details, self._header), requests)

    def intercept_stream_stream(self, continuation: Callable[..., Any], details: Any, requests: Any) -> Any:
        return continuation(_with_token(details, self._header), requests)


def aio_interceptors(token: str | None) -> Sequence[grpc.aio.ClientInterceptor] | None:
    if not token:
        return None
    return [kind(token) for kind in (_AioUnaryUnary, _AioUnaryStream, _AioStreamUnary, _AioStreamStream)]


def sync_interceptor(token: str) -> grpc.UnaryUnaryClientInterceptor:
    return _SyncBearer(token)
