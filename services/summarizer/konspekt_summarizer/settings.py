"""Settings of the summarizer stage (``KONSPEKT_SUMMARIZER_*``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from konspekt.settings import ServiceSettings, available_cores

#: Default model of each engine that loads one itself (``openai`` asks the server instead).
DEFAULT_MODELS = {
    "llamacpp": "/models/summarizer.gguf",
    "vllm": "ErenBukov/llama_31_8b_7k_Dataset",
}

VLLM_MISSING = (
    "engine 'vllm' needs the vllm package, which is not installed here (it is a CUDA build for "
    "GPU machines: pip install vllm in a GPU image); on CPU use engine 'llamacpp', or run vLLM's "
    "OpenAI-compatible server and use engine 'openai' with KONSPEKT_SUMMARIZER_BASE_URL"
)


class SummarizerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KONSPEKT_SUMMARIZER_", extra="ignore")

    port: int = Field(50053, ge=0, le=65535, description="gRPC port; 0 picks a free one")
    metrics_port: int = Field(9183, ge=0, le=65535, description="Prometheus /metrics port; 0 = off")
    workers: int = Field(1, ge=1, description="generations at once (each uses all its threads)")
    engine: Literal["llamacpp", "openai", "vllm"] = Field(
        "llamacpp",
        description="llamacpp: GGUF on CPU, in process; openai: an OpenAI-compatible server "
        "(vLLM's, llama-cpp-python's) over HTTP; vllm: vLLM in process (GPU)",
    )
    model: str = Field(
        "",
        description="llamacpp: path to a GGUF file (default /models/summarizer.gguf); vllm: HF id "
        "or local path (default ErenBukov/llama_31_8b_7k_Dataset)",
    )
    n_ctx: int = Field(8192, ge=512, description="context window, tokens (prompt + answer)")
    threads: int = Field(0, ge=0, description="CPU threads for llama.cpp; 0 = cores available")
    max_tokens: int = Field(1200, ge=64, description="longest answer of one model call, tokens")
    window_tokens: int = Field(
        3000,
        ge=0,
        description="transcript tokens read in one window (0 = as many as the context holds): a "
        "small model reads a long window's end and skips its middle, so long recordings are read "
        "in windows of about this size, one pass each",
    )
    parallel_requests: int = Field(
        4,
        ge=1,
        le=64,
        description="openai/vllm: model calls of one konspekt at once (windows of a long meeting); "
        "the server batches them. llama.cpp in process runs one at a time",
    )
    temperature: float = Field(
        0.0, ge=0.0, le=2.0, description="0 = greedy: the same transcript gives the same konspekt"
    )
    repeat_penalty: float = Field(1.1, ge=1.0, le=2.0)

    # engine "openai"
    base_url: str = Field("", description="openai: the server's API root, e.g. http://vllm:8000/v1")
    api_model: str = Field("", description="openai: served model name; empty = the first it lists")
    api_key: SecretStr | None = Field(None, description="openai: bearer token, if the server wants one")
    request_timeout: float = Field(
        600.0, gt=0, description="openai: seconds to wait for the server (connect, each streamed token)"
    )
    json_mode: Literal["auto", "json_schema", "json_object"] = Field(
        "auto",
        description="openai: how the JSON schema is sent. json_schema: OpenAI/vLLM "
        '{"type":"json_schema","json_schema":{...}}; json_object: llama-cpp-python '
        '{"type":"json_object","schema":...}; auto: the first the server accepts at load',
    )
    startup_wait: float = Field(
        120.0, ge=0, description="openai: seconds to wait at load for the server to come up"
    )
    probe_seconds: float = Field(
        10.0,
        gt=0,
        description="seconds between checks that the engine still answers (openai: the server's "
        "/health); health is NOT_SERVING while it does not",
    )

    # engine "vllm"
    gpu_memory_utilization: float = Field(0.9, gt=0.0, le=1.0, description="vllm: share of GPU memory")
    max_model_len: int = Field(0, ge=0, description="vllm: context length; 0 = n_ctx")

    @model_validator(mode="after")
    def _check(self) -> SummarizerSettings:
        if not self.model and self.engine in DEFAULT_MODELS:
            self.model = DEFAULT_MODELS[self.engine]
        if self.engine == "llamacpp":
            path = Path(self.model)
            if not path.is_file():
                raise ValueError(
                    f"model file {self.model} does not exist: set KONSPEKT_SUMMARIZER_MODEL "
                    "to the path of a GGUF model"
                )
        elif self.engine == "openai":
            if not self.base_url.startswith(("http://", "https://")):
                raise ValueError(
                    "engine 'openai' needs KONSPEKT_SUMMARIZER_BASE_URL, the server's API root "
                    f"(e.g. http://vllm:8000/v1), got {self.base_url!r}"
                )
        elif self.engine == "vllm" and importlib.util.find_spec("vllm") is None:
            raise ValueError(VLLM_MISSING)
        if self.max_tokens * 2 > self.context_length:
            raise ValueError(
                f"max_tokens ({self.max_tokens}) must be at most half of n_ctx "
                f"({self.context_length}), so the transcript has room"
            )
        return self

    @property
    def n_threads(self) -> int:
        return self.threads or available_cores()

    @property
    def context_length(self) -> int:
        """Context window in tokens: n_ctx, or vLLM's max_model_len when set."""
        if self.engine == "vllm" and self.max_model_len:
            return self.max_model_len
        return self.n_ctx
