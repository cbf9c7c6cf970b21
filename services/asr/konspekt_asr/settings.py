"""Settings of the ASR stage (``KONSPEKT_ASR_*``).

``model`` must be a local folder with a CTranslate2-converted Whisper model (``model.bin``,
``tokenizer.json``...): the service runs offline, so Hugging Face names such as "base" that
faster-whisper would download are refused at start-up instead of failing on the first request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from konspekt.settings import ServiceSettings, available_cores

ComputeType = Literal[
    "default",
    "auto",
    "int8",
    "int8_float32",
    "int8_float16",
    "int8_bfloat16",
    "int16",
    "float16",
    "bfloat16",
    "float32",
]


class AsrSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KONSPEKT_ASR_", extra="ignore")

    port: int = Field(50052, ge=0, le=65535, description="gRPC port; 0 picks a free one")
    metrics_port: int = Field(9182, ge=0, le=65535, description="Prometheus /metrics port; 0 = off")
    workers: int = Field(1, ge=1, description="transcriptions at once (each uses all its threads)")
    model: str = Field(
        "/models/whisper-base",
        description="local folder of a CTranslate2 Whisper model (with model.bin); no hub names",
    )
    device: Literal["cpu", "cuda", "auto"] = Field("cpu", description="where the model runs")
    compute_type: ComputeType = Field("int8", description='weights/compute type; "float16" on cuda')
    cpu_threads: int = Field(0, ge=0, description="CPU threads for the model; 0 = cores available")
    beam_size: int = Field(5, ge=1, le=20)
    batch_size: int = Field(
        0,
        ge=0,
        description="0 or 1 = sequential decoding; >1 = faster-whisper's BatchedInferencePipeline "
        "with this many VAD chunks per batch (bench/asr_batch.py measures both)",
    )
    vad: bool = Field(True, description="skip non-speech with Silero VAD (prevents hallucinations)")
    piece_seconds: int = Field(
        600,
        ge=0,
        description="longer recordings are recognised in pieces of about this many seconds, cut "
        "at the quietest moment before each boundary, so memory does not grow with the length "
        "(faster-whisper computes the features of all it is given at once); 0 = all at once",
    )

    @field_validator("model")
    @classmethod
    def _check_model(cls, value: str) -> str:
        path = Path(value)
        if not path.is_dir():
            raise ValueError(
                f"model folder {value} does not exist: set KONSPEKT_ASR_MODEL to a local folder "
                "with a CTranslate2 Whisper model (hub names cannot be downloaded offline)"
            )
        if not (path / "model.bin").is_file():
            raise ValueError(
                f"model folder {value} has no model.bin: it must hold a CTranslate2-converted "
                "Whisper model (e.g. Systran/faster-whisper-base)"
            )
        return value

    @model_validator(mode="after")
    def _check_batching(self) -> AsrSettings:
        if self.batch_size > 1 and not self.vad:
            raise ValueError(
                "batch_size > 1 needs vad=true: the batched pipeline cuts the audio at VAD pauses"
            )
        return self

    @property
    def threads(self) -> int:
        return self.cpu_threads or available_cores()

    @property
    def model_name(self) -> str:
        """Reported in results: the model folder's name, e.g. "whisper-base"."""
        return Path(self.model).resolve().name
