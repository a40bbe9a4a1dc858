"""`python -m jobqueue_server` (or `jobqueue-server`): the server alone, configured by `JOBQ_*`
environment variables. `jobq serve` runs the same server with flags."""

from __future__ import annotations

import sys

from jobqueue import eventloop, logs
from jobqueue_server.config import ServerSettings
from jobqueue_server.errors import DurabilityUnavailable
from jobqueue_server.runtime.app import SettingsError
from jobqueue_server.runtime.serve import serve
from jobqueue_server.runtime.tls import TlsSettingsError


def main() -> None:
    settings = ServerSettings()
    logs.configure(settings.log_level, settings.log_format)
    try:
        eventloop.run(serve(settings))
    except DurabilityUnavailable as error:
        sys.exit(f"cannot start: {error.message}")
    except (SettingsError, TlsSettingsError) as error:
        sys.exit(f"cannot start: {error}")


if __name__ == "__main__":
    main()
