"""Security suites: the gateway's fixtures (fresh bucket, fake stages) and the shared SeaweedFS."""

from __future__ import annotations

from tests.gateway.conftest import anyio_backend, bucket_s3, bucket_store, stages

__all__ = ["anyio_backend", "bucket_s3", "bucket_store", "stages"]
