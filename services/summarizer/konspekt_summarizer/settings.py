"""Settings of the summarizer stage (``KONSPEKT_SUMMARIZER_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from konspekt.settings import ServiceSettings, available_cores


class SummarizerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KONSPEKT_SUMMARIZER_", extra="ignore")

    port: int = Field(50053, ge=0, le=65535, description="gRPC port; 0 picks a free one")
    workers: int = Field(1, ge=1, description="generations at once (each uses all its threads)")
    engine: Literal["llamacpp"] = Field("llamacpp", description="LLM engine (llama.cpp on CPU)")
    model: str = Field("/models/summarizer.gguf", description="path to the GGUF model (llamacpp)")
    n_ctx: int = Field(8192, ge=512, description="context window, tokens (prompt + answer)")
    threads: int = Field(0, ge=0, description="CPU threads for llama.cpp; 0 = cores available")
    max_tokens: int = Field(1200, ge=64, description="longest answer of one model call, tokens")
    temperature: float = Field(0.2, ge=0.0, le=2.0)
    repeat_penalty: float = Field(1.1, ge=1.0, le=2.0)

    @model_validator(mode="after")
    def _check(self) -> SummarizerSettings:
        if self.engine == "llamacpp":
            path = Path(self.model)
            if not path.is_file():
                raise ValueError(
                    f"model file {self.model} does not exist: set KONSPEKT_SUMMARIZER_MODEL "
                    "to the path of a GGUF model"
                )
        if self.max_tokens * 2 > self.n_ctx:
            raise ValueError(
                f"max_tokens ({self.max_tokens}) must be at most half of n_ctx ({self.n_ctx}), "
                "so the transcript has room"
            )
        return self

    @property
    def n_threads(self) -> int:
        return self.threads or available_cores()
