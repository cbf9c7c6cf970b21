"""Summarize again on the job view (issue 14, part 3) in headless Chromium against a real gateway
process with the fake stages and the real renderer: re-summarize as a lecture with an
instruction, watch the run, see the new konspekt and its Markdown; in Russian; another browser
gets 404. Screenshots go to test-artifacts/job-view/."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt.v1 import common_pb2
from konspekt_devstack import Proc, free_port
from konspekt_renderer.server import build_server as build_renderer
from konspekt_renderer.settings import RendererSettings
from tests.browser.chromium import ARGS, CHROMIUM, require_chromium
from tests.browser.chromium import ARTIFACTS as BROWSER_ARTIFACTS
from tests.gateway.conftest import drop_bucket
from tests.gateway.fake_stages import FakeStages
from tests.gateway.test_process import gateway_env, start_gateway

require_chromium()

from playwright.sync_api import Browser, expect, sync_playwright  # noqa: E402

from tests.browser.test_job_view import job_of, ready  # noqa: E402

ARTIFACTS = BROWSER_ARTIFACTS / "job-view"
WISH = "Focus on the bus"


@pytest.fixture(scope="module")
def module_s3(s3_settings: S3Settings) -> Iterator[S3Settings]:
    settings = s3_settings.model_copy(update={"bucket": "browser-resummarize"})
    ObjectStore(settings).ensure_bucket(expire_days=None)
    yield settings
    drop_bucket(settings)


@pytest.fixture(scope="module")
def store(module_s3: S3Settings) -> ObjectStore:
    return ObjectStore(module_s3)


@pytest.fixture(scope="module")
def stack(
    module_s3: S3Settings, store: ObjectStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, FakeStages]]:
    """The gateway with the fake audio, ASR and summarizer stages and the real renderer."""
    fake = FakeStages(store).start()
    renderer, loader = build_renderer(RendererSettings.model_validate({"port": 0, "grace_seconds": 0}), store)
    renderer.start()
    renderer.load_and_serve(loader)
    env = gateway_env(
        module_s3,
        fake.target,
        free_port(),
        KONSPEKT_GATEWAY_MAX_UPLOAD_MB="50",
        KONSPEKT_GATEWAY_RENDERER_TARGET=renderer.address,
    )
    proc: Proc
    proc, address = start_gateway(env, tmp_path_factory.mktemp("gateway") / "gateway.log")
    yield address, fake
    proc.stop()
    renderer.stop(0)
    fake.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=[*ARGS, "--mute-audio"], headless=True
        )
        yield chromium
        chromium.close()


def test_summarize_again_as_a_lecture_and_see_the_new_konspekt(
    stack: tuple[str, FakeStages], browser: Browser, store: ObjectStore, testdata: Path
) -> None:
    url, fake = stack
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    stranger = browser.new_context(locale="en-US")
    try:
        job_id = job_of(context, url, store, testdata, "en")
        api = f"{url}/api/v1/jobs/{job_id}"
        asr_calls = fake.script.calls["asr"]
        page = context.new_page()
        page.goto(f"{url}/jobs/{job_id}")
        ready(page)
        expect(page.locator(".konspekt-title")).to_have_text("Rivers")

        again = page.locator("#again")
        expect(again).to_have_text("Summarize again")
        again.click()
        form = page.locator("#again-form")
        expect(form).to_be_visible()
        expect(page.locator("#again-style")).to_be_focused()
        expect(page.locator("#again-style")).to_have_value("meeting")  # the job's
        page.locator("#again-style").select_option("lecture")
        page.locator("#again-instruction").fill(WISH)
        expect(page.locator("#again-count")).to_have_text(f"{len(WISH)} of 500 characters")
        assert page.locator("#again-instruction").get_attribute("maxlength") == "500"
        page.screenshot(path=ARTIFACTS / "5-summarize-again-en.png", full_page=True)

        gate = fake.script.gate("summarizer")  # hold the run to see it under way
        page.locator("#again-submit").click()
        expect(form).to_be_hidden()
        expect(page.locator("#again-status")).to_contain_text("Summarizing again:", timeout=10_000)
        expect(page.locator("#job-status")).not_to_have_text("Done!")
        expect(page.locator(".konspekt-title")).to_have_text("Rivers")  # the one before, meanwhile
        expect(page.locator("#edit")).to_be_hidden()
        gate.set()

        expect(page.locator(".konspekt-title")).to_have_text(f"Weekly sync ({WISH})", timeout=20_000)
        expect(page.locator("#job-status")).to_have_text("Done!")
        expect(page.locator("#again-status")).to_have_text("")
        expect(again).to_be_visible()
        expect(page.locator("#edit")).to_be_visible()
        expect(page.locator("#downloads a")).to_have_count(7)
        page.screenshot(path=ARTIFACTS / "6-summarized-again-en.png", full_page=True)

        job = context.request.get(api).json()
        assert job["run"] == "resummarize" and job["style"] == "lecture" and job["instruction"] == WISH
        assert set(job["stage_seconds"]) == {"summarizer", "renderer"}  # no ASR this time
        assert fake.script.calls["asr"] == asr_calls
        assert job["konspekt_version"] == 2 and job["runs"][0]["run"] == "upload"
        asked = fake.script.requests["summarizer"][-1]
        assert asked.style == common_pb2.STYLE_LECTURE and asked.instruction == WISH
        markdown = context.request.get(f"{api}/files/konspekt.md").text()
        assert markdown.startswith(f"# Weekly sync ({WISH})\n")
        assert store.exists(f"jobs/{job_id}/konspekt.v1.json")

        page.reload()  # kept by the server
        expect(page.locator(".konspekt-title")).to_have_text(f"Weekly sync ({WISH})")
        again.click()  # the form starts from what the konspekt was asked with
        expect(page.locator("#again-style")).to_have_value("lecture")
        expect(page.locator("#again-instruction")).to_have_value(WISH)
        page.locator("#again-cancel").click()
        expect(form).to_be_hidden()
        expect(again).to_be_focused()

        # another browser (another owner) cannot ask for it
        other = stranger.new_page()
        other.goto(url)
        status = other.evaluate(
            f"fetch('/api/v1/jobs/{job_id}/resummarize', {{method: 'POST', headers: {{'Content-Type': "
            "'application/json'}, body: JSON.stringify({style: 'lecture'})}).then(r => r.status)"
        )
        assert status == 404
    finally:
        stranger.close()
        context.close()


def test_summarize_again_in_russian(
    stack: tuple[str, FakeStages], browser: Browser, store: ObjectStore, testdata: Path
) -> None:
    url, fake = stack
    context = browser.new_context(locale="ru-RU")
    try:
        job_id = job_of(context, url, store, testdata, "ru")
        page = context.new_page()
        page.goto(f"{url}/jobs/{job_id}")
        ready(page)
        again = page.locator("#again")
        expect(again).to_have_text("Составить заново")
        again.click()
        expect(page.locator("#again-heading")).to_have_text("Составить конспект заново по расшифровке")
        page.locator("#again-style").select_option("lecture")
        page.locator("#again-language").select_option("ru")
        page.keyboard.press("Escape")  # cancels
        expect(page.locator("#again-form")).to_be_hidden()
        again.click()
        page.locator("#again-style").select_option("lecture")
        page.locator("#again-language").select_option("ru")
        page.locator("#again-instruction").fill("подробнее об автобусе")
        expect(page.locator("#again-count")).to_have_text("21 из 500 символов")
        page.locator("#again-submit").click()
        expect(page.locator(".konspekt-title")).to_have_text(
            "Weekly sync (подробнее об автобусе)", timeout=20_000
        )
        expect(page.locator("#job-status")).to_have_text("Завершено!")
        deadline = time.monotonic() + 10
        while (job := context.request.get(f"{url}/api/v1/jobs/{job_id}").json())["state"] != "done":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert job["konspekt_language"] == "ru" and job["style"] == "lecture"
        assert fake.script.requests["summarizer"][-1].language == "ru"
        page.screenshot(path=ARTIFACTS / "7-summarized-again-ru.png", full_page=True)
    finally:
        context.close()
