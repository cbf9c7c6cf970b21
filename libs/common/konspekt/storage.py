"""The object store every stage reads and writes (S3 API through the minio client)."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import urllib3
from minio import Minio
from minio.commonconfig import ENABLED, Filter
from minio.error import S3Error
from minio.lifecycleconfig import AbortIncompleteMultipartUpload, Expiration, LifecycleConfig, Rule

from konspekt.errors import Conflict, FailedPrecondition, InvalidInput, NotFound, Unavailable
from konspekt.settings import S3Settings
from konspekt.v1 import common_pb2

log = logging.getLogger(__name__)

PART_SIZE = 16 * 1024 * 1024
#: The bucket's one lifecycle rule: its id and the prefix it covers. The gateway sets it at start
#: (``ensure_bucket``) and the MinIO init (deploy/k8s/minio/konspekt-init.sh, ``mc ilm rule
#: import``) sets the same rule, so whichever runs last leaves one rule, not two. Only ``jobs/``
#: expires: everything konspekt writes lives under it (the gateway's jobs, the CLIs' inputs).
EXPIRY_RULE_ID = "konspekt-expire"
EXPIRY_PREFIX = "jobs/"
_MISSING = {"NoSuchKey", "NoSuchBucket", "NoSuchObject", "NoSuchUpload"}
#: A conditional write (put_if) lost: the object is not as the writer saw it.
_RACED = {"PreconditionFailed", "ConditionalRequestConflict"}


class ObjectStore:
    """A thin wrapper that turns S3 failures into StageErrors with clear messages."""

    def __init__(self, settings: S3Settings, *, timeout: float = 30.0) -> None:
        if not settings.configured:
            raise ValueError("object store is not configured (set KONSPEKT_S3_ENDPOINT)")
        self.settings = settings
        self.bucket = settings.bucket
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5.0, read=timeout),
            maxsize=16,
            retries=urllib3.Retry(total=3, backoff_factor=0.3, status_forcelist=[500, 502, 503, 504]),
        )
        self.client = Minio(
            settings.endpoint,
            access_key=settings.access_key or None,
            secret_key=settings.secret_key.get_secret_value() or None,
            secure=settings.secure,
            region=settings.region,
            http_client=http,
        )

    # -- bucket -----------------------------------------------------------------------------
    def ensure_bucket(self, expire_days: int | None = 1) -> None:
        """Create the bucket if needed and set the expiry rule (the 24 h promise's backstop): objects
        under ``jobs/`` and the parts of uploads that were never completed go ``expire_days`` after
        they were made. The bucket's lifecycle configuration is replaced by this one rule."""
        with _translated(f"bucket {self.bucket}"):
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)
            if expire_days:
                rule = Rule(
                    ENABLED,
                    rule_filter=Filter(prefix=EXPIRY_PREFIX),
                    rule_id=EXPIRY_RULE_ID,
                    expiration=Expiration(days=expire_days),
                    abort_incomplete_multipart_upload=AbortIncompleteMultipartUpload(expire_days),
                )
                self.client.set_bucket_lifecycle(self.bucket, LifecycleConfig([rule]))

    def ping(self) -> bool:
        try:
            self.client.bucket_exists(self.bucket)
        except Exception:  # noqa: BLE001 - any failure means "not reachable"
            return False
        return True

    # -- write ------------------------------------------------------------------------------
    # ``ref`` is an ObjectRef (empty bucket = this store's bucket) or a key in this store's bucket.
    def put_bytes(
        self, ref: common_pb2.ObjectRef | str, data: bytes, content_type: str = "application/octet-stream"
    ) -> common_pb2.ObjectRef:
        return self.put_stream(ref, io.BytesIO(data), len(data), content_type)

    def put_file(
        self, ref: common_pb2.ObjectRef | str, path: Path, content_type: str = "application/octet-stream"
    ) -> common_pb2.ObjectRef:
        bucket, key = self._target(ref)
        with _translated(f"{bucket}/{key}"):
            self.client.fput_object(bucket, key, str(path), content_type=content_type, part_size=PART_SIZE)
        return common_pb2.ObjectRef(bucket=bucket, key=key)

    def put_stream(
        self,
        ref: common_pb2.ObjectRef | str,
        stream: BinaryIO,
        length: int = -1,
        content_type: str = "application/octet-stream",
        parallel: int = 3,
    ) -> common_pb2.ObjectRef:
        """Store a stream; length -1 streams it in multipart chunks of PART_SIZE.

        Memory in use is about PART_SIZE x (1 + ``parallel``) part buffers.
        """
        bucket, key = self._target(ref)
        with _translated(f"{bucket}/{key}"):
            self.client.put_object(
                bucket,
                key,
                stream,
                length,
                content_type=content_type,
                part_size=PART_SIZE,
                num_parallel_uploads=parallel,
            )
        return common_pb2.ObjectRef(bucket=bucket, key=key)

    def put_if(self, key: str, data: bytes, etag: str | None, content_type: str = "application/json") -> str:
        """Write ``key`` only if it is as the caller last saw it (S3 conditional write): absent
        (``etag`` None: ``If-None-Match: *``) or still at ``etag`` (``If-Match``). Returns the new
        ETag; raises Conflict when another writer got there first (412; or 409 from a server
        that reports concurrent conditional writes so). MinIO and SeaweedFS (≥ 3.9x, tested in
        tests/gateway/test_lease.py) both do this atomically."""
        headers: dict[str, str | list[str] | tuple[str]] = {"Content-Type": content_type}
        headers["If-None-Match" if etag is None else "If-Match"] = "*" if etag is None else f'"{etag}"'
        with _translated(f"{self.bucket}/{key}"):
            # minio-py's public put_object sends no conditional headers: its PutObject call does
            result = self.client._put_object(self.bucket, key, data, headers)
        return str(result.etag)

    def get_tagged(self, key: str) -> tuple[bytes, str]:
        """An object's content and its ETag (for a later ``put_if``)."""
        with _translated(f"{self.bucket}/{key}"):
            resp = self.client.get_object(self.bucket, key)
            try:
                return resp.read(), resp.headers.get("ETag", "").strip('"')
            finally:
                resp.close()
                resp.release_conn()

    # -- read -------------------------------------------------------------------------------
    def get_bytes(self, ref: common_pb2.ObjectRef | str) -> bytes:
        bucket, key = self._split(ref)
        with _translated(f"{bucket}/{key}"):
            resp = self.client.get_object(bucket, key)
            try:
                return resp.read()
            finally:
                resp.close()
                resp.release_conn()

    def iter_chunks(self, ref: common_pb2.ObjectRef | str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        bucket, key = self._split(ref)
        with _translated(f"{bucket}/{key}"):
            resp = self.client.get_object(bucket, key)
        try:
            yield from resp.stream(chunk_size)
        finally:
            resp.close()
            resp.release_conn()

    def iter_range(
        self, ref: common_pb2.ObjectRef | str, offset: int, length: int, chunk_size: int = 1 << 20
    ) -> Iterator[bytes]:
        """``length`` bytes of the object from ``offset`` (an S3 ranged GET), in chunks. The
        object is opened at once, so a missing one raises NotFound here, not at the first chunk."""
        bucket, key = self._split(ref)
        with _translated(f"{bucket}/{key}"):
            resp = self.client.get_object(bucket, key, offset=offset, length=length)

        def chunks() -> Iterator[bytes]:
            try:
                yield from resp.stream(chunk_size)
            finally:
                resp.close()
                resp.release_conn()

        return chunks()

    def download(self, ref: common_pb2.ObjectRef | str, path: Path) -> Path:
        bucket, key = self._split(ref)
        with _translated(f"{bucket}/{key}"):
            self.client.fget_object(bucket, key, str(path))
        return path

    def size(self, ref: common_pb2.ObjectRef | str) -> int:
        bucket, key = self._split(ref)
        with _translated(f"{bucket}/{key}"):
            return int(self.client.stat_object(bucket, key).size or 0)

    def exists(self, ref: common_pb2.ObjectRef | str) -> bool:
        try:
            self.size(ref)
        except NotFound:
            return False
        return True

    def presigned_get(self, ref: common_pb2.ObjectRef | str, expires: timedelta = timedelta(hours=1)) -> str:
        bucket, key = self._split(ref)
        with _translated(f"{bucket}/{key}"):
            return self.client.presigned_get_object(bucket, key, expires=expires)

    def list_keys(self, prefix: str) -> Iterator[str]:
        with _translated(f"{self.bucket}/{prefix}"):
            for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
                if obj.object_name:
                    yield obj.object_name

    def list_modified(self, prefix: str) -> Iterator[tuple[str, datetime]]:
        """(key, last modified time in UTC) of every object under ``prefix``."""
        with _translated(f"{self.bucket}/{prefix}"):
            for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
                if obj.object_name and obj.last_modified is not None:
                    yield obj.object_name, obj.last_modified

    def list_etags(self, prefix: str) -> Iterator[tuple[str, str]]:
        """(key, ETag) of every object under ``prefix``: what changed since the last listing."""
        with _translated(f"{self.bucket}/{prefix}"):
            for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
                if obj.object_name:
                    yield obj.object_name, (obj.etag or "").strip('"')

    def stale_uploads(self, prefix: str) -> list[tuple[str, str, datetime]]:
        """Multipart uploads under ``prefix`` that were neither completed nor aborted (the writer
        died, or the store was down when it tried to abort): (key, upload id, start time), every
        page of them. Their parts hold data but are not objects, so listing misses them."""
        found: list[tuple[str, str, datetime]] = []
        key_marker: str | None = None
        upload_marker: str | None = None
        while True:
            with _translated(f"{self.bucket}/{prefix}"):
                # minio-py has no public call for ListMultipartUploads / AbortMultipartUpload
                result = self.client._list_multipart_uploads(
                    self.bucket, prefix=prefix, key_marker=key_marker, upload_id_marker=upload_marker
                )
            found += [
                (upload.object_name, upload.upload_id, upload.initiated_time)
                for upload in result.uploads
                if upload.object_name and upload.upload_id and upload.initiated_time
            ]
            # (minio 7.2 stores NextUploadIdMarker under a misspelt attribute name)
            next_upload = result.next_upload_id_marker or getattr(result, "self._next_upload_id_marker", None)
            if not result.is_truncated or (result.next_key_marker, next_upload) == (
                key_marker,
                upload_marker,
            ):
                return found
            key_marker, upload_marker = result.next_key_marker, next_upload

    def last_written(self, key: str, upload_id: str) -> datetime | None:
        """When the newest part of an unfinished multipart upload was stored (None: no part yet)."""
        newest: datetime | None = None
        marker: str | None = None
        while True:
            with _translated(f"{self.bucket}/{key}"):
                result = self.client._list_parts(self.bucket, key, upload_id, part_number_marker=marker)
            for part in result.parts:
                if part.last_modified is not None and (newest is None or part.last_modified > newest):
                    newest = part.last_modified
            if (
                not result.is_truncated
                or not result.next_part_number_marker
                or result.next_part_number_marker == marker
            ):
                return newest
            marker = result.next_part_number_marker

    def abort_upload(self, key: str, upload_id: str) -> None:
        with _translated(f"{self.bucket}/{key}"):
            self.client._abort_multipart_upload(self.bucket, key, upload_id)

    def abort_dead_uploads(self, prefix: str, name: str, since: datetime) -> list[str]:
        """Abort the unfinished multipart uploads under ``prefix`` of objects named ``name`` (the
        key's last part) that began before ``since`` and got no part since then: their writer is
        gone (a process killed mid-upload cannot abort its own). Called a while after ``since``
        (a writer that is alive, e.g. in another process, stores parts meanwhile and is spared).
        Returns the keys of the uploads aborted."""
        aborted = []
        for key, upload_id, started in self.stale_uploads(prefix):
            if key.rpartition("/")[2] != name or started >= since:
                continue
            try:
                written = self.last_written(key, upload_id)
            except NotFound:  # finished or aborted meanwhile
                continue
            if written is not None and written >= since:
                continue
            try:
                self.abort_upload(key, upload_id)
            except NotFound:
                continue
            aborted.append(key)
        return aborted

    # -- delete -----------------------------------------------------------------------------
    def delete(self, key: str) -> None:
        with _translated(f"{self.bucket}/{key}"):
            self.client.remove_object(self.bucket, key)

    def delete_prefix(self, prefix: str) -> int:
        keys = list(self.list_keys(prefix))
        for key in keys:
            self.delete(key)
        return len(keys)

    # -- refs -------------------------------------------------------------------------------
    def ref(self, key: str) -> common_pb2.ObjectRef:
        return common_pb2.ObjectRef(bucket=self.bucket, key=key)

    def _split(self, ref: common_pb2.ObjectRef | str) -> tuple[str, str]:
        """(bucket, key) of a ref or of a key in this store's bucket; an empty key is refused."""
        bucket, key = (self.bucket, ref) if isinstance(ref, str) else (ref.bucket or self.bucket, ref.key)
        if not key:
            raise InvalidInput("object reference has an empty key")
        return bucket, key

    def _target(self, ref: common_pb2.ObjectRef | str) -> tuple[str, str]:
        """(bucket, key) to write to. A bucket other than the store's own must exist already:
        some S3 servers (SeaweedFS) would create it on the fly, without the expiry rule."""
        bucket, key = self._split(ref)
        if bucket != self.bucket:
            with _translated(f"bucket {bucket}"):
                exists = self.client.bucket_exists(bucket)
            if not exists:
                raise NotFound(f"bucket {bucket} does not exist (cannot write {key})")
        return bucket, key


def require_store(store: ObjectStore | None, what: str) -> ObjectStore:
    """The stage's store, or FailedPrecondition when the request needs one (``what``) and the
    stage has none."""
    if store is None:
        raise FailedPrecondition(
            f"the request has {what} but this stage has no object store configured "
            "(set KONSPEKT_S3_ENDPOINT and credentials, or send the data inline)",
            reason="NO_OBJECT_STORE",
        )
    return store


def output_ref(
    store: ObjectStore | None, ref: common_pb2.ObjectRef, what: str
) -> common_pb2.ObjectRef | None:
    """Where to write a result: None when ``ref`` is unset or empty (the result goes back in the
    response); otherwise the store must be configured and the key non-empty. Call it before any
    work: a bad output ref should not cost a whole run. An empty bucket is the store's own."""
    if not ref.bucket and not ref.key:
        return None
    require_store(store, what)
    if not ref.key:
        raise InvalidInput(f"{what} has an empty key")
    return ref


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    """S3 and network failures -> NotFound / Unavailable, naming the object."""
    try:
        yield
    except S3Error as exc:
        if exc.code in _MISSING:
            raise NotFound(f"object {what} does not exist") from exc
        if exc.code in _RACED:
            raise Conflict(f"object {what} was changed by another writer: {exc.code}") from exc
        if exc.code in {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
            raise Unavailable(f"object store refused access to {what}: {exc.code}") from exc
        raise Unavailable(f"object store error for {what}: {exc.code} {exc.message}") from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise Unavailable(f"object store unreachable ({what}): {exc}") from exc
