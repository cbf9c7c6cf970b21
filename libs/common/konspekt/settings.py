"""Settings shared by every service. Each service subclasses ServiceSettings with its
own ``KONSPEKT_<SERVICE>_`` prefix; the object store has one ``KONSPEKT_S3_`` block for all."""

from __future__ import annotations

import os

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from konspekt.access import GATEWAY_PREFIX, StageClient, check_clients, check_prefix


def default_host() -> str:
    """Where services listen unless told: loopback, or ``$KONSPEKT_DEFAULT_HOST`` (the container
    images set 0.0.0.0, so one image serves every service without a per-service variable)."""
    return os.environ.get("KONSPEKT_DEFAULT_HOST", "").strip() or "127.0.0.1"


def available_cores() -> int:
    """Cores this process may run on (the container's CPU set, not the host's)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class S3Settings(BaseSettings):
    """The S3-compatible object store (MinIO in production, SeaweedFS locally)."""

    model_config = SettingsConfigDict(env_prefix="KONSPEKT_S3_", extra="ignore")

    endpoint: str = Field("", description="host:port of the S3 API; empty = no object store")
    access_key: str = ""
    secret_key: SecretStr = SecretStr("")
    secure: bool = Field(False, description="use HTTPS")
    region: str = "us-east-1"
    bucket: str = Field("konspekt", min_length=3, description="bucket for uploads and results")

    @property
    def configured(self) -> bool:
        return bool(self.endpoint)


class ServiceSettings(BaseSettings):
    """Fields every gRPC stage has. Subclasses set ``model_config`` with their env prefix."""

    # hide_input_in_errors: a client's token never appears in a validation error
    model_config = SettingsConfigDict(env_prefix="KONSPEKT_", extra="ignore", hide_input_in_errors=True)

    host: str = Field(
        default_factory=default_host,
        description="address to listen on ($KONSPEKT_DEFAULT_HOST or 127.0.0.1; images: 0.0.0.0)",
    )
    port: int = Field(50051, ge=0, le=65535, description="gRPC port; 0 picks a free one")
    workers: int = Field(2, ge=1, description="stage RPCs processed at once")
    queue: int = Field(4, ge=0, description="stage RPCs waiting beyond that; more get UNAVAILABLE (busy)")
    grace_seconds: float = Field(20.0, ge=0, description="time given to running RPCs on SIGTERM")
    max_message_mb: int = Field(4, ge=1, le=64, description="largest gRPC message accepted")
    max_connection_age_seconds: float = Field(
        300.0, gt=0, description="clients are asked to reconnect after this long (rebalances replicas)"
    )
    metrics_port: int = Field(
        9181, ge=0, le=65535, description="Prometheus /metrics HTTP port (on ``host``); 0 = off"
    )
    log_level: str = "INFO"
    log_json: bool = Field(True, description="JSON log lines (False: plain text)")
    # Who may call the stage (konspekt.access): a JSON object of clients, e.g.
    # {"gateway": {"token_file": "/run/secrets/stage-token", "prefix": "jobs/"}}.
    clients: dict[str, StageClient] = Field(
        default_factory=dict, description="clients by name: token or token_file, and object prefix"
    )
    allow_unauthenticated: bool = Field(
        False, description="serve calls without a token (a stage used alone on a trusted machine)"
    )
    unauthenticated_prefix: str = Field(
        GATEWAY_PREFIX, description="objects a call without a token may touch ('' = the whole bucket)"
    )

    @field_validator("unauthenticated_prefix")
    @classmethod
    def _anonymous_prefix(cls, value: str) -> str:
        return value if value == "" else check_prefix(value)

    @model_validator(mode="after")
    def _callers(self) -> ServiceSettings:
        # "no clients at all" is refused by StageServer (konspekt.access.require_clients): an
        # engine used alone (benchmarks) builds these settings without any
        check_clients(self.clients)
        return self
