"""Entry point of the renderer stage (``python -m konspekt_renderer``)."""

from __future__ import annotations

from konspekt.server import run_stage
from konspekt_renderer.server import build_server
from konspekt_renderer.settings import RendererSettings


def main() -> int:
    return run_stage("renderer", RendererSettings, build_server)
