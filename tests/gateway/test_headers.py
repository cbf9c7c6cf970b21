"""The page's headers and links (issue 16): a strict Content-Security-Policy and the other
security headers on every response (page, API, /docs, static files, errors); no inline script
or style in the page or /docs; Swagger UI served by the gateway itself; nothing taken from the
Host header; ``language`` checked against what speech recognition knows."""

from __future__ import annotations

import html.parser
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt_devstack import ROOT, Proc, free_port
from konspekt_gateway.jobs import ASR_LANGUAGES
from konspekt_gateway.web import CONTENT_SECURITY_POLICY
from tests.gateway.conftest import gateway_settings, serve
from tests.gateway.fake_stages import FakeStages
from tests.gateway.test_process import gateway_env, start_gateway

pytestmark = pytest.mark.anyio

EVIL = "evil.example"
SHOTS = ROOT / "test-artifacts" / "headers"


class Html(html.parser.HTMLParser):
    """Every tag with its attributes, and the text inside <script> and <style> elements."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.inline: list[str] = []
        self._open: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self._open = tag if tag in ("script", "style") else None

    def handle_endtag(self, tag: str) -> None:
        self._open = None

    def handle_data(self, data: str) -> None:
        if self._open and data.strip():
            self.inline.append(f"<{self._open}>{data.strip()[:80]}")

    def urls(self) -> list[str]:
        return [v for _tag, attrs in self.tags for k, v in attrs.items() if k in ("src", "href", "action")]

    def problems(self) -> list[str]:
        """What a strict CSP would block: inline script or style, event handler attributes,
        style attributes, javascript: URLs."""
        found = list(self.inline)
        for tag, attrs in self.tags:
            found += [f"{tag} {k}=" for k in attrs if k.startswith("on") or k == "style"]
            found += [f"{tag} {v}" for v in attrs.values() if v.strip().lower().startswith("javascript:")]
            if tag == "style":
                found.append("<style>")
        return found


def assert_secured(resp: httpx.Response) -> None:
    headers = resp.headers
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, resp.request.url
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


def test_the_policy_is_strict() -> None:
    directives = {d.split()[0]: d.split()[1:] for d in CONTENT_SECURITY_POLICY.split("; ")}
    assert directives["script-src"] == ["'self'"] and directives["style-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"] and directives["object-src"] == ["'none'"]
    assert "unsafe" not in CONTENT_SECURITY_POLICY and "*" not in CONTENT_SECURITY_POLICY


async def test_every_response_carries_the_security_headers(stages: FakeStages, bucket_s3: S3Settings) -> None:
    async with serve(gateway_settings(stages.target), bucket_s3) as client:
        created = await client.post("/api/v1/jobs", params={"filename": "a.mp4"}, content=b"data")
        responses = [
            created,
            await client.get("/"),
            await client.get("/?lang=ru"),
            await client.get("/docs"),
            await client.get("/docs-assets/swagger-ui-bundle.js"),
            await client.get("/openapi.json"),
            await client.get("/static/page.js"),
            await client.get("/api/v1/jobs"),
            await client.get("/api/v1/jobs/" + "x" * 22),  # 404
            await client.get("/no/such/route"),
            await client.post("/api/v1/jobs", params={"language": "xx"}, content=b"x"),  # 400
            await client.get("/healthz"),
        ]
    assert [r.status_code for r in responses] == [201, 200, 200, 200, 200, 200, 200, 200, 404, 404, 400, 200]
    for resp in responses:
        assert_secured(resp)


@pytest.mark.parametrize("path", ["/", "/?lang=ru", "/docs"])
async def test_the_page_and_docs_have_no_inline_script_or_style_and_load_nothing_from_outside(
    stages: FakeStages, bucket_s3: S3Settings, path: str
) -> None:
    async with serve(gateway_settings(stages.target), bucket_s3) as client:
        page = await client.get(path)
        parsed = Html(page.text)
        assets = {}
        for url in parsed.urls():
            split = urllib.parse.urlsplit(url)
            assert not split.scheme and not split.netloc, f"{path} loads {url} from outside"
            if split.path.startswith("/"):  # the page's own files; ?lang=.. links stay on it
                assets[split.path] = await client.get(split.path)
    assert page.status_code == 200
    assert parsed.problems() == []
    scripts = [attrs["src"] for tag, attrs in parsed.tags if tag == "script"]
    assert scripts and all(src.startswith(("/static/", "/docs-assets/")) for src in scripts)
    for url, resp in assets.items():
        assert resp.status_code == 200, url
        assert_secured(resp)
        if url.endswith(".js"):
            assert "javascript" in resp.headers["content-type"], url
        if url in ("/static/page.js", "/static/docs.js"):  # ours: no address of anywhere else
            assert "https://" not in resp.text and "http://" not in resp.text, url
    if path == "/docs":
        assert {"/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css", "/static/docs.js"} <= set(
            assets
        )
        assert "SwaggerUIBundle" in assets["/docs-assets/swagger-ui-bundle.js"].text[:2000]
        assert "validatorUrl: null" in assets["/static/docs.js"].text  # no badge from validator.swagger.io
        assert 'data-openapi="/openapi.json"' in page.text


async def test_the_host_header_is_never_reflected(stages: FakeStages, bucket_s3: S3Settings) -> None:
    evil = {"Host": EVIL, "X-Forwarded-Host": EVIL}
    async with serve(gateway_settings(stages.target), bucket_s3) as client:
        pages = [
            await client.get(path, headers=evil) for path in ("/", "/?lang=ru", "/docs", "/openapi.json")
        ]
        created = await client.post(
            "/api/v1/jobs", params={"filename": "a.mp4"}, content=b"data", headers=evil
        )
        listed = await client.get("/api/v1/jobs", headers=evil)
        slash = await client.get("/api/v1/jobs/", headers=evil)  # the trailing-slash redirect
    for resp in [*pages, created, listed]:
        assert resp.status_code in (200, 201)
        assert EVIL not in resp.text
        assert all(EVIL not in value for value in resp.headers.values())
    assert created.headers["Location"] == f"/api/v1/jobs/{created.json()['id']}"
    assert slash.status_code == 307
    assert slash.headers["Location"] == "/api/v1/jobs"


async def test_absolute_links_and_redirects_use_the_public_url(
    stages: FakeStages, bucket_s3: S3Settings
) -> None:
    public = "https://konspekt.example.org"
    settings = gateway_settings(stages.target, public_url=public + "/")
    async with serve(settings, bucket_s3) as client:
        page = await client.get("/", headers={"Host": EVIL})
        docs = await client.get("/docs", headers={"Host": EVIL})
        slash = await client.get("/api/v1/jobs/?x=1", headers={"Host": EVIL})
    assert EVIL not in page.text and EVIL not in docs.text
    assert f'href="{public}/static/page.css"' in page.text
    assert f'src="{public}/static/page.js"' in page.text
    assert f'src="{public}/docs-assets/swagger-ui-bundle.js"' in docs.text
    assert slash.headers["Location"] == f"{public}/api/v1/jobs?x=1"


def test_a_public_url_must_be_a_plain_http_url() -> None:
    bad_urls = (
        "konspekt.example.org",
        "ftp://x.example",
        "https://u:p@x.example",
        "https://x.example/k",
        "http://x/?a",
    )
    for bad in bad_urls:
        with pytest.raises(ValueError, match="public"):
            gateway_settings("127.0.0.1:1", public_url=bad)


# -- language ---------------------------------------------------------------------------------
def test_the_language_list_is_faster_whispers() -> None:
    tokenizer = pytest.importorskip("faster_whisper.tokenizer")
    assert set(tokenizer._LANGUAGE_CODES) == ASR_LANGUAGES


async def test_a_language_speech_recognition_does_not_know_is_refused_at_upload(
    stages: FakeStages, bucket_s3: S3Settings, bucket_store: ObjectStore
) -> None:
    stages.script.gate("audio")
    async with serve(gateway_settings(stages.target), bucket_s3) as client:
        bad = {
            value: await client.post(
                "/api/v1/jobs", params={"filename": "a.mp4", "language": value}, content=b"x"
            )
            for value in ("xx", "klingon", "ru-RU", "e", "../en")
        }
        form = await client.post(
            "/api/v1/jobs", files={"file": ("a.mp4", b"data", "video/mp4")}, data={"language": "qq"}
        )
        russian = await client.post(
            "/api/v1/jobs", params={"language": "xx"}, content=b"x", headers={"Accept-Language": "ru"}
        )
        good = {
            value: await client.post(
                "/api/v1/jobs", params={"filename": "a.mp4", "language": value}, content=b"x"
            )
            for value in ("", "auto", "DE", "yue", "haw", "ru")
        }
    for value, resp in [*bad.items(), ("qq", form)]:
        assert resp.status_code == 400, value
        assert resp.json()["error"]["code"] == "invalid_request"
    assert "speech recognition knows" in bad["xx"].json()["error"]["message"]
    assert "'xx'" in bad["xx"].json()["error"]["message"]
    assert "распознавание речи" in russian.json()["error"]["message"]
    assert [resp.status_code for resp in good.values()] == [201] * len(good)
    assert [resp.json()["language"] for resp in good.values()] == ["", "", "de", "yue", "haw", "ru"]
    kept = {k.split("/")[1] for k in bucket_store.list_keys("jobs/")}
    assert kept == {resp.json()["id"] for resp in good.values()}  # nothing of the refused ones


# -- in a browser: no CSP violation on the page or /docs -------------------------------------
@pytest.fixture
def gateway_url(bucket_s3: S3Settings, stages: FakeStages, tmp_path: Path) -> Iterator[str]:
    env = gateway_env(bucket_s3, stages.target, free_port())
    proc: Proc
    proc, address = start_gateway(env, tmp_path / "gateway.log")
    yield address
    proc.stop()


def test_the_page_and_docs_run_in_chromium_without_a_csp_violation(gateway_url: str) -> None:
    from tests.browser.chromium import ARGS, CHROMIUM

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    from playwright.sync_api import FilePayload, expect, sync_playwright

    video: FilePayload = {"name": "a.mp4", "mimeType": "video/mp4", "buffer": b"x"}

    messages: list[str] = []
    outside: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.on("console", lambda msg: messages.append(f"{msg.type}: {msg.text}"))
            page.on("pageerror", lambda exc: messages.append(f"pageerror: {exc}"))
            page.on(
                "request",
                lambda request: (
                    outside.append(request.url)
                    if not request.url.startswith((gateway_url, "data:", "blob:"))
                    else None
                ),
            )
            page.goto(gateway_url)
            expect(page.locator("#no-jobs")).to_be_visible()
            page.set_input_files("#file", files=[video])
            page.click("#submit")
            expect(page.locator('article.job[data-state="done"]')).to_have_count(1, timeout=30_000)
            expect(page.locator(".konspekt-summary")).to_be_visible(timeout=10_000)
            width = page.evaluate("getComputedStyle(document.querySelector('main')).maxWidth")
            assert width == "960px"  # page.css (60rem) applies
            page.goto(gateway_url + "/docs")
            expect(page.locator(".swagger-ui .info .title")).to_contain_text(
                "konspekt gateway", timeout=20_000
            )
            expect(page.locator(".opblock").first).to_be_visible()
            page.locator(".opblock-summary").first.click()  # expand an operation
            expect(page.locator(".opblock-body").first).to_be_visible()
            if SHOTS.parent.exists():
                SHOTS.mkdir(exist_ok=True)
                page.screenshot(path=SHOTS / "docs.png")
        finally:
            browser.close()
    violations = [m for m in messages if "Content Security Policy" in m or "pageerror" in m]
    assert violations == [], violations
    assert outside == [], outside
