"""Reliability suites: the gateway's fixtures (fresh bucket, fake stages on a real gRPC server)
plus checks shared by the suites (what a job may keep in the object store)."""

from __future__ import annotations

import json

from konspekt.errors import NotFound
from konspekt.storage import ObjectStore
from konspekt_gateway.jobs import PREFIX, RECORD, job_key
from tests.gateway.conftest import anyio_backend, bucket_s3, bucket_store, stages

__all__ = ["anyio_backend", "bucket_s3", "bucket_store", "stages"]


def job_keys(store: ObjectStore, job_id: str) -> set[str]:
    return set(store.list_keys(f"{PREFIX}{job_id}/"))


def assert_keeps_only_what_it_claims(store: ObjectStore, job_id: str) -> dict[str, str]:
    """The objects under the job's prefix are exactly its record plus the files the record
    lists (upload, stage outputs, results): no partial upload, no stray or duplicated output.
    Returns the record's ``files``."""
    try:
        record = json.loads(store.get_bytes(job_key(job_id, RECORD)))
    except NotFound:
        raise AssertionError(f"job {job_id} has no record") from None
    files: dict[str, str] = record["files"]
    expected = {job_key(job_id, RECORD), *files.values()}
    assert job_keys(store, job_id) == expected, f"job {job_id} ({record['state']})"
    return files
