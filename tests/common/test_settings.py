"""Settings fail fast on bad values and read their env prefix."""

import pytest
from pydantic import ValidationError

from konspekt.settings import S3Settings


def test_s3_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KONSPEKT_S3_ENDPOINT", "minio:9000")
    monkeypatch.setenv("KONSPEKT_S3_SECRET_KEY", "s3cr3t")
    s3 = S3Settings()
    assert s3.configured and s3.endpoint == "minio:9000"
    assert "s3cr3t" not in repr(s3)


def test_bad_bucket_name_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KONSPEKT_S3_BUCKET", "ab")
    with pytest.raises(ValidationError):
        S3Settings()
