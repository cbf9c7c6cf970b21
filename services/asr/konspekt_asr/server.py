"""Builds the ASR stage's gRPC server (health, reflection, limits from konspekt.server)."""

from __future__ import annotations

import grpc

from konspekt.server import Loader, StageServer
from konspekt.storage import ObjectStore
from konspekt.v1 import asr_pb2, asr_pb2_grpc
from konspekt_asr.engine import Transcriber, load_transcriber
from konspekt_asr.servicer import AsrServicer
from konspekt_asr.settings import AsrSettings

SERVICE_NAME = asr_pb2.DESCRIPTOR.services_by_name["AsrService"].full_name


def build_server(
    settings: AsrSettings, store: ObjectStore | None = None
) -> tuple[StageServer, Loader[Transcriber]]:
    """The server listens at once (health NOT_SERVING); ``load_and_serve(loader)`` loads the
    model, warms it up and makes it SERVING."""

    def load() -> Transcriber:
        return load_transcriber(settings)

    loader: Loader[Transcriber] = Loader(load)
    servicer = AsrServicer(loader, store, settings.workers)

    def register(server: grpc.Server) -> None:
        asr_pb2_grpc.add_AsrServiceServicer_to_server(servicer, server)

    return StageServer(settings, [SERVICE_NAME], register, store), loader
