"""Reliability suites: the gateway's fixtures (fresh bucket, fake stages on a real gRPC server)
plus checks shared by the suites (what a job may keep in the object store)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from konspekt.errors import NotFound
from konspekt.storage import ObjectStore
from konspekt_devstack import Stack
from konspekt_gateway.jobs import PREFIX, RECORD, job_key
from konspekt_gateway.lease import LEASE
from tests.gateway.conftest import anyio_backend, bucket_s3, bucket_store, stages
from tests.reliability.stack import temp_files

__all__ = ["anyio_backend", "bucket_s3", "bucket_store", "stages"]


# For the suites on the real stack: each module defines its own ``stack`` (start_stack with the
# settings it needs).
@pytest.fixture(scope="module")
def temp_at_start(stack: Stack) -> set[str]:
    """The stages' temp files before the module's first test."""
    return temp_files(stack)


@pytest.fixture
def client(stack: Stack, temp_at_start: set[str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=120) as c:
        c.get("/api/v1/jobs")  # the owner cookie, before requests go out in parallel
        yield c


def job_keys(store: ObjectStore, job_id: str) -> set[str]:
    return set(store.list_keys(f"{PREFIX}{job_id}/"))


def assert_keeps_only_what_it_claims(store: ObjectStore, job_id: str) -> dict[str, str]:
    """The objects under the job's prefix are exactly its record (and its lease, once a gateway
    ran it) plus the files the record lists (upload, stage outputs, results): no partial upload,
    no stray or duplicated output. Returns the record's ``files``."""
    try:
        record = json.loads(store.get_bytes(job_key(job_id, RECORD)))
    except NotFound:
        raise AssertionError(f"job {job_id} has no record") from None
    files: dict[str, str] = record["files"]
    expected = {job_key(job_id, RECORD), *files.values()}
    assert job_keys(store, job_id) - {job_key(job_id, LEASE)} == expected, f"job {job_id} ({record['state']})"
    return files
