"""The embedded store only konspekt can use, and the cookie secret outside it (issue 16).

SeaweedFS as ``./dev run`` and every test start it (konspekt_devstack.Seaweed): the S3 port wants
S3 credentials; the master, volume and filer ports, HTTP and gRPC, speak only mutual TLS with the
data folder's certificate, and volume and filer want a JWT even from a holder of it. The cookie
secret lives in a file (or the setting), never in the bucket.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt_devstack import Seaweed
from konspekt_gateway.app import create_app
from konspekt_gateway.auth import OWNER_COOKIE, SECRET_KEY_OBJECT, Signer, load_secret
from tests.gateway.conftest import client_for, gateway_settings, serve, upload
from tests.gateway.fake_stages import FakeStages

HTTP_PARTS = ("master", "volume", "filer")
GRPC_PARTS = ("master.g", "volume.g", "filer.g", "s3.g")


def raw_http(port: int, request: bytes, context: ssl.SSLContext | None = None) -> bytes:
    """Send ``request`` to 127.0.0.1:``port`` (over TLS with ``context``); what came back before
    the connection ended (b"" when it was refused or cut, e.g. a handshake without a client
    certificate)."""
    data = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            conn = context.wrap_socket(sock) if context else sock
            conn.sendall(request)
            while chunk := conn.recv(65536):
                data += chunk
    except (OSError, ssl.SSLError):
        pass
    return data


def request(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def status(response: bytes) -> int:
    """The HTTP status of a raw response (0: no HTTP response at all)."""
    if not response.startswith(b"HTTP/"):
        return 0
    return int(response.split(b" ", 2)[1])


def tls(seaweed: Seaweed, with_cert: bool) -> ssl.SSLContext:
    ca, cert, key = seaweed.client_cert()
    context = ssl.create_default_context(cafile=str(ca))
    context.check_hostname = False
    if with_cert:
        context.load_cert_chain(str(cert), str(key))
    return context


@pytest.fixture
def secret_object(store: ObjectStore) -> Iterator[str]:
    """An object like the old ``gateway/secret-key``; its path on the filer."""
    store.put_bytes(SECRET_KEY_OBJECT, b"the-old-secret-0123456789", "text/plain")
    yield f"/buckets/{store.bucket}/{SECRET_KEY_OBJECT}"
    store.delete(SECRET_KEY_OBJECT)


def test_the_internal_ports_refuse_what_has_no_certificate(seaweed: Seaweed, secret_object: str) -> None:
    """Master, volume and filer (HTTP): a plain request gets no data (400: TLS only), a TLS one
    without the folder's client certificate is cut in the handshake; reads and writes alike."""
    plain_or_tls = [None, tls(seaweed, with_cert=False)]
    for part in HTTP_PARTS:
        port = seaweed.ports[part]
        for context in plain_or_tls:
            for method, path, body in (
                ("GET", secret_object, b""),
                ("GET", "/dir/lookup?volumeId=1&read=yes", b""),  # the master gave out read JWTs
                ("GET", "/dir/assign", b""),  # ... and write JWTs
                ("GET", "/status", b""),
                ("PUT", "/buckets/konspekt-test/evil.txt", b"evil"),
                ("DELETE", secret_object, b""),
            ):
                response = raw_http(port, request(method, path, body), context)
                code = status(response)
                what = f"{part} {method} {path} ({'TLS' if context else 'plain'})"
                assert code in (0, 400), f"{what}: {response[:300]!r}"
                assert b"the-old-secret" not in response and b"Authorization" not in response, what
                if context is None and method == "GET":  # Go's answer to plain HTTP on a TLS port
                    assert b"Client sent an HTTP request to an HTTPS server" in response, what


def test_with_the_certificate_but_no_jwt_volume_and_filer_still_refuse(
    seaweed: Seaweed, secret_object: str, store: ObjectStore
) -> None:
    """The second lock: even a holder of the certificate needs a JWT signed with SeaweedFS's
    own keys to read or write on the filer or a volume server."""
    context = tls(seaweed, with_cert=True)
    filer = seaweed.ports["filer"]
    for method, path, body in (
        ("GET", secret_object, b""),
        ("GET", f"/buckets/{store.bucket}/?pretty=y", b""),
        ("PUT", f"/buckets/{store.bucket}/evil.txt", b"evil"),
        ("POST", f"/buckets/{store.bucket}/evil.txt", b"evil"),
        ("DELETE", secret_object, b""),
    ):
        response = raw_http(filer, request(method, path, body), context)
        assert status(response) == 401, (method, path, response[:300])
    volume = seaweed.ports["volume"]
    for method in ("GET", "PUT", "DELETE"):
        response = raw_http(
            volume, request(method, "/1,0123456789", b"x" if method == "PUT" else b""), context
        )
        assert status(response) == 401, (method, response[:300])
    assert store.get_bytes(SECRET_KEY_OBJECT) == b"the-old-secret-0123456789"  # nothing was deleted
    assert not store.exists("evil.txt")


def test_the_grpc_ports_want_the_client_certificate(seaweed: Seaweed) -> None:
    """gRPC (what `weed shell` uses to list and delete everything): a plaintext or a TLS channel
    without the client certificate never connects; with it, it does."""
    ca, cert, key = (path.read_bytes() for path in seaweed.client_cert())
    for part in GRPC_PARTS:
        target = f"127.0.0.1:{seaweed.ports[part]}"
        anonymous = [
            grpc.insecure_channel(target),
            grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=ca)),
        ]
        for channel in anonymous:
            with channel, pytest.raises(grpc.FutureTimeoutError):
                grpc.channel_ready_future(channel).result(timeout=1)
        creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
        options = [("grpc.ssl_target_name_override", "localhost")]
        with grpc.secure_channel(target, creds, options) as channel:
            grpc.channel_ready_future(channel).result(timeout=10)


def test_the_s3_port_works_with_credentials_and_refuses_without(seaweed: Seaweed, store: ObjectStore) -> None:
    store.put_bytes("security/probe.txt", b"probe", "text/plain")
    assert store.get_bytes("security/probe.txt") == b"probe"
    big = os.urandom(20 * 1024 * 1024)  # multipart: S3 -> filer -> volume over mutual TLS + JWT
    store.put_bytes("security/big.bin", big)
    assert store.get_bytes("security/big.bin") == big
    with httpx.Client() as client:
        assert client.get(store.presigned_get("security/probe.txt")).content == b"probe"
        anonymous = client.get(f"http://{seaweed.endpoint}/{store.bucket}/security/probe.txt")
        assert anonymous.status_code == 403
        assert client.put(f"http://{seaweed.endpoint}/{store.bucket}/evil", content=b"x").status_code == 403
    store.delete("security/probe.txt")
    store.delete("security/big.bin")


def test_the_keys_and_certificates_are_readable_by_their_owner_only(seaweed: Seaweed) -> None:
    assert stat.S_IMODE(seaweed.data_dir.stat().st_mode) == 0o700
    for path in (
        seaweed.data_dir / "security.toml",
        seaweed.data_dir / "s3.json",
        *seaweed.tls_dir.iterdir(),
    ):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(seaweed.tls_dir.stat().st_mode) == 0o700
    assert not (seaweed.tls_dir / "ca.key").exists()  # nothing else can ever be signed
    text = (seaweed.data_dir / "security.toml").read_text()
    for section in ("[jwt.signing]", "[jwt.signing.read]", "[jwt.filer_signing]", "[jwt.filer_signing.read]"):
        assert section in text
    assert 'key = ""' not in text


# -- the cookie secret ---------------------------------------------------------------------


def test_the_secret_file_is_made_owner_only_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "run" / "gateway-secret"
    path.parent.mkdir()
    first = load_secret("", str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32 and load_secret("", str(path)) == first
    assert load_secret("configured-secret-0123", str(path)) == b"configured-secret-0123"  # the setting wins
    assert load_secret("", "") != load_secret("", "")  # neither: one per process


def test_a_short_or_placeholder_secret_stops_the_gateway() -> None:
    with pytest.raises(ValueError, match="16 characters"):
        gateway_settings("127.0.0.1:1", secret_key="short")
    with pytest.raises(ValueError, match="placeholder"):  # .env.example's value
        gateway_settings("127.0.0.1:1", secret_key="change-me-to-a-long-random-string")


@pytest.mark.anyio
async def test_the_secret_is_not_in_the_bucket_and_an_old_copy_is_deleted(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore, tmp_path: Path
) -> None:
    """A secret an earlier version kept in the bucket is deleted at start and not used: a cookie
    signed with it is a stranger's. Identities survive a restart through the file."""
    old = b"secret-an-old-version-kept-in-the-bucket"
    bucket_store.put_bytes(SECRET_KEY_OBJECT, old, "text/plain")
    settings = gateway_settings(stages.target, secret_key_file=str(tmp_path / "gateway-secret"))
    async with serve(settings, bucket_s3, token=None) as client:
        assert not bucket_store.exists(SECRET_KEY_OBJECT)
        created = await upload(client, b"data", "mine.mp4")
        value = client.cookies[OWNER_COOKIE]
    assert list(bucket_store.list_keys("gateway/")) == []
    assert not [key for key in bucket_store.list_keys("") if not key.startswith("jobs/")]
    secret = (tmp_path / "gateway-secret").read_bytes().strip()
    assert all(secret not in bucket_store.get_bytes(key) for key in bucket_store.list_keys(""))

    app = create_app(settings, bucket_s3)
    async with app.router.lifespan_context(app):
        async with client_for(app) as same:  # the same cookie after a restart: the same owner
            same.cookies.set(OWNER_COOKIE, value)
            assert [j["id"] for j in (await same.get("/api/v1/jobs")).json()["jobs"]] == [created["id"]]
        # the same identity signed with the old stored secret, or with any other key: a stranger
        ident = value.partition(".")[0]
        for other in (old, b"another-key-0123456789abcdef"):
            forged = Signer(other)._mac(ident)
            async with client_for(app) as forger:
                forger.cookies.set(OWNER_COOKIE, f"{ident}.{forged}")
                resp = await forger.get(f"/api/v1/jobs/{created['id']}")
                assert resp.status_code == 404
                assert resp.headers["set-cookie"].startswith(OWNER_COOKIE + "=")  # a new identity
                assert (await forger.get("/api/v1/jobs")).json()["jobs"] == []


# -- uploads a killed gateway left unfinished ------------------------------------------------


def _start_upload(store: ObjectStore, key: str) -> str:
    upload_id: str = store.client._create_multipart_upload(store.bucket, key, {})
    store.client._upload_part(store.bucket, key, b"video" * 1000, None, upload_id, 1)
    return upload_id


@pytest.mark.anyio
async def test_uploads_left_unfinished_before_a_start_are_aborted_after_the_grace(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore, tmp_path: Path
) -> None:
    """A gateway killed mid-upload leaves a multipart upload; the next start aborts it once the
    grace shows nobody writes it. Uploads that are not the gateway's (a stage's output) and
    uploads that go on after the start are left alone."""
    dead = _start_upload(bucket_store, "jobs/killed-mid-upload-0000/upload")
    stage_output = _start_upload(bucket_store, "jobs/stage-writing-000000/audio.wav")
    alive_key = "jobs/another-live-writer-00/upload"
    alive = _start_upload(bucket_store, alive_key)
    settings: Any = gateway_settings(
        stages.target, secret_key_file=str(tmp_path / "secret"), dead_upload_grace_seconds=2.0
    )
    app = create_app(settings, bucket_s3)
    async with app.router.lifespan_context(app):
        await asyncio.sleep(1.0)
        assert len(bucket_store.stale_uploads("jobs/")) == 3  # nothing before the grace
        bucket_store.client._upload_part(bucket_s3.bucket, alive_key, b"more" * 1000, None, alive, 2)
        for _ in range(100):
            await asyncio.sleep(0.1)
            left = {upload_id for _, upload_id, _ in bucket_store.stale_uploads("jobs/")}
            if dead not in left:
                break
        assert left == {stage_output, alive}
    for key, upload_id, _ in bucket_store.stale_uploads("jobs/"):
        bucket_store.abort_upload(key, upload_id)
