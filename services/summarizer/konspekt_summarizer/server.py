"""Builds the summarizer's gRPC server; the model loads after it starts (health NOT_SERVING)."""

from __future__ import annotations

import grpc

from konspekt.server import Loader, StageServer
from konspekt.storage import ObjectStore
from konspekt.v1 import summarizer_pb2, summarizer_pb2_grpc
from konspekt_summarizer.engine import load_engine
from konspekt_summarizer.konspekt import Summarizer
from konspekt_summarizer.servicer import SummarizerServicer
from konspekt_summarizer.settings import SummarizerSettings

SERVICE_NAME = summarizer_pb2.DESCRIPTOR.services_by_name["SummarizerService"].full_name


def load_summarizer(settings: SummarizerSettings) -> Summarizer:
    """Load the engine and make it answer once, so SERVING means the model really works."""
    return Summarizer(load_engine(settings), settings)


def build_server(
    settings: SummarizerSettings, store: ObjectStore | None = None
) -> tuple[StageServer, Loader[Summarizer]]:
    loader: Loader[Summarizer] = Loader(lambda: load_summarizer(settings))
    servicer = SummarizerServicer(loader, store)

    def register(server: grpc.Server) -> None:
        summarizer_pb2_grpc.add_SummarizerServiceServicer_to_server(servicer, server)

    return StageServer(settings, [SERVICE_NAME], register, store), loader
