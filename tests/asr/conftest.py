"""Models, transcribers and 16 kHz WAV extracts of the testdata that the ASR tests share."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from konspekt_asr.engine import WhisperTranscriber, load_transcriber
from konspekt_asr.settings import AsrSettings

WavMaker = Callable[[str], Path]


def asr_settings(model: Path, **overrides: object) -> AsrSettings:
    """Settings for tests: free port, no drain wait, 2 threads (the test machine is shared)."""
    return AsrSettings.model_validate(
        {"port": 0, "grace_seconds": 0, "model": str(model), "cpu_threads": 2, **overrides}
    )


@pytest.fixture(scope="session")
def tiny_en_model(models_dir: Path) -> Path:
    return models_dir / "whisper-tiny-en"


@pytest.fixture(scope="session")
def base_model(models_dir: Path) -> Path:
    return models_dir / "whisper-base"


@pytest.fixture(scope="session")
def wav(testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> WavMaker:
    """``wav("video/jfk_en_11s.mp4")``: the file's audio as the audio stage extracts it."""
    out_dir = tmp_path_factory.mktemp("wav")

    def make(relative: str) -> Path:
        out = out_dir / (Path(relative).stem + ".wav")
        if not out.exists():
            source = str(testdata / relative)
            args = ["-nostdin", "-y", "-i", source, "-vn", "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le"]
            subprocess.run(["ffmpeg", "-loglevel", "error", *args, str(out)], check=True)
        return out

    return make


@pytest.fixture(scope="session")
def tiny_en(tiny_en_model: Path) -> WhisperTranscriber:
    return load_transcriber(asr_settings(tiny_en_model))


@pytest.fixture(scope="session")
def base(base_model: Path) -> WhisperTranscriber:
    return load_transcriber(asr_settings(base_model))
