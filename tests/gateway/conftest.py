"""Gateway fixtures: a fresh bucket per test (so no test sees another's jobs), fake stages
on a real gRPC server, the app served in-process through httpx."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from konspekt.errors import StageError
from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt_gateway.app import create_app
from konspekt_gateway.settings import GatewaySettings
from tests.gateway.fake_stages import FakeStages

TERMINAL = {"done", "failed"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def bucket_s3(s3_settings: S3Settings) -> Iterator[S3Settings]:
    settings = s3_settings.model_copy(update={"bucket": f"gw-{secrets.token_hex(5)}"})
    yield settings
    drop_bucket(settings)


def drop_bucket(settings: S3Settings) -> None:
    store = ObjectStore(settings)
    with contextlib.suppress(StageError, Exception):
        store.delete_prefix("")
        store.client.remove_bucket(settings.bucket)


@pytest.fixture
def bucket_store(bucket_s3: S3Settings) -> ObjectStore:
    store = ObjectStore(bucket_s3)
    store.ensure_bucket(expire_days=None)
    return store


@pytest.fixture
def stages(bucket_store: ObjectStore) -> Iterator[FakeStages]:
    fake = FakeStages(bucket_store).start()
    yield fake
    fake.stop()


def gateway_settings(target: str, **overrides: Any) -> GatewaySettings:
    """Settings for tests: every stage at ``target``, short backoff, progress saved at once."""
    values: dict[str, Any] = {
        "audio_target": target,
        "asr_target": target,
        "summarizer_target": target,
        "renderer_target": target,
        "retry_backoff_seconds": 0.05,
        "progress_save_seconds": 0.0,
        "health_timeout_seconds": 1.0,
        **overrides,
    }
    return GatewaySettings.model_validate(values)


#: The owner of the default test client (a bearer token, so it survives gateway restarts).
TOKEN = "test-token-0123456789abcdef"


@contextlib.asynccontextmanager
async def serve(
    settings: GatewaySettings, s3: S3Settings, token: str | None = TOKEN
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan (store, orchestrator, channels) and a client talking ASGI to it
    (with ``token`` as its bearer token; None: a cookie client)."""
    app = create_app(settings, s3)
    async with app.router.lifespan_context(app), client_for(app, token) as client:
        yield client


def client_for(app: Any, token: str | None = None, **headers: str) -> httpx.AsyncClient:
    """Another client of the same app (a different owner unless given the same token)."""
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://gateway", headers=headers)


async def wait_state(
    client: httpx.AsyncClient, job_id: str, states: set[str], timeout: float = 20.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        resp = await client.get(f"/api/v1/jobs/{job_id}")
        assert resp.status_code == 200, resp.text
        job = resp.json()
        if job["state"] in states:
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} did not reach {states} in {timeout} s; last seen: {job}")


async def upload(client: httpx.AsyncClient, data: bytes, filename: str, **params: str) -> dict[str, Any]:
    resp = await client.post(
        "/api/v1/jobs",
        params={"filename": filename, **params},
        content=data,
        headers={"Content-Type": "video/mp4"},
    )
    assert resp.status_code == 201, resp.text
    job: dict[str, Any] = resp.json()
    return job
