"""Settings of the renderer stage (``KONSPEKT_RENDERER_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from konspekt.settings import ServiceSettings


class RendererSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KONSPEKT_RENDERER_", extra="ignore")

    port: int = Field(50054, ge=0, le=65535, description="gRPC port; 0 picks a free one")
    metrics_port: int = Field(9184, ge=0, le=65535, description="Prometheus /metrics port; 0 = off")
