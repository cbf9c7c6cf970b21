"""Gateway settings (env ``KONSPEKT_GATEWAY_*``); the object store is configured by S3Settings."""

from __future__ import annotations

import logging
import math
import re
import socket
import urllib.parse
from datetime import timedelta
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from konspekt.access import check_token
from konspekt.settings import default_host
from konspekt_gateway.callbacks import Allow
from konspekt_gateway.stages import ASR, AUDIO, RENDERER, STAGES, SUMMARIZER, Stage

__all__ = ["STAGES", "GatewaySettings", "Stage"]

_TARGET = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$|^(dns|unix|ipv4|ipv6):.+$")


class GatewaySettings(BaseSettings):
    """Everything the gateway needs besides the object store. Invalid values fail at start-up."""

    model_config = SettingsConfigDict(env_prefix="KONSPEKT_GATEWAY_", extra="ignore")

    host: str = Field(
        default_factory=default_host,
        description="address to listen on ($KONSPEKT_DEFAULT_HOST or 127.0.0.1; images: 0.0.0.0)",
    )
    port: int = Field(8000, ge=0, le=65535)
    metrics_port: int = Field(
        9180, ge=0, le=65535, description="Prometheus /metrics on its own port (not via the Ingress); 0 = off"
    )

    # One block per stage of konspekt_gateway.stages (its defaults live there; a test checks that
    # every stage has each of these settings).
    audio_target: str = Field(AUDIO.default_target, description="host:port of the audio stage")
    asr_target: str = Field(ASR.default_target, description="host:port of the ASR stage")
    summarizer_target: str = Field(SUMMARIZER.default_target, description="host:port of the summarizer stage")
    renderer_target: str = Field(RENDERER.default_target, description="host:port of the renderer stage")
    max_message_mb: int = Field(4, ge=1, le=64, description="largest gRPC message to or from a stage")

    max_upload_mb: int = Field(4096, ge=1, description="largest accepted upload")
    max_concurrent_uploads: int = Field(
        4, ge=1, le=256, description="uploads streamed at once (each holds up to ~80 MB of S3 parts)"
    )
    max_waiting_uploads: int = Field(
        64, ge=0, le=10000, description="uploads waiting for a free upload slot; beyond that 503 (busy)"
    )
    concurrent_jobs: int = Field(4, ge=1, le=256, description="jobs in progress at once (across stages)")
    # Fairness between owners (each answered 429 with Retry-After when passed).
    owner_max_jobs: int = Field(
        20, ge=1, le=100000, description="jobs one owner may have waiting or in progress (uploads included)"
    )
    owner_max_uploads: int = Field(2, ge=1, le=256, description="uploads one owner may send at once")
    owner_max_event_streams: int = Field(
        8, ge=1, le=10000, description="event streams (SSE) one owner may keep open at once"
    )
    upload_min_rate_kib: float = Field(
        64.0,
        ge=0,
        description="an upload slower than this on average (KiB/s) after the grace is cut off; 0 = off",
    )
    upload_grace_seconds: float = Field(
        30.0, ge=0, description="time an upload has before its average rate is checked"
    )
    upload_max_seconds: float = Field(
        3 * 3600.0, gt=0, description="an upload still streaming after this long is cut off"
    )
    public_url: str = Field(
        "",
        description="the address people reach the gateway at (https://host[:port]); absolute links "
        "and redirects use it, never the Host header; empty: links are relative",
    )
    # Calls in flight per stage: a job waits for a free slot of the stage it enters, so on one
    # machine the stages of different jobs overlap (one job summarized while the next is
    # transcribed). In Kubernetes set each to the stage's replicas × its KONSPEKT_<STAGE>_WORKERS.
    audio_concurrency: int = Field(
        AUDIO.default_concurrency, ge=1, le=256, description="audio calls in flight"
    )
    asr_concurrency: int = Field(ASR.default_concurrency, ge=1, le=256, description="ASR calls in flight")
    summarizer_concurrency: int = Field(
        SUMMARIZER.default_concurrency, ge=1, le=256, description="summarizer calls in flight"
    )
    renderer_concurrency: int = Field(
        RENDERER.default_concurrency, ge=1, le=256, description="renderer calls in flight"
    )

    # Deadline of one stage call = base + per_second × media duration (seconds).
    probe_deadline: float = Field(30.0, gt=0, description="deadline of the media probe")
    audio_deadline_base: float = Field(AUDIO.default_deadline_base, gt=0)
    audio_deadline_per_second: float = Field(AUDIO.default_deadline_per_second, ge=0)
    asr_deadline_base: float = Field(ASR.default_deadline_base, gt=0)
    asr_deadline_per_second: float = Field(ASR.default_deadline_per_second, ge=0)
    summarizer_deadline_base: float = Field(SUMMARIZER.default_deadline_base, gt=0)
    summarizer_deadline_per_second: float = Field(SUMMARIZER.default_deadline_per_second, ge=0)
    renderer_deadline_base: float = Field(RENDERER.default_deadline_base, gt=0)
    renderer_deadline_per_second: float = Field(RENDERER.default_deadline_per_second, ge=0)

    stage_attempts: int = Field(3, ge=1, le=10, description="tries per stage on retryable errors")
    retry_backoff_seconds: float = Field(2.0, ge=0, description="wait before the 2nd try; doubles")
    retry_backoff_max_seconds: float = Field(30.0, ge=0)
    progress_save_seconds: float = Field(2.0, ge=0, description="how often progress is persisted")
    health_timeout_seconds: float = Field(2.0, gt=0, description="per check in /readyz")
    # The gateway's own client token, sent on every stage call (konspekt.access); the stages
    # know it as client "gateway" with the prefix jobs/ (KONSPEKT_<STAGE>_CLIENTS).
    stage_token: SecretStr = Field(
        SecretStr(""),
        description="token sent to the stages (authorization: Bearer); empty: read from "
        "stage_token_file; both empty: no token (only stages that allow unauthenticated calls answer)",
    )
    stage_token_file: str = Field("", description="file holding stage_token, e.g. a mounted Secret")

    secret_key: SecretStr = Field(
        SecretStr(""),
        description="signs the owner cookies (16+ characters; the same on every replica); empty: "
        "read from secret_key_file",
    )
    secret_key_file: str = Field(
        "",
        description="file holding the cookie secret when secret_key is empty, made (0600, random) if "
        "missing; ./dev run: .run/gateway-secret. Both empty: a secret for this process only",
    )
    callback_timeout_seconds: float = Field(10.0, gt=0, description="per try of a job's callback_url")
    callback_allow: str = Field(
        "",
        description="internal callback receivers allowed besides public addresses: networks (CIDR) "
        "and host names (`*.domain` for every name under it), separated by commas or spaces",
    )
    callback_secret: SecretStr = Field(
        SecretStr(""),
        description="HMAC key of the X-Konspekt-Signature header on callbacks; empty: derived from "
        "the cookie-signing secret (konspekt_gateway.callbacks.signing_key)",
    )
    # Every job (record, upload, results) is deleted this long after its upload by the gateway's
    # reaper; the bucket's lifecycle rule (whole days, run by the S3 server about daily) is a backstop.
    retention_hours: float = Field(
        24.0, gt=0, le=24 * 366, description="jobs are deleted this long after upload"
    )
    reap_interval_seconds: float = Field(
        300.0, gt=0, description="how often the reaper also looks for objects that have no job record"
    )
    # 300 s: an upload going at least upload_min_rate_kib (64 KiB/s) stores a 16 MiB part by then,
    # so an upload that is still alive (another gateway process) is never taken for a dead one.
    dead_upload_grace_seconds: float = Field(
        300.0,
        ge=0,
        description="this long after start, unfinished uploads begun before the start that got no "
        "part since are aborted (a gateway killed mid-upload leaves them)",
    )

    # Several replicas share the jobs through the object store (konspekt_gateway.lease): each job
    # is run by the replica that holds its lease, renewed every third of lease_seconds.
    replica: str = Field(
        "",
        max_length=200,
        description="this replica's name in job leases; empty: host name and port (a pod's name). "
        "A restarted replica of the same name takes its jobs back at once",
    )
    lease_seconds: float = Field(
        30.0, ge=1, le=600, description="a job whose replica stopped renewing its lease so long is taken over"
    )
    sync_seconds: float = Field(
        1.0, gt=0, le=60, description="how often the jobs other replicas run are read from the store"
    )

    drain_seconds: int = Field(
        600,
        ge=0,
        le=86400,
        description="on SIGTERM, requests under way (uploads) may finish this long; event streams end "
        "at once (browsers reconnect); then the jobs' leases are released. terminationGracePeriodSeconds "
        "must be longer",
    )

    log_level: str = "INFO"
    log_json: bool = Field(True, description="JSON log lines (False: plain text)")

    @field_validator(*(f"{stage}_target" for stage in STAGES))
    @classmethod
    def _check_target(cls, value: str) -> str:
        value = value.strip()
        if not _TARGET.match(value):
            raise ValueError(f"{value!r} is not a gRPC target like host:port")
        return value

    @field_validator("callback_allow")
    @classmethod
    def _check_callback_allow(cls, value: str) -> str:
        Allow.parse(value)  # raises ValueError with the entry that is wrong
        return value.strip()

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value:
            return ""
        parsed = urllib.parse.urlsplit(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(
                f"the public URL {value!r} is not an http(s) URL like https://konspekt.example.org"
            )
        if parsed.path or parsed.query or parsed.fragment:
            raise ValueError(f"the public URL {value!r} must be scheme://host[:port] only, no path")
        if parsed.username or parsed.password:
            raise ValueError("the public URL must not carry a user name or password")
        return value

    @field_validator("secret_key")
    @classmethod
    def _check_secret(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value()
        if 0 < len(secret) < 16:
            raise ValueError("the cookie secret needs at least 16 characters (e.g. openssl rand -hex 32)")
        if secret.startswith("change-me"):
            raise ValueError("the cookie secret is still the example's placeholder (openssl rand -hex 32)")
        return value

    @model_validator(mode="after")
    def _load_stage_token(self) -> GatewaySettings:
        token = self.stage_token.get_secret_value()
        if not token and self.stage_token_file:
            try:
                token = Path(self.stage_token_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(
                    f"cannot read stage_token_file {self.stage_token_file}: {exc.strerror}"
                ) from exc
            self.stage_token = SecretStr(token)
        if token:
            check_token(token)
        return self

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        level = value.strip().upper()
        if not isinstance(logging.getLevelName(level), int):
            raise ValueError(f"unknown log level {value!r}")
        return level

    def replica_name(self) -> str:
        return self.replica or f"{socket.gethostname()}:{self.port}"

    def target(self, stage: Stage) -> str:
        return str(getattr(self, f"{stage}_target"))

    def concurrency(self, stage: Stage) -> int:
        return int(getattr(self, f"{stage}_concurrency"))

    def deadline(self, stage: Stage, duration: float) -> float:
        """Seconds allowed for one call of ``stage`` on media of ``duration`` seconds."""
        base = float(getattr(self, f"{stage}_deadline_base"))
        per_second = float(getattr(self, f"{stage}_deadline_per_second"))
        return base + per_second * max(duration, 0.0)

    def backoff(self, attempt: int) -> float:
        """Wait after failed try number ``attempt`` (1-based)."""
        return float(min(self.retry_backoff_seconds * 2 ** (attempt - 1), self.retry_backoff_max_seconds))

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @property
    def retention(self) -> timedelta:
        return timedelta(hours=self.retention_hours)

    @property
    def expire_days(self) -> int:
        """The bucket lifecycle rule's whole days (at least the retention)."""
        return max(1, math.ceil(self.retention_hours / 24))
