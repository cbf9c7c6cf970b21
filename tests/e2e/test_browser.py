"""The page in headless Chromium against the whole real stack (real stages, default models):
two videos uploaded at once from a Russian browser, followed live to done, every file
downloaded through the page's links; the DOCX opens and the transcripts say what was said.
Screenshots: test-artifacts/e2e-browser/."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import docx
import pytest

from konspekt_devstack import Stack
from tests.browser.chromium import ARGS, ARTIFACTS, CHROMIUM, require_chromium
from tests.e2e.test_stack import normalize

require_chromium()

from playwright.sync_api import expect, sync_playwright  # noqa: E402

pytestmark = pytest.mark.slow

SHOTS = ARTIFACTS / "e2e-browser"
ENGLISH, RUSSIAN = "jfk_en_11s.mp4", "short_ru_6s.mov"
#: the page's download links, by the data-file of each
FILES = ("konspekt.docx", "konspekt.txt", "transcript.txt", "transcript.srt", "transcript.vtt")


def test_two_real_videos_in_a_russian_browser(stack: Stack, testdata: Path, tmp_path: Path) -> None:
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            context = browser.new_context(locale="ru-RU", accept_downloads=True)
            page = context.new_page()
            page.goto(stack.url)
            expect(page.locator("h2").first).to_have_text("Новые записи")
            page.set_input_files("#file", [testdata / "video" / ENGLISH, testdata / "video" / RUSSIAN])
            page.click("#submit")

            cards = page.locator("article.job")
            expect(cards).to_have_count(2, timeout=60_000)
            # followed live: some card shows a running stage before both are done
            running = page.locator(
                'article.job[data-state="extracting_audio"], article.job[data-state="transcribing"], '
                'article.job[data-state="summarizing"], article.job[data-state="rendering"]'
            )
            expect(running.first).to_be_visible(timeout=60_000)
            page.screenshot(path=SHOTS / "1-running-ru.png", full_page=True)
            done = page.locator('article.job[data-state="done"]')
            expect(done).to_have_count(2, timeout=600_000)
            page.screenshot(path=SHOTS / "2-done-ru.png", full_page=True)

            saved: dict[str, dict[str, Path]] = {}
            for video in (ENGLISH, RUSSIAN):
                card = page.locator(f'article.job:has-text("{video}")')
                expect(card.locator(".job-status")).to_have_text("Завершено!")
                expect(card.locator(".konspekt-summary")).not_to_be_empty()
                saved[video] = {}
                for name in FILES:
                    with page.expect_download() as info:
                        card.locator(f'a[data-file="{name}"]').click()
                    download = info.value
                    assert download.suggested_filename.startswith(Path(video).stem), (
                        download.suggested_filename
                    )
                    target = tmp_path / video / name
                    target.parent.mkdir(exist_ok=True)
                    download.save_as(target)
                    saved[video][name] = target
            context.close()
        finally:
            browser.close()

    english = saved[ENGLISH]
    assert "ask not what your country can do for you" in normalize(english["transcript.txt"].read_text())
    assert re.search(r"00:00:\d\d,\d{3} --> 00:00:\d\d,\d{3}", english["transcript.srt"].read_text())
    assert english["transcript.vtt"].read_text().startswith("WEBVTT")
    document = docx.Document(str(english["konspekt.docx"]))
    text = "\n".join(p.text for p in document.paragraphs)
    assert ENGLISH in text or "jfk_en_11s" in text  # the source is named in the document
    assert len(text.split()) >= 10, text
    assert english["konspekt.txt"].read_text().strip()

    russian = saved[RUSSIAN]
    assert "бригада" in normalize(russian["transcript.txt"].read_text())
    konspekt_txt = russian["konspekt.txt"].read_text()
    assert re.search(r"[а-яё]{4,}", konspekt_txt.lower()), konspekt_txt  # written in Russian
    docx.Document(str(russian["konspekt.docx"]))  # opens
