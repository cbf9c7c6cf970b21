"""Entry point of the asr stage (``python -m konspekt_asr``)."""

from __future__ import annotations

from konspekt.server import run_stage
from konspekt_asr.server import build_server
from konspekt_asr.settings import AsrSettings


def main() -> int:
    return run_stage("asr", AsrSettings, build_server)
