"""Bad input through the whole service (SeaweedFS, the four real stages with whisper base and
the 0.5B GGUF, the gateway process): every file of testdata/bad, odd names and content types, a
3-hour video, too large, cut off, many at once. Each gets a clear outcome in English and Russian,
nothing crashes, a job keeps exactly the objects its record claims (DELETE removes them all),
and no stage leaves temporary files.

Already covered elsewhere, so not repeated here: the audio stage on every bad file
(tests/audio/test_engine.py), ASR on silence and tones (tests/asr), upload limits and
rejections in process (tests/gateway/test_uploads.py), a client cut off and a 200 MB upload's
memory (tests/gateway/test_process.py), the type check (tests/gateway/test_owners_i18n_events.py).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import re
import select
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docx
import httpx
import pytest

from konspekt.storage import ObjectStore
from konspekt_devstack import ROOT, Stack
from konspekt_gateway.jobs import DOWNLOADS
from tests.e2e.test_stack import normalize
from tests.reliability.conftest import assert_keeps_only_what_it_claims, job_keys
from tests.reliability.stack import TERMINAL, stack_store, start_stack, temp_files, wait_for

pytestmark = pytest.mark.slow

MB = 1024 * 1024
LIMIT_MB = 64
#: Uploads one client sends at once in the odd-names test.
ODD_NAME_THREADS = 4
RU = {"Accept-Language": "ru-RU,ru;q=0.9"}
REPORTS = ROOT / "test-artifacts" / "reliability"
#: What Whisper likes to invent on silence and music.
INVENTED = ("продолжение следует", "thank you for watching", "субтитры", "спасибо за просмотр")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    run = start_stack(
        tmp_path_factory.mktemp("bad"),
        KONSPEKT_GATEWAY_MAX_UPLOAD_MB=str(LIMIT_MB),
        # one client sends the odd names 4 at a time (the per-owner limits are not tested here)
        KONSPEKT_GATEWAY_OWNER_MAX_UPLOADS=str(ODD_NAME_THREADS),
    )
    yield run
    run.stop()


@pytest.fixture(autouse=True)
def cleans_up(stack: Stack, temp_at_start: set[str]) -> Iterator[None]:
    yield
    assert temp_files(stack) == temp_at_start  # every call cleaned up after itself


def post(client: httpx.Client, data: bytes, name: str, **headers: str) -> httpx.Response:
    return client.post("/api/v1/jobs", params={"filename": name}, content=data, headers=headers)


def both(client: httpx.Client, job_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The job in English and in Russian."""
    path = f"/api/v1/jobs/{job_id}"
    return client.get(path).json(), client.get(path, headers=RU).json()


def texts(client: httpx.Client, job_id: str) -> str:
    """Everything the job produced that a person reads, lower case."""
    transcript = client.get(f"/api/v1/jobs/{job_id}/files/transcript.txt").text
    konspekt = client.get(f"/api/v1/jobs/{job_id}/files/konspekt.txt").text
    return normalize(transcript + "\n" + konspekt)


def delete_and_check(stack: Stack, client: httpx.Client, job_id: str) -> None:
    assert client.delete(f"/api/v1/jobs/{job_id}").status_code == 204
    assert job_keys(stack_store(stack), job_id) == set()


# -- every file of testdata/bad -----------------------------------------------------------------
UNREADABLE = (
    "this is not a video or audio file that can be read (",
    "это не видео- и не аудиофайл, который можно прочитать (",
)
#: How each message starts (ffprobe's own words follow in brackets).
FAILS = {
    "text_renamed.mp4": UNREADABLE,
    "truncated_30pct.mp4": UNREADABLE,
    "no_audio_10s.mp4": ("the file has no audio track", "в файле нет звуковой дорожки"),
}


@pytest.mark.parametrize("name", list(FAILS))
def test_unreadable_files_fail_at_the_audio_stage_with_the_reason(
    stack: Stack, client: httpx.Client, testdata: Path, name: str
) -> None:
    resp = post(client, (testdata / "bad" / name).read_bytes(), name)
    assert resp.status_code == 201, resp.text
    job = wait_for(client, resp.json()["id"], TERMINAL, timeout=120)
    en, ru = both(client, job["id"])
    assert en["state"] == "failed" and en["failed_stage"] == "audio"
    assert en["error_text"].startswith(FAILS[name][0]), en["error_text"]
    assert ru["error_text"].startswith(FAILS[name][1]), ru["error_text"]
    assert en["error"] == en["error_text"] and ru["error"] == en["error"]
    assert (en["status_text"], ru["status_text"]) == ("Failed", "Ошибка")
    assert ru["failed_stage_text"] == "извлечение звука"
    assert en["attempts"] == {"probe": 1}  # a bad file is not retried
    # a failed job keeps its record and its upload (until deleted or expired), nothing else
    assert set(assert_keeps_only_what_it_claims(stack_store(stack), job["id"])) == {"upload"}
    assert client.get(f"/api/v1/jobs/{job['id']}/files/transcript.txt").status_code == 409
    delete_and_check(stack, client, job["id"])


def test_an_empty_file_is_refused_at_upload_in_both_languages(
    stack: Stack, client: httpx.Client, testdata: Path
) -> None:
    before = job_ids(stack_store(stack))
    en = post(client, (testdata / "bad" / "empty.mp4").read_bytes(), "empty.mp4")
    ru = post(client, b"", "empty.mp4", **RU)
    assert (en.status_code, ru.status_code) == (400, 400)
    assert en.json()["error"] == {"code": "empty_file", "message": "the file is empty"}
    assert ru.json()["error"] == {"code": "empty_file", "message": "файл пустой"}
    assert job_ids(stack_store(stack)) == before


@pytest.mark.parametrize("name", ["silence_20s.mp4", "tones_only_20s.mp4"])
def test_silence_and_tones_give_no_invented_text(
    stack: Stack, client: httpx.Client, testdata: Path, name: str
) -> None:
    resp = post(client, (testdata / "bad" / name).read_bytes(), name)
    job = wait_for(client, resp.json()["id"], TERMINAL, timeout=180)
    en, ru = both(client, job["id"])
    assert en["state"] == "done", en["error"]
    assert en["no_speech"] is True
    assert en["warnings"] == ["no speech was found in the recording"]
    assert ru["warnings_text"] == ["в записи не найдено речи"]
    transcript = client.get(f"/api/v1/jobs/{job['id']}/files/transcript.json").json()
    assert transcript["segments"] == []
    produced = texts(client, job["id"])
    assert not [phrase for phrase in INVENTED if phrase in produced], produced
    konspekt = client.get(f"/api/v1/jobs/{job['id']}/konspekt").json()
    assert konspekt["key_points"] == konspekt["decisions"] == konspekt["action_items"] == []
    files = assert_keeps_only_what_it_claims(stack_store(stack), job["id"])
    assert set(files) == {"upload", "audio", "transcript", "konspekt", *DOWNLOADS}
    delete_and_check(stack, client, job["id"])


def test_a_truncated_video_keeps_what_decodes_and_says_so(
    stack: Stack, client: httpx.Client, testdata: Path
) -> None:
    name = "truncated_faststart_30pct.mp4"
    resp = post(client, (testdata / "bad" / name).read_bytes(), name)
    job = wait_for(client, resp.json()["id"], TERMINAL, timeout=300)
    en, ru = both(client, job["id"])
    assert en["state"] == "done", en["error"]
    # (the summarizer may add warnings about items it dropped as unsupported by the transcript)
    assert en["warnings"][0].startswith("the file seems truncated: only ")
    assert ru["warnings_text"][0].startswith("файл, похоже, обрезан: удалось прочитать только ")
    assert en["audio_duration"] < 4 and en["media"]["duration"] == pytest.approx(11.0)
    assert "fellow americans" in texts(client, job["id"])
    delete_and_check(stack, client, job["id"])


def test_half_a_second_is_processed_without_known_hallucinations(
    stack: Stack, client: httpx.Client, testdata: Path
) -> None:
    """0.5 s (the quiet start of the JFK clip): Whisper may hear a word ("And..."); nothing it is
    known to invent on silence, and no konspekt invented around it: too few words are quoted,
    not given to the model (which wrote a whole meeting about a login system for "And...")."""
    resp = post(client, (testdata / "bad" / "tiny_0_5s.mp4").read_bytes(), "tiny_0_5s.mp4")
    job = wait_for(client, resp.json()["id"], TERMINAL, timeout=300)
    assert job["state"] == "done", job["error"]
    transcript = client.get(f"/api/v1/jobs/{job['id']}/files/transcript.json").json()
    assert len(" ".join(s["text"] for s in transcript["segments"]).split()) <= 2
    produced = texts(client, job["id"])
    assert not [phrase for phrase in INVENTED if phrase in produced], produced
    konspekt = client.get(f"/api/v1/jobs/{job['id']}/konspekt").json()
    assert konspekt["key_points"] == konspekt["decisions"] == konspekt["action_items"] == []
    said = " ".join(s["text"].strip() for s in transcript["segments"])
    assert konspekt["title"] == "Too little speech to summarize"
    assert konspekt["summary"] == f"All that was said: “{said}”"
    ru = client.get(f"/api/v1/jobs/{job['id']}", headers=RU).json()
    assert any("слишком мало для конспекта" in w for w in ru["warnings_text"]), ru["warnings_text"]
    delete_and_check(stack, client, job["id"])


def test_an_audio_only_mp4_is_transcribed(stack: Stack, client: httpx.Client, testdata: Path) -> None:
    resp = post(client, (testdata / "bad" / "audio_only_jfk.mp4").read_bytes(), "audio_only_jfk.mp4")
    job = wait_for(client, resp.json()["id"], TERMINAL, timeout=300)
    assert job["state"] == "done", job["error"]
    assert job["media"]["has_video"] is False
    assert "ask not what your country can do for you" in texts(client, job["id"])
    delete_and_check(stack, client, job["id"])


# -- names and content types ----------------------------------------------------------------------
NAMES = {
    "Совещание отдела № 5 (итоги).mp4": "Совещание отдела № 5 (итоги).mp4",
    "\"quoted\" 'name'; x=1.mp4": "\"quoted\" 'name'; x=1.mp4",
    "../../etc/passwd.mp4": "passwd.mp4",
    "..\\..\\windows\\system.ini.mp4": "system.ini.mp4",
    "line\r\nbreak\u202e.mp4": "linebreak.mp4",
    "   .hidden  name  .mp4  ": "hidden name .mp4",
    "Ж" * 300 + ".mp4": "Ж" * 255,
}
#: Only in the query string: a form's file name cannot carry these (clients escape them as
#: %00, which is a name like any other once it arrives).
RAW_ONLY = {"a\x00b\x1b[31mc\x7f.mp4": "ab[31mc.mp4"}


def test_odd_names_survive_into_the_documents_and_download_headers(
    stack: Stack, client: httpx.Client, testdata: Path
) -> None:
    """Each name once as the query parameter of a raw upload and once as a multipart file name,
    on a 20 s silent video (the whole pipeline runs, no LLM call)."""
    video = (testdata / "bad" / "silence_20s.mp4").read_bytes()

    def raw(name: str) -> httpx.Response:
        return post(client, video, name, **{"Content-Type": "video/mp4"})

    def form(name: str) -> httpx.Response:
        return client.post("/api/v1/jobs", files={"file": (name, video, "video/mp4")})

    expected = {**NAMES, **RAW_ONLY}
    with ThreadPoolExecutor(ODD_NAME_THREADS) as pool:
        sent = [(name, pool.submit(way, name)) for name in NAMES for way in (raw, form)]
        sent += [(name, pool.submit(raw, name)) for name in RAW_ONLY]
        created = [(name, future.result()) for name, future in sent]
    for name, resp in created:
        assert resp.status_code == 201, (name, resp.text)
        assert resp.json()["filename"] == expected[name], name
    for name, resp in created:
        job = wait_for(client, resp.json()["id"], TERMINAL, timeout=300)
        assert job["state"] == "done", (name, job["error"])
        download = client.get(f"/api/v1/jobs/{job['id']}/files/konspekt.docx")
        assert download.status_code == 200
        disposition = download.headers["content-disposition"]
        assert disposition.isascii() and "\r" not in disposition and "\n" not in disposition
        stem = job["filename"].rpartition(".")[0] or job["filename"]
        assert urllib.parse.quote(f"{stem} — konspekt.docx", safe="") in disposition
        document = docx.Document(io.BytesIO(download.content))  # a valid DOCX
        body = "\n".join(p.text for p in document.paragraphs)
        assert "\x00" not in body and "\x1b" not in body
        delete_and_check(stack, client, job["id"])


def test_wrong_or_missing_content_types(stack: Stack, client: httpx.Client, testdata: Path) -> None:
    """The name or the content decides, not a wrong header: a video sent as text/plain or with no
    type and no name is processed; text sent as video/mp4 fails with the reason; an image
    named as one is refused at once (415) in both languages."""
    video = (testdata / "bad" / "silence_20s.mp4").read_bytes()
    as_text = post(client, video, "call.mp4", **{"Content-Type": "text/plain"})
    untyped = client.post("/api/v1/jobs", content=video, headers={"Content-Type": ""})
    lying = post(
        client, (testdata / "bad" / "text_renamed.mp4").read_bytes(), "x.mp4", **{"Content-Type": "video/mp4"}
    )
    image = post(client, b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "photo.png", **{"Content-Type": "image/png"})
    image_ru = post(client, b"\x89PNG\r\n\x1a\n", "photo.png", **{"Content-Type": "image/png"}, **RU)
    assert (as_text.status_code, untyped.status_code, lying.status_code) == (201, 201, 201)
    assert untyped.json()["filename"] == "upload"
    assert (image.status_code, image_ru.status_code) == (415, 415)
    assert image.json()["error"]["message"] == "'photo.png' is not a video or audio file"
    assert image_ru.json()["error"]["message"] == "«photo.png» — не видео- и не аудиофайл"
    for resp, state in ((as_text, "done"), (untyped, "done"), (lying, "failed")):
        job = wait_for(client, resp.json()["id"], TERMINAL, timeout=300)
        assert job["state"] == state, job["error"]
        delete_and_check(stack, client, job["id"])


# -- size, cut-off uploads, many at once -------------------------------------------------------------
def raw_request(stack: Stack, head: str, body_chunks: Iterator[bytes]) -> tuple[bytes, int]:
    """Send a request over a plain socket, body chunk by chunk, and stop as soon as the server
    answers, closes, or stops reading. Returns the answer (empty if the connection was reset
    first) and how many body bytes went out."""
    sent = 0
    answer = b""
    with socket.create_connection(("127.0.0.1", stack.ports["gateway"]), timeout=10) as sock:
        sock.sendall(head.encode("latin-1"))
        for chunk in itertools.chain([b""], body_chunks):
            readable, _, _ = select.select([sock], [], [], 0.5 if not sent else 0)
            if readable:
                break
            try:
                sock.sendall(chunk)
            except (ConnectionError, TimeoutError):
                break
            sent += len(chunk)
        with contextlib.suppress(ConnectionError, TimeoutError):
            while data := sock.recv(65536):
                answer += data
                head_end = answer.find(b"\r\n\r\n")
                length = (
                    re.search(rb"(?i)content-length: *(\d+)", answer[:head_end]) if head_end > 0 else None
                )
                if length and len(answer) >= head_end + 4 + int(length.group(1)):
                    break
    return answer, sent


def job_ids(store: ObjectStore) -> set[str]:
    """The job ids that have objects (other tests' jobs may still be writing theirs)."""
    return {key.split("/")[1] for key in store.list_keys("jobs/")}


def ones(total: int, size: int = MB) -> Iterator[bytes]:
    block = b"\x01" * size
    for _ in range(total // size):
        yield block


def test_over_the_limit_is_413_before_the_body_is_read(stack: Stack, client: httpx.Client) -> None:
    """Declared 1 GB (limit 64 MB): 413, in Russian if asked, before any of the body is sent.
    The same without a declared length (chunked) is cut at the limit: the client gets its 413,
    or a reset if it was still sending, after little more than 64 MB. Nothing is stored."""
    store = stack_store(stack)
    before = job_ids(store)
    head = (
        "POST /api/v1/jobs?filename=big.mp4 HTTP/1.1\r\nHost: x\r\nAccept-Language: ru\r\n"
        f"Content-Type: video/mp4\r\nContent-Length: {1024 * MB}\r\n\r\n"
    )
    answer, sent = raw_request(stack, head, ones(1024 * MB))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert "файл больше допустимых 64 МБ".encode() in answer
    assert sent == 0

    def chunked() -> Iterator[bytes]:
        for block in ones(1024 * MB):
            yield b"%x\r\n%s\r\n" % (len(block), block)

    head = "POST /api/v1/jobs?filename=big.mp4 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    answer, sent = raw_request(stack, head, chunked())
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "too_large.json").write_text(
        json.dumps({"limit_mb": LIMIT_MB, "chunked_sent_mb": sent / MB}) + "\n"
    )
    assert answer == b"" or answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert 64 * MB < sent < 64 * MB + 40 * MB, f"{sent / MB:.0f} MB were sent"
    for _ in range(100):  # the partial upload is removed as the request ends
        if job_ids(store) == before and not store.stale_uploads("jobs/"):
            break
        time.sleep(0.1)
    assert job_ids(store) == before
    assert store.stale_uploads("jobs/") == []


def test_an_upload_cut_off_mid_stream_leaves_no_object_and_no_parts(
    stack: Stack, client: httpx.Client
) -> None:
    """40 MB promised, 20 MB sent (past the first 16 MB multipart part), then the client is gone."""
    store = stack_store(stack)
    before = job_ids(store)
    jobs_before = client.get("/api/v1/jobs").json()["jobs"]
    head = (
        "POST /api/v1/jobs?filename=cut.mp4 HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: video/mp4\r\nContent-Length: {40 * MB}\r\n\r\n"
    )
    _answer, sent = raw_request(stack, head, ones(20 * MB))
    assert sent == 20 * MB
    for _ in range(100):  # the gateway notices and cleans up
        if not store.stale_uploads("jobs/") and job_ids(store) == before:
            break
        time.sleep(0.1)
    assert store.stale_uploads("jobs/") == []
    assert job_ids(store) == before
    assert client.get("/api/v1/jobs").json()["jobs"] == jobs_before
    assert client.get("/readyz").status_code == 200


def test_many_tiny_uploads_at_once_are_all_taken_and_processed(
    stack: Stack, client: httpx.Client, testdata: Path
) -> None:
    """30 clients (30 owners, each its own token) at once, 7 times the upload slots: 24 send 89
    bytes of text named .mp4, 6 a 12 KB silent video. All are accepted (the others wait for a
    slot); the text fails with its reason, the videos complete."""
    text = (testdata / "bad" / "text_renamed.mp4").read_bytes()
    silence = (testdata / "bad" / "silence_20s.mp4").read_bytes()
    tokens = [{"Authorization": f"Bearer many-tiny-{index:02d}-0123456789"} for index in range(30)]

    def one(index: int) -> httpx.Response:
        with httpx.Client(base_url=stack.url, timeout=120, headers=tokens[index]) as own:
            return post(own, silence if index % 5 == 0 else text, f"tiny {index}.mp4")

    with ThreadPoolExecutor(30) as pool:
        responses = list(pool.map(one, range(30)))
    assert [r.status_code for r in responses] == [201] * 30
    for index, resp in enumerate(responses):
        finished = wait_owned(stack, resp.json()["id"], tokens[index])
        if index % 5 == 0:
            assert finished["state"] == "done", finished["error"]
        else:
            assert finished["state"] == "failed"
            assert finished["error"].startswith("this is not a video or audio file that can be read (")
        assert_keeps_only_what_it_claims(stack_store(stack), finished["id"])
    assert client.get("/readyz").status_code == 200


def wait_owned(stack: Stack, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    with httpx.Client(base_url=stack.url, timeout=60, headers=headers) as owner:
        return wait_for(owner, job_id, TERMINAL, timeout=300)


# -- a 3-hour video -------------------------------------------------------------------------------
def test_a_three_hour_video_is_accepted_and_processed(
    stack: Stack, client: httpx.Client, tmp_path: Path
) -> None:
    """3 h of a black 16x16 picture and silence (3 MB, made here with ffmpeg): under the default
    4 h limit it is processed to the end (no speech), in bounded time and memory."""
    video = tmp_path / "three_hours.mkv"
    subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-y"),
            *("-f", "lavfi", "-i", "color=c=black:s=16x16:r=1:d=10800"),
            *("-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono"),
            *("-t", "10800", "-c:v", "libx264", "-g", "300", "-c:a", "flac", "-shortest", str(video)),
        ],
        check=True,
        timeout=300,
    )
    resp = post(client, video.read_bytes(), "Лекция на три часа.mkv")
    assert resp.status_code == 201, resp.text
    job = wait_for(client, resp.json()["id"], TERMINAL, timeout=1200)
    assert job["state"] == "done", job["error"]
    assert job["media"]["duration"] == pytest.approx(10800, abs=1)
    assert job["audio_duration"] == pytest.approx(10800, abs=1)
    assert job["no_speech"] is True
    peaks = {name: peak_rss_mb(stack.procs[name].popen.pid) for name in ("gateway", "audio", "asr")}
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "three_hours.json").write_text(
        json.dumps(
            {
                "upload_mb": round(video.stat().st_size / MB, 1),
                "stage_seconds": job["stage_seconds"],
                "peak_rss_mb_since_start": peaks,
            },
            indent=1,
        )
        + "\n"
    )
    assert peaks["gateway"] < 500
    delete_and_check(stack, client, job["id"])


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise AssertionError("no VmHWM")
