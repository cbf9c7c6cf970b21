"""Fixtures of the summarizer tests: the two GGUF models, scripted meetings, engines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from konspekt.transcripts import transcript_from_json
from konspekt.v1 import common_pb2
from konspekt_summarizer.engine import LlamaCppEngine
from konspekt_summarizer.settings import SummarizerSettings

DATA = Path(__file__).parent / "data"


def load_transcript(name: str) -> common_pb2.Transcript:
    return transcript_from_json((DATA / name).read_bytes())


def make_settings(model: Path, **overrides: Any) -> SummarizerSettings:
    values: dict[str, Any] = {"model": str(model), "port": 0, "n_ctx": 4096, "max_tokens": 700}
    values.update(overrides)
    return SummarizerSettings.model_validate(values)


@pytest.fixture(scope="session")
def facts() -> dict[str, Any]:
    return dict(json.loads((DATA / "facts.json").read_text("utf-8")))


@pytest.fixture(scope="session")
def small_model(models_dir: Path) -> Path:
    """The 0.5B: fast enough for plumbing tests, too weak to judge quality."""
    path = models_dir / "qwen2.5-0.5b-instruct" / "model.gguf"
    if not path.is_file():
        pytest.fail(f"{path} missing: run ./dev setup")
    return path


@pytest.fixture(scope="session")
def default_model(models_dir: Path) -> Path:
    """The 1.5B, the CPU default."""
    path = models_dir / "qwen2.5-1.5b-instruct" / "model.gguf"
    if not path.is_file():
        pytest.fail(f"{path} missing: run ./dev setup")
    return path


@pytest.fixture(scope="session")
def small_settings(small_model: Path) -> SummarizerSettings:
    return make_settings(small_model, max_tokens=500)


@pytest.fixture(scope="session")
def small_engine(small_settings: SummarizerSettings) -> LlamaCppEngine:
    return LlamaCppEngine.from_settings(small_settings)
