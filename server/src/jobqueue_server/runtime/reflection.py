"""Server reflection that keeps the proto comments, so `grpcurl describe` shows the docs.

The descriptors compiled into the generated modules carry no comments; scripts/gen also
writes `jobqueue/v1/descriptors.binpb` with them (protoc --include_source_info), and this
servicer answers with those file descriptors in place of the bare ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from typing import Any

import grpc
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from grpc_reflection.v1alpha._async import ReflectionServicer


def documented_files() -> dict[str, bytes]:
    """File name -> serialized FileDescriptorProto with comments, for our own protos."""
    raw = (resources.files("jobqueue.v1") / "descriptors.binpb").read_bytes()
    files = descriptor_pb2.FileDescriptorSet.FromString(raw).file
    return {f.name: f.SerializeToString() for f in files}


class DocumentedReflection(ReflectionServicer):  # type: ignore[misc]
    """The standard reflection service, answering with commented descriptors where it can."""

    def __init__(self, service_names: Iterable[str]) -> None:
        super().__init__(service_names)
        self._services = frozenset(service_names)
        self._documented = documented_files()

    def _with_comments(self, response: Any) -> Any:
        files = response.file_descriptor_response.file_descriptor_proto
        for index, serialized in enumerate(files):
            name = descriptor_pb2.FileDescriptorProto.FromString(serialized).name
            if name in self._documented:
                files[index] = self._documented[name]
        return response

    def _file_by_filename(self, request: Any, filename: str) -> Any:
        return self._with_comments(super()._file_by_filename(request, filename))

    def _file_containing_symbol(self, request: Any, fully_qualified_name: str) -> Any:
        response = super()._file_containing_symbol(request, fully_qualified_name)
        if response.HasField("error_response"):
            # The pool finds services, not their methods: `grpcurl describe Service.Method` asks
            # for the file of the method, which is its service's.
            service, dot, _ = fully_qualified_name.rpartition(".")
            if dot and service in self._services:
                response = super()._file_containing_symbol(request, service)
        return self._with_comments(response)


def enable(server: grpc.aio.Server, service_names: Iterable[str]) -> None:
    names = (*service_names, reflection.SERVICE_NAME)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(DocumentedReflection(names), server)
