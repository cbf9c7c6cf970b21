"""The job view (issue 14) in headless Chromium against a real gateway process with the fake
stages: the recording plays beside its transcript, every time mark seeks the player and the
segment being played is highlighted; search, the keyboard, phone width; English and Russian;
another browser gets 404. Screenshots go to test-artifacts/job-view/; with
KONSPEKT_DOCS_SCREENSHOTS=1 the desktop one replaces docs/job-view.png (the README's)."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import docx
import pytest

from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt.transcripts import to_json
from konspekt.v1 import common_pb2
from konspekt_devstack import ROOT, Proc, free_port
from konspekt_renderer.server import build_server as build_renderer
from konspekt_renderer.settings import RendererSettings
from tests.browser.chromium import ARGS, CHROMIUM, require_chromium
from tests.browser.chromium import ARTIFACTS as BROWSER_ARTIFACTS
from tests.gateway.conftest import drop_bucket
from tests.gateway.fake_stages import FakeStages
from tests.gateway.test_process import gateway_env, start_gateway

require_chromium()

from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright  # noqa: E402

ARTIFACTS = BROWSER_ARTIFACTS / "job-view"
#: The README's screenshot, written only when asked (KONSPEKT_DOCS_SCREENSHOTS=1), so that a test
#: run leaves the tracked tree as it was.
DOCS_SHOT = ROOT / "docs" / "job-view.png"
WRITE_DOCS = os.environ.get("KONSPEKT_DOCS_SCREENSHOTS") == "1"
VIDEO = "lecture_en_60s.webm"  # VP9 and Opus: every Chromium build plays them
#: The transcript and konspekt the page is tested with (written over the fake stages' ones).
SEGMENTS = [
    (0.0, 6.0, "Welcome to the lecture on rivers."),
    (6.0, 12.0, "Today we look at where rivers begin."),
    (12.0, 18.0, "Rivers carry water and stones to the sea."),
    (18.0, 24.0, "The budget for the field trip is small this year."),
    (24.0, 30.0, "So we take the bus, not the train."),
    (30.0, 40.0, "Anna will book the bus by Friday."),
    (40.0, 50.0, "Questions can be sent by email."),
    (50.0, 60.0, "Thank you, see you next week."),
]


def konspekt(language: str) -> common_pb2.Konspekt:
    k = common_pb2.Konspekt(language=language, title="Rivers", summary="A lecture on rivers.")
    k.key_points.append(common_pb2.Point(text="Rivers carry stones", at=13.0, segment_index=2))
    k.decisions.append(common_pb2.Point(text="Take the bus", at=25.0, segment_index=4))
    k.action_items.append(
        common_pb2.ActionItem(task="Book the bus", owner="Anna", due="Friday", at=31.0, segment_index=5)
    )
    return k


@pytest.fixture(scope="module")
def module_s3(s3_settings: S3Settings) -> Iterator[S3Settings]:
    settings = s3_settings.model_copy(update={"bucket": "browser-job-view"})
    ObjectStore(settings).ensure_bucket(expire_days=None)
    yield settings
    drop_bucket(settings)


@pytest.fixture(scope="module")
def store(module_s3: S3Settings) -> ObjectStore:
    return ObjectStore(module_s3)


@pytest.fixture(scope="module")
def url(module_s3: S3Settings, store: ObjectStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The gateway with the fake audio, ASR and summarizer stages and the real renderer (the
    documents of an edited konspekt are checked)."""
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
    yield address
    proc.stop()
    renderer.stop(0)
    fake.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    with sync_playwright() as pw:
        args = [*ARGS, "--autoplay-policy=no-user-gesture-required", "--mute-audio"]
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=args, headless=True)
        yield chromium
        chromium.close()


def job_of(context: BrowserContext, url: str, store: ObjectStore, testdata: Path, language: str) -> str:
    """A job of this browser (its cookie is its owner), done, with the test's transcript and
    konspekt in place of the fake stages' ones; its id."""
    page = context.new_page()
    page.goto(url)  # the owner cookie
    page.close()
    resp = context.request.post(
        f"{url}/api/v1/jobs?filename={VIDEO}",
        data=(testdata / "video" / VIDEO).read_bytes(),
        headers={"Content-Type": "video/webm"},
    )
    assert resp.status == 201, resp.text()
    job_id: str = resp.json()["id"]
    deadline = time.monotonic() + 30
    while context.request.get(f"{url}/api/v1/jobs/{job_id}").json()["state"] != "done":
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.1)
    transcript = common_pb2.Transcript(language=language, duration=60.0)
    for index, (start, end, text) in enumerate(SEGMENTS):
        transcript.segments.append(common_pb2.Segment(index=index, start=start, end=end, text=text))
    store.put_bytes(f"jobs/{job_id}/transcript.json", to_json(transcript), "application/json")
    store.put_bytes(f"jobs/{job_id}/konspekt.json", to_json(konspekt(language)), "application/json")
    return job_id


def ready(page: Page) -> None:
    """The transcript is shown and the player knows the recording's duration."""
    expect(page.locator("#transcript li.seg")).to_have_count(len(SEGMENTS), timeout=10_000)
    page.wait_for_function("() => document.getElementById('player').readyState >= 1", timeout=15_000)


def position(page: Page) -> float:
    return float(page.evaluate("document.getElementById('player').currentTime"))


def highlighted(page: Page) -> str:
    active = page.locator("#transcript li.seg.active")
    expect(active).to_have_count(1)
    expect(active).to_have_attribute("aria-current", "true")
    return active.locator(".seg-text").inner_text()


def test_play_and_seek_in_english(url: str, browser: Browser, store: ObjectStore, testdata: Path) -> None:
    context = browser.new_context(
        locale="en-US",
        viewport={"width": 1280, "height": 800},
        permissions=["clipboard-read", "clipboard-write"],
    )
    try:
        job_id = job_of(context, url, store, testdata, "en")
        page = context.new_page()
        page.goto(f"{url}/jobs/{job_id}")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator("#transcript-heading")).to_have_text("Transcript")
        expect(page.locator("#job-status")).to_have_text("Done!")
        ready(page)
        expect(page.locator(".konspekt-title")).to_have_text("Rivers")

        # seven downloads, Markdown among them, and the Markdown copied by a button
        expect(page.locator("#downloads a")).to_have_count(7)
        expect(page.locator('#downloads a[data-file="konspekt.md"]')).to_have_text("Konspekt (Markdown)")
        page.locator("#copy").click()
        expect(page.locator("#copy-status")).to_have_text("Copied to the clipboard.")
        copied = page.evaluate("navigator.clipboard.readText()")
        markdown = context.request.get(f"{url}/api/v1/jobs/{job_id}/files/konspekt.md").text()
        assert copied == markdown and markdown.startswith("# Weekly sync\n")  # the renderer's

        # a konspekt time mark seeks the player; the segment it falls in is highlighted
        key_point = page.locator('#konspekt button.seek[data-at="13"]')
        expect(key_point).to_have_text("[0:13]")
        expect(key_point).to_have_attribute("aria-label", "Play from 0:13")
        key_point.click()
        page.wait_for_function("() => document.getElementById('player').currentTime >= 13")
        assert highlighted(page) == SEGMENTS[2][2]

        # playing on: the highlight follows the recording into the next segment
        page.evaluate("(p => { p.currentTime = 17.2; p.play(); })(document.getElementById('player'))")
        page.wait_for_function("() => document.getElementById('player').currentTime >= 18.3", timeout=15_000)
        assert highlighted(page) == SEGMENTS[3][2]
        page.evaluate("document.getElementById('player').pause()")

        # a transcript time mark seeks too
        page.locator('#transcript li.seg[data-index="6"] button.seek').click()
        page.wait_for_function("() => document.getElementById('player').currentTime >= 40")
        assert highlighted(page) == SEGMENTS[6][2]
        page.evaluate("document.getElementById('player').pause()")

        # search, then the keyboard alone: Enter goes to the first match's time mark, Enter plays it
        page.locator("#search").focus()
        page.keyboard.type("BUDGET")
        expect(page.locator("#search-count")).to_have_text("Found: 1")
        expect(page.locator("#transcript li.seg:visible")).to_have_count(1)
        expect(page.locator("#transcript li.seg:visible mark")).to_have_text("budget")
        page.keyboard.press("Enter")
        focused = page.evaluate("document.activeElement.closest('li.seg').dataset.index")
        assert focused == "3"
        page.keyboard.press("Enter")
        page.wait_for_function("() => document.getElementById('player').currentTime >= 18")
        assert 18 <= position(page) < 24
        assert highlighted(page) == SEGMENTS[3][2]
        page.evaluate("document.getElementById('player').pause()")
        page.locator("#search").focus()
        page.keyboard.type("zzz")
        expect(page.locator("#search-count")).to_have_text("Nothing found")
        page.keyboard.press("Escape")
        expect(page.locator("#transcript li.seg:visible")).to_have_count(len(SEGMENTS))

        page.evaluate("document.getElementById('player').currentTime = 31.5")
        expect(page.locator("#transcript li.seg.active")).to_have_attribute("data-index", "5")
        page.locator("#search").blur()
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=DOCS_SHOT if WRITE_DOCS else ARTIFACTS / DOCS_SHOT.name)
        page.screenshot(path=ARTIFACTS / "1-desktop-en.png", full_page=True)

        # phone width: one column, nothing wider than the screen, the time marks still work
        page.set_viewport_size({"width": 390, "height": 844})
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= 390, f"the page is {scroll} px wide on a phone"
        expect(page.locator("#player")).to_be_visible()
        page.locator('#konspekt button.seek[data-at="25"]').click()
        page.wait_for_function("() => document.getElementById('player').currentTime >= 25")
        assert highlighted(page) == SEGMENTS[4][2]
        page.screenshot(path=ARTIFACTS / "2-phone-en.png", full_page=True)
    finally:
        context.close()


def test_russian_and_another_browser_gets_404(
    url: str, browser: Browser, store: ObjectStore, testdata: Path
) -> None:
    context = browser.new_context(locale="ru-RU")
    stranger = browser.new_context(locale="en-US")
    try:
        job_id = job_of(context, url, store, testdata, "ru")
        page = context.new_page()
        page.goto(f"{url}/jobs/{job_id}")
        expect(page.locator("html")).to_have_attribute("lang", "ru")
        expect(page.locator("#transcript-heading")).to_have_text("Расшифровка")
        expect(page.locator("#job-status")).to_have_text("Завершено!")
        expect(page.locator("#back")).to_have_text("← Все записи")
        ready(page)
        expect(page.locator("#konspekt")).to_contain_text("Задачи")
        expect(page.locator('#downloads a[data-file="konspekt.md"]')).to_have_text("Конспект (Markdown)")
        expect(page.locator("#copy")).to_have_text("Скопировать конспект")
        expect(page.locator("#edit")).to_have_text("Исправить")
        expect(page.locator("#konspekt")).to_contain_text("Book the bus (кто: Anna, срок: Friday)")
        decision = page.locator('#konspekt button.seek[data-at="25"]')
        expect(decision).to_have_attribute("aria-label", "Воспроизвести с 0:25")
        decision.click()
        page.wait_for_function("() => document.getElementById('player').currentTime >= 25")
        assert highlighted(page) == SEGMENTS[4][2]
        page.evaluate("document.getElementById('player').pause()")
        page.locator("#search").fill("bus")
        expect(page.locator("#search-count")).to_have_text("Найдено: 2")
        page.screenshot(path=ARTIFACTS / "3-desktop-ru.png", full_page=True)

        # the list page links to the view
        page.goto(url)
        opener = page.locator(f'article.job[data-job="{job_id}"] a.job-open')
        expect(opener).to_have_text("Открыть")
        opener.click()
        expect(page).to_have_url(f"{url}/jobs/{job_id}")

        # another browser (another owner): the page, the recording and the transcript are 404
        other = stranger.new_page()
        response = other.goto(f"{url}/jobs/{job_id}")
        assert response is not None and response.status == 404
        for path in ("media", "transcript"):
            status = other.evaluate(f"fetch('/api/v1/jobs/{job_id}/{path}').then(r => r.status)")
            assert status == 404, path
        ranged = other.evaluate(
            f"fetch('/api/v1/jobs/{job_id}/media', {{headers: {{Range: 'bytes=0-9'}}}}).then(r => r.status)"
        )
        assert ranged == 404
        edit = other.evaluate(
            f"fetch('/api/v1/jobs/{job_id}/konspekt', {{method: 'PUT', headers: {{'Content-Type': "
            "'application/json'}, body: JSON.stringify({title: 'mine now'})}).then(r => r.status)"
        )
        assert edit == 404
        # while its owner gets the bytes it asks for
        part = page.evaluate(
            f"fetch('/api/v1/jobs/{job_id}/media', {{headers: {{Range: 'bytes=0-9'}}}})"
            ".then(r => [r.status, r.headers.get('content-range')])"
        )
        size = (testdata / "video" / VIDEO).stat().st_size
        assert part == [206, f"bytes 0-9/{size}"]
    finally:
        stranger.close()
        context.close()


def test_edit_an_owner_and_see_it_in_the_downloaded_docx(
    url: str, browser: Browser, store: ObjectStore, testdata: Path, tmp_path: Path
) -> None:
    context = browser.new_context(locale="en-US", accept_downloads=True)
    try:
        job_id = job_of(context, url, store, testdata, "en")
        page = context.new_page()
        page.goto(f"{url}/jobs/{job_id}")
        ready(page)
        page.locator('#transcript li.seg[data-index="5"] button.seek').click()  # to 0:30
        page.wait_for_function("() => document.getElementById('player').currentTime >= 30")
        page.evaluate("document.getElementById('player').pause()")

        page.locator("#edit").click()
        expect(page.locator("#edit-title")).to_be_focused()
        expect(page.locator("#edit-title")).to_have_value("Rivers")
        page.locator("#edit-title").fill("Rivers, corrected")
        owner = page.locator("#editor .edit-owner")
        expect(owner).to_have_value("Anna")
        owner.fill("Boris")
        decisions = page.locator('#editor fieldset[data-list="decisions"]')
        add = decisions.locator("button.add")
        expect(add).to_have_text(re.compile(r"Add at 0:3\d"))
        add.click()
        decisions.locator("li.edit-item input").last.fill("Call the bus company")
        page.locator('#editor fieldset[data-list="key_points"] li.edit-item button.remove').click()
        expect(page.locator('#editor fieldset[data-list="key_points"] li.edit-item')).to_have_count(0)
        page.screenshot(path=ARTIFACTS / "4-editing-en.png", full_page=True)
        page.locator("#save").click()

        expect(page.locator("#copy-status")).to_have_text(
            "Saved: the documents were made again from the edited konspekt."
        )
        expect(page.locator("#editor")).to_be_hidden()
        konspekt = page.locator("#konspekt")
        expect(konspekt.locator(".konspekt-title")).to_have_text("Rivers, corrected")
        expect(konspekt).to_contain_text("Book the bus (who: Boris, due: Friday)")
        expect(konspekt).to_contain_text("Call the bus company")
        added = konspekt.locator("button.seek", has_text=re.compile(r"\[0:3\d\]"))
        expect(added).to_have_count(2)  # the task's and the new decision's

        with page.expect_download() as info:
            page.locator('#downloads a[data-file="konspekt.docx"]').click()
        saved = tmp_path / "konspekt.docx"
        info.value.save_as(saved)
        doc = docx.Document(str(saved))
        paragraphs = [p.text for p in doc.paragraphs]
        assert paragraphs[0] == "Rivers, corrected"
        assert "[00:31] Book the bus — Owner: Boris, due: Friday" in paragraphs
        assert any(p.endswith("Call the bus company") for p in paragraphs), paragraphs
        assert "Rivers carry stones" not in " ".join(paragraphs)

        page.reload()  # kept by the server
        expect(page.locator("#konspekt")).to_contain_text("Book the bus (who: Boris, due: Friday)")

        # what the server refuses is said on the page, and nothing changes
        page.locator("#edit").click()
        page.locator("#editor .edit-task").fill("   ")
        page.locator("#save").click()
        expect(page.locator("#edit-error")).to_contain_text("Not saved: body.action_items.0.task")
        page.keyboard.press("Escape")
        expect(page.locator("#editor")).to_be_hidden()
        expect(page.locator("#konspekt")).to_contain_text("Book the bus (who: Boris, due: Friday)")
    finally:
        context.close()
