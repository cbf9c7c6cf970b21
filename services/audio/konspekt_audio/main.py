"""Entry point of the audio stage (``python -m konspekt_audio``)."""

from __future__ import annotations

from konspekt.server import run_stage
from konspekt_audio.server import build_server
from konspekt_audio.settings import AudioSettings


def main() -> int:
    return run_stage("audio", AudioSettings, build_server)
