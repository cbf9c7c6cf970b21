"""Callbacks go only outward (issue 16): every spelling of an internal address is refused at
submission or at delivery and a local listener receives nothing; userinfo is refused; redirects
are not followed; each request goes to the address that was checked; an allow-listed receiver
gets a signed POST that it can verify."""

from __future__ import annotations

import asyncio
import hmac
import http.server
import ipaddress
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from konspekt.settings import S3Settings
from konspekt_gateway import callbacks
from konspekt_gateway.callbacks import BadCallback, IPAddress
from konspekt_gateway.jobs import DOWNLOADS
from konspekt_gateway.settings import GatewaySettings
from tests.gateway.conftest import TERMINAL, gateway_settings, serve, upload, wait_state
from tests.gateway.fake_stages import FakeStages

pytestmark = pytest.mark.anyio

KEY = b"callback-key-for-tests"
PAYLOAD = {"id": "job-1", "state": "done", "title": "Совещание"}


# -- a local receiver -----------------------------------------------------------------------------


@dataclass
class Hit:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Listener:
    port: int
    hits: list[Hit] = field(default_factory=list)

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


class _Handler(http.server.BaseHTTPRequestHandler):
    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        hit = Hit(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        self.server.hits.append(hit)  # type: ignore[attr-defined]
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "/landing")
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = _record

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def listener() -> Iterator[Listener]:
    """An HTTP server on 127.0.0.1 (port 0) that records every request it gets."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    found = Listener(server.server_port)
    server.hits = found.hits  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield found
    server.shutdown()
    server.server_close()


class Recorder(httpx.AsyncBaseTransport):
    """Stands in for the network: records each request and answers ``statuses`` in turn."""

    def __init__(self, *statuses: int) -> None:
        self.requests: list[httpx.Request] = []
        self.statuses = list(statuses) or [200]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return httpx.Response(status)


def settings(**overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {"retry_backoff_seconds": 0.0, "callback_timeout_seconds": 3.0, **overrides}
    return GatewaySettings.model_validate(values)


async def deliver(
    url: str, config: GatewaySettings, transport: httpx.AsyncBaseTransport | None = None
) -> str:
    return await callbacks.deliver(url, PAYLOAD, key=KEY, settings=config, label="test", transport=transport)


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[list[str]]]) -> list[str]:
    """Names resolve to the given addresses, one list per lookup (the last one repeats)."""
    asked: list[str] = []

    async def getaddrinfo(host: str, port: int) -> list[IPAddress]:
        asked.append(host)
        turns = answers[host]
        found = turns.pop(0) if len(turns) > 1 else turns[0]
        return [ipaddress.ip_address(a) for a in found]

    monkeypatch.setattr(callbacks, "_getaddrinfo", getaddrinfo)
    return asked


# -- addresses ------------------------------------------------------------------------------------

BLOCKED = {
    "127.0.0.1": "loopback",
    "127.255.255.254": "loopback",
    "::1": "loopback",
    "::ffff:127.0.0.1": "loopback",  # IPv4-mapped
    "::127.0.0.1": "loopback",  # IPv4-compatible
    "2002:7f00:1::": "loopback",  # 6to4 around 127.0.0.1
    "64:ff9b::7f00:1": "loopback",  # NAT64 around 127.0.0.1
    "10.0.0.1": "private",
    "172.16.5.4": "private",
    "192.168.1.1": "private",
    "::ffff:192.168.1.1": "private",
    "2002:c0a8:101::": "private",  # 6to4 around 192.168.1.1
    "fd00::1": "private",
    "fec0::1": "private",
    "169.254.169.254": "link-local",
    "::ffff:169.254.169.254": "link-local",
    "fe80::1": "link-local",
    "100.64.0.1": "shared (CGNAT)",
    "100.127.255.254": "shared (CGNAT)",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "ff02::1": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    "192.0.0.8": "reserved",
    "198.18.0.1": "reserved",
    "0.0.0.0": "unspecified",
    "0.1.2.3": "unspecified",
    "::": "unspecified",
    "192.0.2.10": "documentation",
    "2001:db8::1": "documentation",
    # Teredo whose client is 10.0.0.1 (stored inverted: 0xf5ffff fe)
    "2001:0:4136:e378:8000:63bf:f5ff:fffe": "private",
}
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::"]


@pytest.mark.parametrize(("address", "kind"), sorted(BLOCKED.items()))
def test_internal_addresses_are_blocked(address: str, kind: str) -> None:
    assert callbacks.blocked_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert callbacks.blocked_kind(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "spelling", ["127.0.0.1", "0x7f000001", "2130706433", "017700000001", "127.1", "0x7f.1"]
)
def test_every_numeric_spelling_is_one_address(spelling: str) -> None:
    assert callbacks.numeric_address(spelling) == ipaddress.IPv4Address("127.0.0.1")


# -- at submission --------------------------------------------------------------------------------

REFUSED_AT_SUBMISSION = {
    "ftp://example.com/hook": "bad_callback",
    "file:///etc/passwd": "bad_callback",
    "gopher://example.com/": "bad_callback",
    "http://user:pass@example.com/hook": "bad_callback_userinfo",
    "https://token@example.com/hook": "bad_callback_userinfo",
    "http://example.com\\@127.0.0.1/": "bad_callback",
    "http://exa mple.com/": "bad_callback",
    "http://%31%32%37.0.0.1/": "bad_callback_host",
    "http://1.2.3.4.5/": "bad_callback_host",
    "http://999.1.1.1/": "bad_callback_host",
    "http://example.123/": "bad_callback_host",
    "http://[fe80::1%25eth0]/": "bad_callback_host",
    "http://example.com:0/": "bad_callback_host",
    "http://127.0.0.1:9180/metrics": "callback_not_public",
    "http://127.0.0.1:8000/api/v1/jobs?filename=x.mp4": "callback_not_public",
    "http://0x7f000001/": "callback_not_public",
    "http://2130706433/": "callback_not_public",
    "http://017700000001/": "callback_not_public",
    "http://127.1/": "callback_not_public",
    "http://127.0.0.1./": "callback_not_public",
    "http://[::1]/": "callback_not_public",
    "http://[::ffff:127.0.0.1]/": "callback_not_public",
    "http://169.254.169.254/latest/meta-data/": "callback_not_public",
    "http://100.64.1.1/": "callback_not_public",
    "http://10.0.0.1:8333/": "callback_not_public",
    "http://[fd00::1]/": "callback_not_public",
    "http://0.0.0.0:8000/": "callback_not_public",
    "http://localhost:8000/": "callback_not_public",
    "http://LOCALHOST./": "callback_not_public",
    "http://app.localhost/": "callback_not_public",
    "http://ｌｏｃａｌｈｏｓｔ/": "callback_not_public",  # fullwidth: IDNA makes it localhost
}


@pytest.mark.parametrize(("url", "key"), sorted(REFUSED_AT_SUBMISSION.items()))
def test_submission_refuses(url: str, key: str) -> None:
    with pytest.raises(BadCallback) as caught:
        callbacks.check_submitted(url, settings())
    assert caught.value.status == 400 and caught.value.code == "invalid_request"
    assert caught.value.key == key
    assert caught.value.text("ru") != caught.value.text("en")  # both languages


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/konspekt?x=1",
        "http://93.184.216.34:8080/hook",
        "http://[2606:4700:4700::1111]/hook",
        "https://bücher.example/päth",
        "",
    ],
)
def test_submission_accepts_public_urls(url: str) -> None:
    assert callbacks.check_submitted(url, settings()) == url


def test_submission_allows_what_is_allow_listed() -> None:
    config = settings(callback_allow="127.0.0.1/32, hooks.internal *.svc.cluster.local")
    for url in (
        "http://127.0.0.1:9000/",
        "http://2130706433/",
        "http://hooks.internal/",
        "http://a.svc.cluster.local/",
    ):
        assert callbacks.check_submitted(url, config) == url
    with pytest.raises(BadCallback):
        callbacks.check_submitted("http://127.0.0.2/", config)
    with pytest.raises(BadCallback):
        callbacks.check_submitted("http://u:p@127.0.0.1/", config)  # userinfo: never


@pytest.mark.parametrize("value", ["10.0.0.0/33", "10.0.0.1/8", "300.1.1.1", "bad name!", "-x.example"])
def test_a_wrong_allow_list_stops_the_gateway(value: str) -> None:
    with pytest.raises(ValidationError):
        settings(callback_allow=value)


# -- at delivery: nothing reaches an internal receiver --------------------------------------------

LOOPBACK_FORMS = [
    "127.0.0.1",
    "localhost",
    "LOCALHOST.",
    "0x7f000001",
    "2130706433",
    "017700000001",
    "127.1",
    "0.0.0.0",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
]


@pytest.mark.parametrize("host", LOOPBACK_FORMS)
async def test_loopback_in_any_spelling_gets_nothing(listener: Listener, host: str) -> None:
    """Delivery itself refuses (as for a job submitted before the check existed, or a name that
    resolves inward): the listener on 127.0.0.1 must receive nothing."""
    note = await deliver(listener.url(host=host), settings())
    await asyncio.sleep(0.1)
    assert note.startswith("the callback was not sent: "), note
    assert listener.hits == []


@pytest.mark.parametrize(
    "host",
    [
        "169.254.169.254",
        "[::ffff:169.254.169.254]",
        "10.0.0.1",
        "100.64.0.1",
        "[fd00::1]",
        "[fe80::1]",
        "224.0.0.1",
    ],
)
async def test_other_internal_addresses_are_not_even_tried(host: str) -> None:
    network = Recorder()
    note = await deliver(f"http://{host}/latest/meta-data/", settings(), network)
    assert note.startswith("the callback was not sent: "), note
    assert network.requests == []


async def test_names_that_resolve_inward_are_refused(
    monkeypatch: pytest.MonkeyPatch, listener: Listener
) -> None:
    fake_dns(
        monkeypatch,
        {
            "inward.example": [["127.0.0.1"]],
            "mixed.example": [["93.184.216.34", "10.0.0.5"]],  # one internal address is enough
            "mapped.example": [["::ffff:127.0.0.1"]],
        },
    )
    network = Recorder()
    for name in ("inward.example", "mixed.example", "mapped.example"):
        note = await deliver(listener.url(host=name), settings(), network)
        assert note.startswith(f"the callback was not sent: {name} resolves to "), note
    assert network.requests == [] and listener.hits == []
    assert "inward.example resolves to 127.0.0.1, a loopback address" in (
        await deliver(listener.url(host="inward.example"), settings())
    )


async def test_each_try_connects_to_the_address_it_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: the first lookup is public (that try goes to that address, by IP, with
    the name in Host and SNI); the second lookup turns inward and the retry is refused."""
    asked = fake_dns(monkeypatch, {"hooks.example": [["93.184.216.34"], ["127.0.0.1"]]})
    network = Recorder(503)
    note = await deliver("https://hooks.example:8443/in?x=%2F", settings(), network)
    assert asked == ["hooks.example", "hooks.example"]
    assert len(network.requests) == 1
    sent = network.requests[0]
    assert sent.url.host == "93.184.216.34" and sent.url.port == 8443 and sent.url.scheme == "https"
    assert sent.url.raw_path == b"/in?x=%2F"
    assert sent.headers["host"] == "hooks.example:8443"
    assert sent.extensions["sni_hostname"] == "hooks.example"
    assert note == "the callback was not sent: hooks.example resolves to 127.0.0.1, a loopback address"


async def test_proxies_from_the_environment_are_not_used(
    monkeypatch: pytest.MonkeyPatch, listener: Listener
) -> None:
    """A proxy would connect wherever it likes: callbacks go straight to the checked address."""
    monkeypatch.setenv("HTTP_PROXY", "http://10.255.255.1:3128")
    monkeypatch.setenv("ALL_PROXY", "http://10.255.255.1:3128")
    assert await deliver(listener.url(), settings(callback_allow="127.0.0.1/32")) == ""
    assert len(listener.hits) == 1 and listener.hits[0].path == "/hook"


async def test_userinfo_is_never_sent(listener: Listener) -> None:
    url = f"http://user:secret@127.0.0.1:{listener.port}/hook"
    note = await deliver(url, settings(callback_allow="127.0.0.1/32"))
    assert note == "the callback was not sent: its URL is not a plain http(s) URL"
    assert listener.hits == []


async def test_redirects_are_not_followed(listener: Listener) -> None:
    note = await deliver(listener.url("/redirect"), settings(callback_allow="127.0.0.1/32"))
    assert "HTTP 302, a redirect, which is not followed" in note
    assert [(h.method, h.path) for h in listener.hits] == [("POST", "/redirect")]  # once, not /landing


async def test_failures_are_tried_three_times_and_noted() -> None:
    network = Recorder(500)
    note = await deliver("http://93.184.216.34/hook", settings(), network)
    assert len(network.requests) == 3
    assert note == "the callback was not delivered: HTTP 500 (tried 3 times)"


# -- an allowed delivery is signed ----------------------------------------------------------------


def check_signature(hit: Hit, key: bytes) -> dict[str, Any]:
    stamp = hit.headers["x-konspekt-timestamp"]
    signature = hit.headers["x-konspekt-signature"]
    assert abs(time.time() - int(stamp)) < 60
    expected = "sha256=" + hmac.new(key, f"{stamp}.".encode() + hit.body, "sha256").hexdigest()
    assert signature == expected
    assert callbacks.verify(key, stamp, hit.body, signature)
    assert not callbacks.verify(key, stamp, hit.body + b" ", signature)
    assert not callbacks.verify(b"another key", stamp, hit.body, signature)
    assert not callbacks.verify(key, str(int(stamp) - 3600), hit.body, signature)
    body: dict[str, Any] = json.loads(hit.body)
    return body


@pytest.mark.parametrize("allow", ["127.0.0.1/32", "localhost"])
async def test_an_allow_listed_receiver_gets_a_signed_post(listener: Listener, allow: str) -> None:
    host = "localhost" if allow == "localhost" else "127.0.0.1"
    note = await deliver(listener.url(host=host), settings(callback_allow=allow))
    assert note == ""
    assert len(listener.hits) == 1
    hit = listener.hits[0]
    assert hit.method == "POST" and hit.path == "/hook"
    assert hit.headers["host"] == f"{host}:{listener.port}"
    assert hit.headers["content-type"] == "application/json"
    assert "authorization" not in hit.headers
    assert check_signature(hit, KEY) == PAYLOAD


def test_the_signing_key() -> None:
    configured = settings(callback_secret="shared-with-receivers")
    assert callbacks.signing_key(configured, b"cookie") == b"shared-with-receivers"
    derived = callbacks.signing_key(settings(), b"cookie-secret")
    assert derived == callbacks.signing_key(settings(), b"cookie-secret")  # stable
    assert derived != callbacks.signing_key(settings(), b"another-secret")
    assert b"cookie-secret" not in derived and len(derived) == 64


# -- end to end: a job with a callback ------------------------------------------------------------


@pytest.mark.parametrize("configured", [True, False])
async def test_a_job_calls_back_an_allow_listed_receiver(
    stages: FakeStages, bucket_s3: S3Settings, listener: Listener, configured: bool
) -> None:
    extra: dict[str, Any] = {"callback_allow": "127.0.0.1/32", "secret_key": "cookie-secret-for-tests"}
    if configured:
        extra["callback_secret"] = "receivers-know-this"
    config = gateway_settings(stages.target, **extra)
    async with serve(config, bucket_s3) as client:
        created = await upload(client, b"data", "hook.mp4", callback_url=listener.url())
        await wait_state(client, created["id"], TERMINAL)
        for _ in range(100):
            if listener.hits:
                break
            await asyncio.sleep(0.05)
        job = (await client.get(f"/api/v1/jobs/{created['id']}")).json()
    key = b"receivers-know-this" if configured else callbacks.signing_key(config, b"cookie-secret-for-tests")
    assert len(listener.hits) == 1
    body = check_signature(listener.hits[0], key)
    assert body["id"] == created["id"] and body["state"] == "done"
    assert body["files"] == list(DOWNLOADS)
    assert not any("callback" in w for w in job["warnings"])


async def test_a_job_never_calls_back_inward(
    stages: FakeStages, bucket_s3: S3Settings, listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Literal internal addresses get 400 (English and Russian); a name that resolves to
    loopback only at delivery is refused then, the job says so, and the listener gets nothing."""
    fake_dns(monkeypatch, {"hooks.example": [["127.0.0.1"]]})
    async with serve(gateway_settings(stages.target), bucket_s3) as client:
        for url in (listener.url(), listener.url(host="0x7f000001"), listener.url(host="[::1]")):
            for lang, words in (("en", "public addresses"), ("ru", "публичные адреса")):
                resp = await client.post(
                    "/api/v1/jobs",
                    params={"filename": "a.mp4", "callback_url": url},
                    content=b"x",
                    headers={"Accept-Language": lang},
                )
                assert resp.status_code == 400, resp.text
                assert resp.json()["error"]["code"] == "invalid_request"
                assert words in resp.json()["error"]["message"]
        userinfo = await client.post(
            "/api/v1/jobs",
            params={"filename": "a.mp4", "callback_url": "http://u:p@example.com/"},
            content=b"x",
        )
        assert userinfo.status_code == 400
        assert "user name or password" in userinfo.json()["error"]["message"]

        created = await upload(client, b"data", "hook.mp4", callback_url=listener.url(host="hooks.example"))
        note = "the callback was not sent: hooks.example resolves to 127.0.0.1, a loopback address"
        job: dict[str, Any] = {}
        for _ in range(200):
            job = (await client.get(f"/api/v1/jobs/{created['id']}")).json()
            if note in job["warnings"]:
                break
            await asyncio.sleep(0.05)
        ru = (await client.get(f"/api/v1/jobs/{created['id']}", headers={"Accept-Language": "ru"})).json()
    assert job["state"] == "done" and note in job["warnings"]
    assert "обратный вызов не отправлен: hooks.example указывает на 127.0.0.1 — петлевой адрес" in " ".join(
        ru["warnings_text"]
    )
    assert listener.hits == []
