"""gRPC server reflection for the stages, both ``grpc.reflection.v1`` and ``grpc.reflection.v1alpha``,
with the protos' comments.

grpcio-reflection serves only v1alpha, and from the descriptors the generated ``_pb2`` modules
hold, which carry no comments. Here one servicer answers both versions (their messages are the
same on the wire; only the service's name differs) from the files' FileDescriptorProtos, taking
konspekt's own files from ``konspekt/v1/descriptors.binpb`` (written by tools/gen_protos.py with
source info), so ``grpcurl describe`` shows each RPC's documentation and status codes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from importlib import resources
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

V1ALPHA = "grpc.reflection.v1alpha.ServerReflection"
V1 = "grpc.reflection.v1.ServerReflection"
#: The FileDescriptorSet of konspekt.v1 with source info, beside the generated stubs.
DESCRIPTORS = ("konspekt.v1", "descriptors.binpb")

_V1ALPHA_PACKAGE = "grpc.reflection.v1alpha"
_V1_PACKAGE = "grpc.reflection.v1"
_V1_FILE = "grpc/reflection/v1/reflection.proto"


def documented_files() -> dict[str, bytes]:
    """konspekt's own FileDescriptorProtos with their comments, serialized, by file name."""
    package, name = DESCRIPTORS
    data = resources.files(package).joinpath(name).read_bytes()
    files = descriptor_pb2.FileDescriptorSet.FromString(data).file
    return {f.name: f.SerializeToString() for f in files}


def _v1_reflection_file() -> descriptor_pb2.FileDescriptorProto:
    """grpc/reflection/v1/reflection.proto: the v1alpha file under the v1 package (the messages
    and field numbers of both are the same), so reflection can describe its own v1 service."""
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name = _V1_FILE
    proto.package = _V1_PACKAGE
    proto.ClearField("options")
    old, new = f".{_V1ALPHA_PACKAGE}.", f".{_V1_PACKAGE}."
    for message in proto.message_type:
        for field in message.field:
            if field.type_name.startswith(old):
                field.type_name = new + field.type_name.removeprefix(old)
    for service in proto.service:
        for method in service.method:
            method.input_type = new + method.input_type.removeprefix(old)
            method.output_type = new + method.output_type.removeprefix(old)
    return proto


class ReflectionServicer:
    """Answers ServerReflectionInfo for ``service_names`` (v1 and v1alpha are listed too).

    The files of those services and everything they import are collected once, at start, from
    the default descriptor pool (where the generated modules put them); a file that is in
    ``documented`` is served in that form instead (the same file, with its comments)."""

    def __init__(self, service_names: Iterable[str], documented: dict[str, bytes] | None = None) -> None:
        documented = documented_files() if documented is None else documented
        self.service_names = sorted({*service_names, V1, V1ALPHA})
        self.files: dict[str, bytes] = {}
        self.pool = descriptor_pool.DescriptorPool()
        default = descriptor_pool.Default()
        for name in self.service_names:
            if name == V1:
                self._add_proto(_v1_reflection_file())
            else:
                self._add_file(default.FindFileContainingSymbol(name), documented)

    def _add_file(self, file: FileDescriptor, documented: dict[str, bytes]) -> None:
        if file.name in self.files:
            return
        for dependency in file.dependencies:
            self._add_file(dependency, documented)
        if file.name in documented:
            self._add_serialized(file.name, documented[file.name])
        else:
            proto = descriptor_pb2.FileDescriptorProto()
            file.CopyToProto(proto)
            self._add_proto(proto)

    def _add_proto(self, proto: descriptor_pb2.FileDescriptorProto) -> None:
        self._add_serialized(proto.name, proto.SerializeToString())

    def _add_serialized(self, name: str, data: bytes) -> None:
        self.files[name] = data
        self.pool.AddSerializedFile(data)

    # -- the RPC ------------------------------------------------------------------------------
    def ServerReflectionInfo(
        self, request_iterator: Iterator[reflection_pb2.ServerReflectionRequest], context: Any
    ) -> Iterator[reflection_pb2.ServerReflectionResponse]:
        for request in request_iterator:
            yield self.answer(request)

    def answer(
        self, request: reflection_pb2.ServerReflectionRequest
    ) -> reflection_pb2.ServerReflectionResponse:
        kind = request.WhichOneof("message_request")
        try:
            if kind == "list_services":
                return reflection_pb2.ServerReflectionResponse(
                    original_request=request,
                    list_services_response=reflection_pb2.ListServiceResponse(
                        service=[reflection_pb2.ServiceResponse(name=n) for n in self.service_names]
                    ),
                )
            if kind == "file_by_filename":
                return self._files(request, self.pool.FindFileByName(request.file_by_filename))
            if kind == "file_containing_symbol":
                symbol = request.file_containing_symbol
                return self._files(request, self.pool.FindFileContainingSymbol(symbol))
            if kind == "file_containing_extension":
                ext = request.file_containing_extension
                message = self.pool.FindMessageTypeByName(ext.containing_type)
                extension = self.pool.FindExtensionByNumber(message, ext.extension_number)
                return self._files(request, self.pool.FindFileContainingSymbol(extension.full_name))
            if kind == "all_extension_numbers_of_type":
                message = self.pool.FindMessageTypeByName(request.all_extension_numbers_of_type)
                numbers = sorted(e.number for e in self.pool.FindAllExtensions(message))
                return reflection_pb2.ServerReflectionResponse(
                    original_request=request,
                    all_extension_numbers_response=reflection_pb2.ExtensionNumberResponse(
                        base_type_name=message.full_name, extension_number=numbers
                    ),
                )
        except KeyError:
            return _error(request, grpc.StatusCode.NOT_FOUND)
        return _error(request, grpc.StatusCode.INVALID_ARGUMENT)

    def _files(
        self, request: reflection_pb2.ServerReflectionRequest, file: FileDescriptor
    ) -> reflection_pb2.ServerReflectionResponse:
        """The file and everything it imports (clients need the whole closure to decode it)."""
        names: list[str] = []

        def visit(f: FileDescriptor) -> None:
            if f.name not in names:
                names.append(f.name)
                for dependency in f.dependencies:
                    visit(dependency)

        visit(file)
        return reflection_pb2.ServerReflectionResponse(
            original_request=request,
            file_descriptor_response=reflection_pb2.FileDescriptorResponse(
                file_descriptor_proto=[self.files[n] for n in names]
            ),
        )


def _error(
    request: reflection_pb2.ServerReflectionRequest, code: grpc.StatusCode
) -> reflection_pb2.ServerReflectionResponse:
    number, text = code.value
    return reflection_pb2.ServerReflectionResponse(
        original_request=request,
        error_response=reflection_pb2.ErrorResponse(error_code=number, error_message=str(text)),
    )


def enable_reflection(service_names: Iterable[str], server: grpc.Server) -> ReflectionServicer:
    """Serve reflection v1 and v1alpha for ``service_names`` (and both reflection services)."""
    servicer = ReflectionServicer(service_names)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(V1, {"ServerReflectionInfo": v1}),))
    return servicer
