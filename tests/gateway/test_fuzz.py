"""OpenAPI-driven fuzzing (schemathesis) of the gateway running as a process, with fake stages
on a real gRPC server and a real S3 bucket: no request may produce a 5xx, and every response
must match the documented schema."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt_devstack import free_port
from tests.gateway.fake_stages import FakeStages
from tests.gateway.test_process import gateway_env, start_gateway

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@pytest.fixture
def gateway_url(
    bucket_s3: S3Settings, bucket_store: ObjectStore, stages: FakeStages, tmp_path: Path
) -> Iterator[str]:
    env = gateway_env(bucket_s3, stages.target, free_port())
    proc, url = start_gateway(env, tmp_path / "gateway.log")
    yield url
    proc.stop()


def test_openapi_fuzz_finds_no_server_errors(gateway_url: str, tmp_path: Path) -> None:
    if not SCHEMATHESIS.exists():
        pytest.fail("schemathesis is not installed: run ./dev setup")
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{gateway_url}/openapi.json",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            "25",
            "--seed",
            "1",
            "--request-timeout",
            "20",
            "--header",
            "Authorization: Bearer fuzz-token-0123456789abcdef",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,  # its replay cache (.schemathesis/) stays out of the checkout
    )
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
