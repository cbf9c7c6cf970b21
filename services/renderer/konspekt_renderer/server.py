"""Builds the renderer's gRPC server (health, reflection, limits from konspekt.server)."""

from __future__ import annotations

import grpc

from konspekt.server import Loader, StageServer
from konspekt.storage import ObjectStore
from konspekt.v1 import renderer_pb2, renderer_pb2_grpc
from konspekt_renderer.engine import Engine, load_engine
from konspekt_renderer.servicer import RendererServicer
from konspekt_renderer.settings import RendererSettings

SERVICE_NAME = renderer_pb2.DESCRIPTOR.services_by_name["RendererService"].full_name


def build_server(
    settings: RendererSettings, store: ObjectStore | None = None
) -> tuple[StageServer, Loader[Engine]]:
    """The server listens at once (health NOT_SERVING); ``load_and_serve(loader)`` makes it ready."""
    loader: Loader[Engine] = Loader(load_engine)
    servicer = RendererServicer(loader, store, settings.max_message_mb * 1024 * 1024)

    def register(server: grpc.Server) -> None:
        renderer_pb2_grpc.add_RendererServiceServicer_to_server(servicer, server)

    return StageServer(settings, [SERVICE_NAME], register, store), loader
