"""Settings of the audio stage (``KONSPEKT_AUDIO_*``)."""

from __future__ import annotations

import shutil
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from konspekt.settings import ServiceSettings


class AudioSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KONSPEKT_AUDIO_", extra="ignore")

    port: int = Field(50051, ge=0, le=65535, description="gRPC port; 0 picks a free one")
    metrics_port: int = Field(9181, ge=0, le=65535, description="Prometheus /metrics port; 0 = off")
    ffmpeg: str = Field("ffmpeg", description="ffmpeg binary: a name on PATH or a path")
    ffprobe: str = Field("ffprobe", description="ffprobe binary: a name on PATH or a path")
    temp_dir: Path | None = Field(
        None, description="where inline uploads and WAVs are written; None = the system temp dir"
    )
    max_duration_s: float = Field(4 * 3600, gt=0, description="longer media is refused")
    claim_margin_s: float = Field(
        60.0,
        ge=0,
        description="decoding stops this many seconds (+10 %) past the duration the file claims",
    )
    max_audio_ratio: float = Field(
        500.0,
        gt=0,
        description="decoding stops when the WAV reaches this many times the upload's size",
    )

    @field_validator("ffmpeg", "ffprobe")
    @classmethod
    def _on_path(cls, value: str) -> str:
        """Fail at start-up, not at the first upload, when ffmpeg is missing."""
        found = shutil.which(value)
        if found is None:
            raise ValueError(
                f"{value!r} was not found on PATH or is not executable: install ffmpeg "
                "or point KONSPEKT_AUDIO_FFMPEG / KONSPEKT_AUDIO_FFPROBE at the binaries"
            )
        return found

    @field_validator("temp_dir")
    @classmethod
    def _is_dir(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"temp dir {value} does not exist or is not a directory")
        return value
