"""Fixtures of the summarizer tests: the two GGUF models, scripted meetings, engines."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from konspekt.settings import available_cores
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


class LlamaServer:
    """llama-cpp-python's OpenAI-compatible server (``python -m llama_cpp.server``) in a subprocess."""

    def __init__(self, model: Path, log: Path, n_ctx: int = 4096, port: int = 0) -> None:
        """Starts the server (on ``port``, or a free one) and waits until it answers."""
        if not port:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
        self.port = port
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(model),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--n_ctx",
                str(n_ctx),
                "--n_threads",
                str(available_cores()),
            ],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {log.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError("llama_cpp.server did not come up in 120 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()


@pytest.fixture(scope="session")
def llama_server(small_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """A real OpenAI-compatible server with the 0.5B, shared by the HTTP engine tests."""
    server = LlamaServer(small_model, tmp_path_factory.mktemp("llama-server") / "server.log")
    yield server
    server.stop()
