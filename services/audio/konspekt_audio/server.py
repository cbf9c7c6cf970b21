"""Builds the audio stage's gRPC server (health, reflection, limits from konspekt.server)."""

from __future__ import annotations

import grpc

from konspekt.server import Loader, StageServer
from konspekt.storage import ObjectStore
from konspekt.v1 import audio_pb2, audio_pb2_grpc
from konspekt_audio.engine import FfmpegTool, MediaTool
from konspekt_audio.servicer import AudioServicer
from konspekt_audio.settings import AudioSettings

SERVICE_NAME = audio_pb2.DESCRIPTOR.services_by_name["AudioService"].full_name


def load_tool(settings: AudioSettings) -> MediaTool:
    """Run ffmpeg and ffprobe once, so SERVING means they really work."""
    return FfmpegTool.from_settings(settings).check()


def build_server(
    settings: AudioSettings, store: ObjectStore | None = None
) -> tuple[StageServer, Loader[MediaTool]]:
    """The server listens at once (health NOT_SERVING); ``load_and_serve(loader)`` makes it ready."""
    loader: Loader[MediaTool] = Loader(lambda: load_tool(settings))
    servicer = AudioServicer(loader, store, settings.temp_dir)

    def register(server: grpc.Server) -> None:
        audio_pb2_grpc.add_AudioServiceServicer_to_server(servicer, server)

    return StageServer(settings, [SERVICE_NAME], register, store), loader
