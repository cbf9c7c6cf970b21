"""ObjectStore against a real S3 server (SeaweedFS)."""

import io
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from konspekt.errors import FailedPrecondition, InvalidInput, NotFound, Unavailable
from konspekt.settings import S3Settings
from konspekt.storage import EXPIRY_PREFIX, EXPIRY_RULE_ID, ObjectStore, output_ref, require_store
from konspekt.v1 import common_pb2
from tests.common.buckets import another_bucket, missing_bucket


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


def test_put_to_a_ref_writes_to_its_bucket(store: ObjectStore, tmp_path: Path) -> None:
    key = f"t/{uuid.uuid4().hex}/a.txt"
    own = store.put_bytes(common_pb2.ObjectRef(key=key), b"own")  # no bucket: the store's own
    assert own == common_pb2.ObjectRef(bucket=store.bucket, key=key)
    with another_bucket(store) as other:
        file = tmp_path / "f"
        file.write_bytes(b"file")
        puts: dict[str, Callable[[common_pb2.ObjectRef], common_pb2.ObjectRef]] = {
            "bytes": lambda ref: store.put_bytes(ref, b"bytes"),
            "file": lambda ref: store.put_file(ref, file),
            "stream": lambda ref: store.put_stream(ref, io.BytesIO(b"stream"), -1, parallel=1),
        }
        for name, put in puts.items():
            ref = common_pb2.ObjectRef(bucket=other, key=key + name)
            assert put(ref) == ref
            assert store.get_bytes(ref) == name.encode()
            assert not store.exists(ref.key)  # nothing in the store's own bucket
        assert store.get_bytes(own) == b"own"


def test_put_to_a_missing_bucket_or_an_empty_key_fails(store: ObjectStore) -> None:
    missing = missing_bucket(store)
    with pytest.raises(NotFound, match=f"bucket {missing} does not exist"):
        store.put_bytes(common_pb2.ObjectRef(bucket=missing, key="a.txt"), b"x")
    assert not store.client.bucket_exists(missing)  # not created on the fly
    for empty in ("", common_pb2.ObjectRef(bucket=store.bucket)):
        with pytest.raises(InvalidInput, match="empty key"):
            store.put_bytes(empty, b"x")


def test_require_store_and_output_ref(store: ObjectStore) -> None:
    assert require_store(store, "output") is store
    with pytest.raises(FailedPrecondition) as err:
        require_store(None, "transcript_ref")
    assert str(err.value) == (
        "the request has transcript_ref but this stage has no object store configured "
        "(set KONSPEKT_S3_ENDPOINT and credentials, or send the data inline)"
    )

    assert output_ref(None, common_pb2.ObjectRef(), "output") is None  # unset: send it back
    ref = common_pb2.ObjectRef(bucket="elsewhere", key="k.json")
    assert output_ref(store, ref, "output") == ref
    assert output_ref(store, common_pb2.ObjectRef(key="k.json"), "output") == common_pb2.ObjectRef(
        key="k.json"
    )
    with pytest.raises(FailedPrecondition, match="the request has output but"):
        output_ref(None, ref, "output")
    with pytest.raises(InvalidInput, match="output has an empty key"):
        output_ref(store, common_pb2.ObjectRef(bucket=store.bucket), "output")


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
    # one rule, scoped to jobs/, with the id the MinIO init imports (deploy/k8s/minio)
    assert [(r.rule_id, r.rule_filter.prefix if r.rule_filter else None) for r in rules] == [
        (EXPIRY_RULE_ID, EXPIRY_PREFIX)
    ]
    assert EXPIRY_PREFIX == "jobs/"


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
