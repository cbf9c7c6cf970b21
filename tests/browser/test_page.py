"""The web page in headless Chromium (Debian's, driven by Playwright) against a real gateway
process (uvicorn) with the fake stages. Screenshots of the key states: test-artifacts/browser/."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt_devstack import Proc, free_port
from tests.browser.chromium import ARGS, CHROMIUM, require_chromium
from tests.browser.chromium import ARTIFACTS as BROWSER_ARTIFACTS
from tests.gateway.conftest import drop_bucket
from tests.gateway.fake_stages import FakeStages, rendered
from tests.gateway.test_process import gateway_env, start_gateway

require_chromium()

from playwright.sync_api import Browser, BrowserContext, Page, Route, expect, sync_playwright  # noqa: E402

ARTIFACTS = BROWSER_ARTIFACTS / "browser"
VIDEO = "jfk_en_11s.mp4"
SECOND = "Совещание отдела 1.mp4"


@pytest.fixture(scope="module")
def module_s3(s3_settings: S3Settings) -> Iterator[S3Settings]:
    settings = s3_settings.model_copy(update={"bucket": "browser-tests"})
    ObjectStore(settings).ensure_bucket(expire_days=None)
    yield settings
    drop_bucket(settings)


@pytest.fixture(scope="module")
def fake(module_s3: S3Settings) -> Iterator[FakeStages]:
    stages = FakeStages(ObjectStore(module_s3)).start()
    yield stages
    stages.stop()


@pytest.fixture(scope="module")
def url(module_s3: S3Settings, fake: FakeStages, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = gateway_env(module_s3, fake.target, free_port(), KONSPEKT_GATEWAY_MAX_UPLOAD_MB="50")
    proc: Proc
    proc, address = start_gateway(env, tmp_path_factory.mktemp("gateway") / "gateway.log")
    yield address
    proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def russian(browser: Browser) -> Iterator[BrowserContext]:
    """One Russian-speaking browser (one owner) for the whole module."""
    context = browser.new_context(locale="ru-RU", accept_downloads=True)
    yield context
    context.close()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def with_an_unconfirmed_owner(route: Route) -> None:
    """The konspekt as the gateway serves it, plus an action item whose owner the transcript does
    not say as a name (``owner_unconfirmed``): the page marks that owner."""
    response = route.fetch()
    konspekt = response.json()
    konspekt["action_items"].append(
        {"task": "Check the build", "owner": "Boris", "owner_unconfirmed": True, "due": "", "at": 70.0}
    )
    route.fulfill(response=response, json=konspekt)


def test_two_uploads_reach_done_in_russian_download_and_switch_language(
    url: str, russian: BrowserContext, testdata: Path, tmp_path: Path
) -> None:
    page = russian.new_page()
    page.route("**/api/v1/jobs/*/konspekt", with_an_unconfirmed_owner)
    page.goto(url)
    expect(page.locator("h2").first).to_have_text("Новые записи")
    expect(page.locator("#no-jobs")).to_be_visible()
    # the page's own button in the page's language (the native input, in the browser's, is hidden)
    expect(page.locator("#browse")).to_have_text("выберите файлы")
    box = page.locator("#file").bounding_box()
    assert box is not None and box["width"] <= 1 and box["height"] <= 1, box  # visually hidden
    with page.expect_file_chooser() as chooser:
        page.click("#browse")
    chooser.value.set_files([testdata / "video" / VIDEO, testdata / "video" / SECOND])
    expect(page.locator("#chosen")).to_contain_text("Выбрано: 2")
    page.select_option("#style", "lecture")
    page.click("#submit")

    cards = page.locator("article.job")
    expect(cards).to_have_count(2, timeout=20_000)
    done = page.locator('article.job[data-state="done"]')
    expect(done).to_have_count(2, timeout=30_000)
    first = page.locator(f'article.job:has-text("{VIDEO}")')
    expect(first.locator(".job-status")).to_have_text("Завершено!")
    expect(first.locator(".konspekt-summary")).to_have_text("Hello, team.", timeout=10_000)
    expect(first.locator(".konspekt")).to_contain_text("Главное")
    expect(first.locator(".konspekt")).to_contain_text("[0:01]The team met")
    expect(first.locator(".konspekt")).to_contain_text("[1:02]Write the notes (кто: Anna, срок: Monday)")
    expect(first.locator(".konspekt")).to_contain_text("[1:10]Check the build (кто: Boris (не подтверждён))")
    expect(first.locator(".stage-badges .badge")).to_have_count(4)
    # the checks' notes, folded under their count and in the page's language
    notes = first.locator(".job-warnings")
    expect(notes.locator("summary")).to_have_text("Замечания к конспекту: 2")
    expect(notes.locator("li").first).not_to_be_visible()
    notes.locator("summary").click()
    expect(notes.locator("li")).to_have_text(
        [
            "предложение краткого изложения «Thomas Jefferson chaired the review.» убрано: "
            "в записи не звучало Thomas, Jefferson",
            "название «Jefferson review» убрано: в записи не звучало Jefferson",
        ]
    )
    expect(first).to_contain_text("Файлы будут удалены")
    expect(page.locator(".upload-note").first).to_contain_text("Загружено")
    shot(page, "1-done-ru")

    with page.expect_download() as info:
        first.locator('a[data-file="konspekt.docx"]').click()
    download = info.value
    assert download.suggested_filename == "jfk_en_11s — konspekt.docx"
    saved = tmp_path / "konspekt.docx"
    download.save_as(saved)
    assert saved.read_bytes() == rendered("konspekt.docx", VIDEO, "Weekly sync")

    page.click("#lang-en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#submit")).to_have_text("Upload")
    expect(first.locator(".job-status")).to_have_text("Done!")
    expect(first.locator(".konspekt")).to_contain_text("Key points")
    expect(first.locator(".konspekt")).to_contain_text("[1:02]Write the notes (who: Anna, due: Monday)")
    expect(first.locator(".konspekt")).to_contain_text("[1:10]Check the build (who: Boris (unconfirmed))")
    shot(page, "2-done-en")
    page.reload()  # the choice is kept in a cookie
    expect(page.locator("#submit")).to_have_text("Upload")
    page.click("#lang-ru")
    expect(page.locator("#submit")).to_have_text("Загрузить")

    page.set_viewport_size({"width": 390, "height": 844})
    expect(page.locator("#submit")).to_be_visible()
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= 390, f"the page is {scroll} px wide on a phone"
    shot(page, "3-phone-ru")

    page.once("dialog", lambda dialog: dialog.accept())
    first.locator(".job-delete").click()
    expect(cards).to_have_count(1)


def test_a_file_without_audio_fails_with_a_clear_reason(
    url: str, russian: BrowserContext, fake: FakeStages, testdata: Path, tmp_path: Path
) -> None:
    page = russian.new_page()
    page.goto(url)
    # checked in the browser first: a text file never leaves it
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video")
    page.set_input_files("#file", notes)
    page.click("#submit")
    expect(page.locator("#upload-message")).to_have_text("notes.txt: это не видео- и не аудиофайл")
    shot(page, "4-not-media-ru")

    fake.script.fail["audio"] = (grpc.StatusCode.INVALID_ARGUMENT, "the file has no audio track")
    try:
        page.set_input_files("#file", testdata / "video" / VIDEO)
        page.click("#submit")
        failed = page.locator('article.job[data-state="failed"]')
        expect(failed).to_have_count(1, timeout=20_000)
    finally:
        fake.script.fail.clear()
    expect(failed.locator(".job-status")).to_have_text("Ошибка")
    expect(failed.locator(".job-error")).to_have_text(
        "Ошибка на этапе «извлечение звука»: в файле нет звуковой дорожки"
    )
    shot(page, "5-failed-ru")


def test_another_browser_cannot_see_the_first_ones_jobs(
    url: str, russian: BrowserContext, browser: Browser
) -> None:
    page = russian.new_page()
    page.goto(url)
    expect(page.locator("article.job").first).to_be_visible(timeout=10_000)
    job_id = page.locator("article.job").first.get_attribute("data-job")
    assert job_id and len(job_id) >= 22

    stranger = browser.new_context(locale="en-US")
    try:
        other = stranger.new_page()
        other.goto(url)
        expect(other.locator("#no-jobs")).to_have_text("Nothing uploaded yet.")
        other.wait_for_timeout(2000)  # a few polls
        expect(other.locator("article.job")).to_have_count(0)
        status = other.evaluate(f"fetch('/api/v1/jobs/{job_id}').then(r => r.status)")
        assert status == 404
        download = other.evaluate(f"fetch('/api/v1/jobs/{job_id}/files/konspekt.docx').then(r => r.status)")
        assert download == 404
        shot(other, "6-stranger-en")
        cookies = {c["name"]: c for c in stranger.cookies()}
        owner = cookies["konspekt_owner"]
        assert owner["httpOnly"] and owner["sameSite"] == "Lax"
        assert re.fullmatch(r"[\w-]+\.[\w-]+", owner["value"])
    finally:
        stranger.close()
