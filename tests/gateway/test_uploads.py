"""Upload limits and rejects, in-process (the body still streams chunk by chunk over ASGI)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from tests.gateway.conftest import gateway_settings, serve
from tests.gateway.fake_stages import FakeStages

pytestmark = pytest.mark.anyio

MB = 1024 * 1024


class Body:
    """A request body generated on the fly; counts what the server pulled."""

    def __init__(self, chunks: int, chunk_size: int = MB) -> None:
        self.chunks = chunks
        self.chunk = b"\x00" * chunk_size
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.pulled += 1
            yield self.chunk


async def test_declared_size_over_the_limit_is_refused_before_reading(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore
) -> None:
    body = Body(8)
    async with serve(gateway_settings(stages.target, max_upload_mb=2), bucket_s3) as client:
        resp = await client.post(
            "/api/v1/jobs",
            params={"filename": "big.mp4"},
            content=body,
            headers={"Content-Length": str(8 * MB)},
        )
        jobs = (await client.get("/api/v1/jobs")).json()["jobs"]
    assert resp.status_code == 413
    assert resp.json()["error"] == {
        "code": "too_large",
        "message": "the file is larger than the limit of 2 MB",
    }
    assert body.pulled <= 1  # nothing read beyond what the transport pre-fetches
    assert jobs == []
    assert list(bucket_store.list_keys("jobs/")) == []


async def test_streamed_size_over_the_limit_is_stopped_and_the_partial_upload_removed(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore
) -> None:
    # 20 MB allowed: the first 16 MB part reaches the store before the limit is passed
    body = Body(40)
    async with serve(gateway_settings(stages.target, max_upload_mb=20), bucket_s3) as client:
        resp = await client.post("/api/v1/jobs", params={"filename": "big.mp4"}, content=body)
        jobs = (await client.get("/api/v1/jobs")).json()["jobs"]
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "too_large"
    assert body.pulled <= 22  # stopped as soon as the limit was passed, not at the end
    assert jobs == []
    assert list(bucket_store.list_keys("jobs/")) == []


async def test_multipart_over_the_limit_is_refused(stages: FakeStages, bucket_s3: S3Settings) -> None:
    async with serve(gateway_settings(stages.target, max_upload_mb=1), bucket_s3) as client:
        resp = await client.post("/api/v1/jobs", files={"file": ("a.mp4", b"\x01" * (2 * MB), "video/mp4")})
    assert resp.status_code == 413


async def test_empty_file_is_refused(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore
) -> None:
    async with serve(gateway_settings(stages.target), bucket_s3) as client:
        raw = await client.post("/api/v1/jobs", params={"filename": "empty.mp4"}, content=b"")
        form = await client.post("/api/v1/jobs", files={"file": ("empty.mp4", b"", "video/mp4")})
        jobs = (await client.get("/api/v1/jobs")).json()["jobs"]
    for resp in (raw, form):
        assert resp.status_code == 400
        assert resp.json()["error"] == {"code": "empty_file", "message": "the file is empty"}
    assert jobs == []
    assert list(bucket_store.list_keys("jobs/")) == []


async def test_a_form_without_the_file_field_is_refused(stages: FakeStages, bucket_s3: S3Settings) -> None:
    async with serve(gateway_settings(stages.target), bucket_s3) as client:
        resp = await client.post("/api/v1/jobs", files={"video": ("a.mp4", b"data", "video/mp4")})
    assert resp.status_code == 400
    assert "file" in resp.json()["error"]["message"]


async def test_same_name_uploads_do_not_collide(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore
) -> None:
    stages.script.gate("audio")
    async with serve(gateway_settings(stages.target), bucket_s3) as client:
        a = (await client.post("/api/v1/jobs", params={"filename": "same.mp4"}, content=b"first")).json()
        b = (await client.post("/api/v1/jobs", params={"filename": "same.mp4"}, content=b"second")).json()
    assert a["id"] != b["id"]
    assert bucket_store.get_bytes(f"jobs/{a['id']}/upload") == b"first"
    assert bucket_store.get_bytes(f"jobs/{b['id']}/upload") == b"second"
