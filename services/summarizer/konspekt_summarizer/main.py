"""Entry point of the summarizer stage (``python -m konspekt_summarizer``)."""

from __future__ import annotations

from konspekt.server import run_stage
from konspekt_summarizer.server import build_server
from konspekt_summarizer.settings import SummarizerSettings


def main() -> int:
    return run_stage("summarizer", SummarizerSettings, build_server)
