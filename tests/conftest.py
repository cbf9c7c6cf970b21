"""Fixtures shared by every test: a real S3 server (SeaweedFS), testdata, models."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt_devstack import MODELS, ROOT, Seaweed

if TYPE_CHECKING:
    from tests.audio.test_media_security import Listener

TESTDATA = Path(os.environ.get("KONSPEKT_TESTDATA", ROOT.parent / "shared" / "testdata"))

# Tests run many servers in one process (and beside `./dev run`): none binds its default
# metrics port; a test that scrapes metrics sets a free port itself (devstack does too).
for _prefix in (
    "KONSPEKT",
    *(f"KONSPEKT_{s}" for s in ("AUDIO", "ASR", "SUMMARIZER", "RENDERER", "GATEWAY")),
):
    os.environ[f"{_prefix}_METRICS_PORT"] = "0"
# Stages that tests build in this process serve calls without a client token, on their whole
# test bucket (a stage used alone); tests/security/test_stage_access.py builds stages with
# clients and checks tokens and prefixes. Stacks of processes (konspekt_devstack) set their own
# clients and tokens, as `./dev run` does.
for _prefix in ("KONSPEKT", *(f"KONSPEKT_{s}" for s in ("AUDIO", "ASR", "SUMMARIZER", "RENDERER"))):
    os.environ[f"{_prefix}_ALLOW_UNAUTHENTICATED"] = "true"
    os.environ[f"{_prefix}_UNAUTHENTICATED_PREFIX"] = ""


@pytest.fixture(scope="session")
def testdata() -> Path:
    if not (TESTDATA / "MANIFEST.md").exists():
        pytest.fail(f"testdata not found at {TESTDATA} (set KONSPEKT_TESTDATA)")
    return TESTDATA


@pytest.fixture(scope="session")
def models_dir() -> Path:
    if not MODELS.exists():
        pytest.fail(f"models not found at {MODELS}: run ./dev setup")
    return MODELS


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    server = Seaweed(tmp_path_factory.mktemp("seaweed")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_settings(seaweed: Seaweed) -> S3Settings:
    env = seaweed.env()
    return S3Settings.model_validate(
        {
            "endpoint": env["KONSPEKT_S3_ENDPOINT"],
            "access_key": env["KONSPEKT_S3_ACCESS_KEY"],
            "secret_key": env["KONSPEKT_S3_SECRET_KEY"],
            "bucket": "konspekt-test",
        }
    )


@pytest.fixture(scope="session")
def store(s3_settings: S3Settings) -> ObjectStore:
    st = ObjectStore(s3_settings)
    st.ensure_bucket()
    return st


@pytest.fixture
def listener() -> Iterator[Listener]:
    """A local HTTP listener that records every connection: media and callback tests check it
    receives nothing."""
    from tests.audio.test_media_security import Listener

    found = Listener()
    yield found
    found.server.shutdown()
    found.server.server_close()
