"""The service over HTTP/JSON (`--http-port`), transcoded from the contract's `google.api.http`
annotations: the REST mapping lives in the proto, and this module only reads it.

Each annotated method becomes a route. A request's path variables, query parameters (GET,
DELETE) and JSON body (`body: "*"`) fill the method's request message, with protobuf's JSON
mapping (field names in lowerCamelCase or as in the proto); the call then goes to the gRPC
server itself over loopback, with the caller's `Authorization` header as its metadata. So
authentication, validation, metrics and errors are the service's own, and the answer is the
response message as JSON, or the call's `google.rpc.Status` as JSON with the HTTP status that
matches its code. Streaming methods (Lease, EnqueueStream, WatchJob) stay gRPC only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from aiohttp import web
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor, json_format, message_factory
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2
from grpc_status import rpc_status

from jobqueue.v1 import job_queue_service_pb2 as svc

SERVICE = svc.DESCRIPTOR.services_by_name["JobQueueService"]
#: google.rpc.Code -> HTTP status, as Google's APIs map them.
_HTTP_STATUS = {
    code_pb2.OK: 200,
    code_pb2.CANCELLED: 499,
    code_pb2.UNKNOWN: 500,
    code_pb2.INVALID_ARGUMENT: 400,
    code_pb2.DEADLINE_EXCEEDED: 504,
    code_pb2.NOT_FOUND: 404,
    code_pb2.ALREADY_EXISTS: 409,
    code_pb2.PERMISSION_DENIED: 403,
    code_pb2.UNAUTHENTICATED: 401,
    code_pb2.RESOURCE_EXHAUSTED: 429,
    code_pb2.FAILED_PRECONDITION: 400,
    code_pb2.ABORTED: 409,
    code_pb2.OUT_OF_RANGE: 400,
    code_pb2.UNIMPLEMENTED: 501,
    code_pb2.INTERNAL: 500,
    code_pb2.UNAVAILABLE: 503,
    code_pb2.DATA_LOSS: 500,
}
#: The largest JSON body accepted: a batch of 1,000 jobs of 1 MiB each would not fit any
#: server limit anyway; the gRPC side bounds each message at 64 MiB.
MAX_BODY_BYTES = 64 * 1024 * 1024
_VARIABLE = re.compile(r"\{([a-z_][a-z0-9_.]*)\}")
CALL_TIMEOUT_S = 30.0
#: The dashboard's files: plain HTML, CSS and a JavaScript module, no build step.
UI_FILES = Path(__file__).parent / "ui"


@dataclass(frozen=True)
class Route:
    """One annotated method: its HTTP verb and path, and how to call it."""

    verb: str
    template: str
    pattern: re.Pattern[str]
    body: str
    method: descriptor.MethodDescriptor

    @property
    def request_class(self) -> type[Message]:
        return message_factory.GetMessageClass(self.method.input_type)


def routes() -> Iterator[Route]:
    """Every unary method of the service with a `google.api.http` rule."""
    for method in SERVICE.methods:
        options = method.GetOptions()
        if (
            method.client_streaming
            or method.server_streaming
            or not options.HasExtension(annotations_pb2.http)
        ):
            continue
        rule: http_pb2.HttpRule = options.Extensions[annotations_pb2.http]
        verb = rule.WhichOneof("pattern")
        if verb is None or verb == "custom":
            continue
        template = getattr(rule, verb)
        # A variable is one path segment ([^/]+; job ids hold ':' but no '/'), matched greedily
        # so that "/v1/jobs/{job_id}:cancel" leaves ":cancel" to the literal.
        regex = _VARIABLE.sub(
            lambda m: f"(?P<{m[1].replace('.', '__')}>[^/]+)",
            re.escape(template).replace(r"\{", "{").replace(r"\}", "}"),
        )
        yield Route(verb.upper(), template, re.compile(f"^{regex}$"), rule.body, method)


class Gateway:
    """An aiohttp application answering every route by a gRPC call on `channel`."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._channel = channel
        self._routes = list(routes())
        self._calls: dict[str, Callable[..., Awaitable[Any]]] = {
            route.method.name: channel.unary_unary(
                f"/{SERVICE.full_name}/{route.method.name}",
                request_serializer=lambda message: message.SerializeToString(),
                response_deserializer=message_factory.GetMessageClass(route.method.output_type).FromString,
            )
            for route in self._routes
        }

    @property
    def route_table(self) -> list[tuple[str, str, str]]:
        return [(route.verb, route.template, route.method.name) for route in self._routes]

    def application(self) -> web.Application:
        """The API under /v1/, and the dashboard (its static files, shipped in the package) under
        /ui/."""
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/v1/{tail:.*}", self._handle)
        app.router.add_get("/", _to_dashboard)
        app.router.add_get("/ui", _to_dashboard)
        app.router.add_get("/ui/", _dashboard_page)
        app.router.add_static("/ui/", UI_FILES)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        path_matched = False
        for route in self._routes:
            found = route.pattern.match(request.path)
            if found is None:
                continue
            path_matched = True
            if route.verb == request.method:
                return await self._answer(route, found.groupdict(), request)
        if path_matched:
            return _status(code_pb2.UNIMPLEMENTED, f"{request.method} is not allowed on {request.path}", 405)
        return _status(code_pb2.NOT_FOUND, f"no method is mapped to {request.method} {request.path}")

    async def _answer(self, route: Route, variables: dict[str, str], request: web.Request) -> web.Response:
        try:
            message = await _request_message(route, variables, request)
        except (json_format.ParseError, ValueError) as exc:
            return _status(
                code_pb2.INVALID_ARGUMENT, f"the request does not fit {route.method.input_type.name}: {exc}"
            )
        metadata = (
            [("authorization", request.headers["Authorization"])]
            if "Authorization" in request.headers
            else []
        )
        try:
            response = await self._calls[route.method.name](
                message, metadata=metadata, timeout=CALL_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as error:
            return _error(error)
        return web.json_response(json_format.MessageToDict(response), dumps=_dumps)


async def _request_message(route: Route, variables: dict[str, str], request: web.Request) -> Message:
    message = route.request_class()
    if route.body:
        raw = await request.read()
        if raw.strip():
            document = json.loads(raw)
            if route.body == "*":
                json_format.ParseDict(document, message)
            else:
                json_format.ParseDict(document, getattr(message, route.body))
    else:
        fields: dict[str, Any] = {}
        for name in request.query:
            values = request.query.getall(name)
            # A map field's entries come as `map.key=value` (?metadata.customer=acme).
            name, _, key = name.partition(".")
            field = message.DESCRIPTOR.fields_by_name.get(
                name
            ) or message.DESCRIPTOR.fields_by_camelcase_name.get(name)
            if field is None or bool(key) != _is_map(field):
                raise ValueError(f"unknown query parameter {name + ('.' + key if key else '')!r}")
            if key:
                fields.setdefault(field.name, {})[key] = values[-1]
            else:
                fields[field.name] = values if field.is_repeated else values[-1]
        json_format.ParseDict(fields, message)
    for name, value in variables.items():
        _set_path(message, name.split("__"), value)
    return message


def _is_map(field: Any) -> bool:
    entry = field.message_type
    return entry is not None and bool(entry.GetOptions().map_entry)


def _set_path(message: Message, path: list[str], value: str) -> None:
    """Sets the (string) field at `path` (path variables name string fields of the request)."""
    for name in path[:-1]:
        message = getattr(message, name)
    setattr(message, path[-1], value)


async def _to_dashboard(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/ui/")


async def _dashboard_page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(UI_FILES / "index.html")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _status(code: int, text: str, http_status: int | None = None) -> web.Response:
    body = json_format.MessageToDict(status_pb2.Status(code=code, message=text))
    return web.json_response(body, status=http_status or _HTTP_STATUS.get(code, 500), dumps=_dumps)


def _error(error: grpc.aio.AioRpcError) -> web.Response:
    """The call's google.rpc.Status (with its ErrorInfo and BadRequest details) as JSON."""
    status = rpc_status.from_call(error)
    if status is None:
        status = status_pb2.Status(code=error.code().value[0], message=error.details() or "")
    body = json_format.MessageToDict(status)
    return web.json_response(body, status=_HTTP_STATUS.get(status.code, 500), dumps=_dumps)
