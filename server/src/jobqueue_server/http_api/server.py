"""Runs the HTTP/JSON gateway (http_api/gateway.py) on `--http-port`, next to the gRPC server."""

from __future__ import annotations

import shutil
from pathlib import Path

import grpc
from aiohttp import web

from jobqueue_server.http_api.gateway import Gateway


class HttpGateway:
    def __init__(self, runner: web.AppRunner, channel: grpc.aio.Channel, port: int, socket: str) -> None:
        self._runner = runner
        self._channel = channel
        self.port = port
        self._socket = Path(socket)

    @classmethod
    async def start(cls, grpc_socket: str, host: str, port: int) -> HttpGateway:
        """Serves on host:port (0: a free port), calling the gRPC server at `grpc_socket`."""
        channel = grpc.aio.insecure_channel(f"unix:{grpc_socket}")
        runner = web.AppRunner(Gateway(channel).application(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        return cls(runner, channel, port or _bound_port(runner), grpc_socket)

    async def stop(self) -> None:
        await self._runner.cleanup()
        await self._channel.close()

    def remove_socket(self) -> None:
        """Deletes the socket's private folder, once the gRPC server stopped listening on it."""
        shutil.rmtree(self._socket.parent, ignore_errors=True)


def _bound_port(runner: web.AppRunner) -> int:
    """The port the system chose when 0 was asked for."""
    for address in runner.addresses:
        return int(address[1])
    raise RuntimeError("the HTTP gateway is bound to no address")
