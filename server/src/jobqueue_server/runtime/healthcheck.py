"""A container healthcheck: exit 0 when the server at HOST:PORT answers gRPC health with SERVING.

    python -m jobqueue_server.runtime.healthcheck localhost:50051
    python -m jobqueue_server.runtime.healthcheck --tls-ca ca.pem localhost:50051   # a TLS server

Health checking needs no token. The server reports NOT_SERVING while it cannot reach Redis and
while it drains at shutdown, so an orchestrator sees both. Exit 1 for any other answer or none
within the timeout.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

DEFAULT_TIMEOUT_S = 3.0


def serving(
    target: str, service: str = "", timeout_s: float = DEFAULT_TIMEOUT_S, tls_ca: Path | None = None
) -> str:
    """The health status name the server reports for `service` ("" is the whole server), over
    TLS verified with `tls_ca` when given."""
    if tls_ca is None:
        opened = grpc.insecure_channel(target)
    else:
        opened = grpc.secure_channel(target, grpc.ssl_channel_credentials(tls_ca.read_bytes()))
    with opened as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jobqueue_server.runtime.healthcheck", description=__doc__
    )
    parser.add_argument("target", nargs="?", default="localhost:50051", help="HOST:PORT of the server")
    parser.add_argument("--service", default="", help="a service name; default: the whole server")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds")
    parser.add_argument(
        "--tls-ca",
        type=Path,
        default=os.environ.get("JOBQ_HEALTHCHECK_TLS_CA") or None,
        help="PEM CA of a TLS server's certificate [env JOBQ_HEALTHCHECK_TLS_CA]",
    )
    args = parser.parse_args(argv)
    try:
        status = serving(args.target, args.service, args.timeout, args.tls_ca)
    except grpc.RpcError as error:
        code = error.code() if isinstance(error, grpc.Call) else None
        print(f"unhealthy: {args.target}: {code.name if code else error}", file=sys.stderr)
        return 1
    if status != "SERVING":
        print(f"unhealthy: {args.target}: {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
