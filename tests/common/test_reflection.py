"""Reflection on a real stage (the renderer, port 0): grpc.reflection.v1 and v1alpha both answer,
and the descriptors they serve carry the protos' comments (what `grpcurl describe` shows)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from konspekt.reflection import V1, V1ALPHA
from konspekt_renderer.server import SERVICE_NAME, build_server
from konspekt_renderer.settings import RendererSettings

# FileDescriptorProto.service = 6, ServiceDescriptorProto.method = 2; message_type = 4, field = 2
RENDER_RPC_PATH = [6, 0, 2, 0]
OBJECT_REF_KEY_PATH = [4, 0, 2, 1]


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    server, loader = build_server(RendererSettings.model_validate({"port": 0, "grace_seconds": 0}))
    server.start()
    server.load_and_serve(loader)
    yield server.address
    server.stop(0)


def ask(target: str, version: str, *requests: reflection_pb2.ServerReflectionRequest) -> list[Any]:
    """Send requests to the reflection service of ``version`` (V1 or V1ALPHA). The messages of
    v1 and v1alpha are the same on the wire; only the service's name differs."""
    with grpc.insecure_channel(target) as channel:
        if version == V1ALPHA:
            call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo
        else:
            call = channel.stream_stream(
                f"/{V1}/ServerReflectionInfo",
                request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
            )
        return list(call(iter(requests), timeout=10))


def files(response: Any) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    protos = [
        descriptor_pb2.FileDescriptorProto.FromString(data)
        for data in response.file_descriptor_response.file_descriptor_proto
    ]
    return {p.name: p for p in protos}


def comment(file: descriptor_pb2.FileDescriptorProto, path: list[int]) -> str:
    return next(loc.leading_comments for loc in file.source_code_info.location if list(loc.path) == path)


@pytest.mark.parametrize("version", [V1, V1ALPHA])
def test_reflection_lists_the_stage_health_and_both_reflection_versions(target: str, version: str) -> None:
    (response,) = ask(target, version, reflection_pb2.ServerReflectionRequest(list_services=""))
    names = {s.name for s in response.list_services_response.service}
    assert {SERVICE_NAME, "grpc.health.v1.Health", V1, V1ALPHA} <= names


@pytest.mark.parametrize("version", [V1, V1ALPHA])
def test_reflection_serves_the_rpc_comments(target: str, version: str) -> None:
    (response,) = ask(
        target, version, reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE_NAME)
    )
    served = files(response)
    assert set(served) == {"konspekt/v1/renderer.proto", "konspekt/v1/common.proto"}  # with its import
    renderer = served["konspekt/v1/renderer.proto"]
    assert renderer.service[0].method[0].name == "Render"
    render_doc = comment(renderer, RENDER_RPC_PATH)
    assert "Fast (well under a second for an hour of speech), so unary." in render_doc
    assert "RESOURCE_EXHAUSTED" in render_doc
    common = served["konspekt/v1/common.proto"]
    assert common.message_type[0].field[1].name == "key"
    assert "Must not be empty" in comment(common, OBJECT_REF_KEY_PATH)


def test_reflection_describes_itself_and_answers_unknown_symbols_not_found(target: str) -> None:
    own, health, unknown = ask(
        target,
        V1,
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=V1),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="grpc.health.v1.Health"),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="konspekt.v1.NoSuchService"),
    )
    (v1_file,) = files(own).values()
    assert v1_file.package == "grpc.reflection.v1"
    assert [m.input_type for m in v1_file.service[0].method] == [
        ".grpc.reflection.v1.ServerReflectionRequest"
    ]
    assert "grpc_health/v1/health.proto" in files(health)
    assert unknown.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
