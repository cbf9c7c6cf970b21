"""WAV checks the audio tests share."""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Wav:
    rate: int
    channels: int
    sample_width: int
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.rate


def read_wav(data: bytes | Path) -> Wav:
    """Parse a WAV (fails the test if it is not one) and check it is what ASR expects."""
    raw = data.read_bytes() if isinstance(data, Path) else data
    with wave.open(io.BytesIO(raw), "rb") as w:
        facts = Wav(w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes())
    assert (facts.rate, facts.channels, facts.sample_width) == (16_000, 1, 2)
    assert len(raw) == 44 + facts.frames * 2, "a plain 44-byte header and the samples, nothing else"
    return facts
