"""ObjectStore against a real S3 server (SeaweedFS)."""

import io
import uuid

import pytest

from konspekt.errors import NotFound, Unavailable
from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore


def test_roundtrip_and_missing(store: ObjectStore) -> None:
    key = f"t/{uuid.uuid4().hex}/a.txt"
    ref = store.put_bytes(key, "привет".encode())
    assert ref.bucket == store.bucket and ref.key == key
    assert store.get_bytes(ref).decode() == "привет"
    assert store.size(key) == len("привет".encode())
    assert store.exists(key)
    with pytest.raises(NotFound, match="does not exist"):
        store.get_bytes(f"t/{uuid.uuid4().hex}")


def test_streamed_put_of_unknown_length(store: ObjectStore) -> None:
    key = f"t/{uuid.uuid4().hex}/big"
    data = bytes(range(256)) * (80 * 1024)  # 20 MiB: more than one multipart part
    store.put_stream(key, io.BytesIO(data), -1)
    assert store.size(key) == len(data)
    assert b"".join(store.iter_chunks(key)) == data


def test_delete_prefix(store: ObjectStore) -> None:
    prefix = f"t/{uuid.uuid4().hex}/"
    for name in ("a", "b", "c/d"):
        store.put_bytes(prefix + name, b"x")
    assert store.delete_prefix(prefix) == 3
    assert list(store.list_keys(prefix)) == []


def test_bucket_has_the_expiry_rule(store: ObjectStore) -> None:
    lifecycle = store.client.get_bucket_lifecycle(store.bucket)
    assert lifecycle is not None
    rules = lifecycle.rules
    assert [r.expiration.days for r in rules if r.expiration] == [1]


def test_wrong_credentials_are_unavailable_not_a_crash(s3_settings: S3Settings) -> None:
    bad = ObjectStore(s3_settings.model_copy(update={"access_key": "nobody"}))
    assert not bad.ping()
    with pytest.raises(Unavailable, match="refused access"):
        bad.get_bytes("anything")


def test_unreachable_store_is_unavailable() -> None:
    down = ObjectStore(
        S3Settings.model_validate({"endpoint": "127.0.0.1:9", "bucket": "konspekt"}), timeout=1
    )
    with pytest.raises(Unavailable, match="unreachable"):
        down.get_bytes("x")
