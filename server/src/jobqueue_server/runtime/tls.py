"""TLS and mTLS server credentials, read again from their files on SIGHUP.

gRPC asks the fetcher for a new configuration before each handshake; it answers None (keep the
current one) until a reload was requested, then reads the files once. A reload that fails (a
half-written file) keeps the certificates in use and says so in the log.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import grpc

logger = logging.getLogger(__name__)


class TlsSettingsError(ValueError):
    """TLS files that are missing, unreadable or incomplete."""


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    client_ca: Path | None

    @classmethod
    def chosen(cls, cert: Path | None, key: Path | None, client_ca: Path | None) -> TlsFiles | None:
        """The files the settings name, None for plaintext; refuses a partial choice."""
        if cert is None and key is None:
            if client_ca is not None:
                raise TlsSettingsError("--tls-client-ca needs --tls-cert and --tls-key")
            return None
        if cert is None or key is None:
            raise TlsSettingsError("--tls-cert and --tls-key go together")
        return cls(cert, key, client_ca)

    def configuration(self) -> grpc.ServerCertificateConfiguration:
        key, chain = _read(self.key), _read(self.cert)
        roots = _read(self.client_ca) if self.client_ca is not None else None
        return grpc.ssl_server_certificate_configuration([(key, chain)], root_certificates=roots)


def _read(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise TlsSettingsError(f"cannot read {path}: {error.strerror}") from error
    if b"-----BEGIN " not in data:
        raise TlsSettingsError(f"{path} is not a PEM file")
    return data


class ReloadingCredentials:
    """Server credentials whose certificates are read again after `request_reload()`."""

    def __init__(self, files: TlsFiles) -> None:
        self._files = files
        self._reload = threading.Event()  # set by a signal handler, read on gRPC's threads
        # gRPC takes None from the fetcher as "no change"; its stubs do not say so.
        fetch = cast(Callable[[], grpc.ServerCertificateConfiguration], self._fetch)
        self.credentials = grpc.dynamic_ssl_server_credentials(
            files.configuration(), fetch, require_client_authentication=files.client_ca is not None
        )

    def request_reload(self) -> None:
        self._reload.set()

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        if not self._reload.is_set():
            return None
        self._reload.clear()
        try:
            configuration = self._files.configuration()
        except TlsSettingsError as error:
            logger.error("TLS reload failed, keeping the certificates in use: %s", error)
            return None
        logger.info("TLS certificates reloaded from %s", self._files.cert)
        return configuration
