"""FfmpegTool on the real testdata with the real ffmpeg: happy uploads, broken ones, limits."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from konspekt.errors import Cancelled, InvalidInput
from konspekt_audio.engine import FfmpegTool
from tests.audio.wavs import read_wav

#: testdata/video and the durations MANIFEST.md gives them.
VIDEOS = {
    "jfk_en_11s.mp4": 11.0,
    "lecture_en_60s.webm": 60.0,
    "call_ru_51s.mkv": 50.9,
    "short_ru_6s.mov": 6.4,
    "news_en_169s.mp4": 169.2,
    "Совещание отдела 1.mp4": 11.0,
}

#: bad/ files the stage must accept: (file, duration, has_video, container starts with).
ACCEPTED_BAD = [
    ("silence_20s.mp4", 20.0, True, "mov,mp4"),
    ("tones_only_20s.mp4", 20.0, True, "mov,mp4"),
    ("audio_only_jfk.mp4", 11.0, False, "mov,mp4"),
    ("webm_named.mp4", 60.0, True, "matroska,webm"),  # the content decides, not the extension
    ("tiny_0_5s.mp4", 0.5, True, "mov,mp4"),
]

#: bad/ files the stage must refuse, with the message people see.
REJECTED_BAD = [
    ("empty.mp4", "the file is empty"),
    ("text_renamed.mp4", "this is not a video or audio file that can be read (moov atom not found"),
    ("truncated_30pct.mp4", "this is not a video or audio file that can be read (moov atom not found"),
    ("no_audio_10s.mp4", "the file has no audio track"),
]


def test_every_video_in_testdata_is_covered(testdata: Path) -> None:
    assert {p.name for p in (testdata / "video").iterdir()} == set(VIDEOS)
    covered = {name for name, *_ in ACCEPTED_BAD} | {name for name, _ in REJECTED_BAD}
    assert {p.name for p in (testdata / "bad").iterdir()} == covered | {"truncated_faststart_30pct.mp4"}


@pytest.mark.parametrize(("name", "duration"), VIDEOS.items(), ids=list(VIDEOS))
def test_videos_extract_to_16k_mono(
    tool: FfmpegTool, testdata: Path, tmp_path: Path, name: str, duration: float
) -> None:
    source = testdata / "video" / name
    fractions: list[float] = []
    out = tool.extract(source, tmp_path / "out.wav", fractions.append)
    wav = read_wav(tmp_path / "out.wav")
    assert out.audio_duration == pytest.approx(duration, abs=0.1)
    assert wav.duration == pytest.approx(out.audio_duration)
    assert out.audio_bytes == (tmp_path / "out.wav").stat().st_size
    assert out.media.duration == pytest.approx(duration, abs=0.1)
    assert out.media.has_audio and out.media.has_video
    assert out.media.size_bytes == source.stat().st_size
    assert out.media.audio_codec and out.media.video_codec
    assert out.media.audio_sample_rate in {8000, 44100, 48000} and out.media.audio_channels in {1, 2}
    assert out.warnings == ()
    assert fractions and fractions[-1] == 1.0 and fractions == sorted(fractions)


@pytest.mark.parametrize(("name", "duration", "has_video", "container"), ACCEPTED_BAD)
def test_edge_cases_are_accepted(
    tool: FfmpegTool,
    testdata: Path,
    tmp_path: Path,
    name: str,
    duration: float,
    has_video: bool,
    container: str,
) -> None:
    out = tool.extract(testdata / "bad" / name, tmp_path / "out.wav")
    assert read_wav(tmp_path / "out.wav").duration == pytest.approx(duration, abs=0.1)
    assert out.media.has_video is has_video
    assert out.media.container.startswith(container)
    assert out.warnings == ()


@pytest.mark.parametrize(("name", "message"), REJECTED_BAD, ids=[n for n, _ in REJECTED_BAD])
def test_broken_files_are_refused_clearly(
    tool: FfmpegTool, testdata: Path, tmp_path: Path, name: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as probe_err:
        tool.probe(testdata / "bad" / name)
    assert probe_err.value.message.startswith(message)
    with pytest.raises(InvalidInput) as extract_err:
        tool.extract(testdata / "bad" / name, tmp_path / "out.wav")
    assert extract_err.value.message == probe_err.value.message
    assert str(testdata) not in extract_err.value.message
    assert list(tmp_path.iterdir()) == []


def test_truncated_file_keeps_the_part_that_decodes_with_a_warning(
    tool: FfmpegTool, testdata: Path, tmp_path: Path
) -> None:
    out = tool.extract(testdata / "bad" / "truncated_faststart_30pct.mp4", tmp_path / "out.wav")
    assert out.media.duration == pytest.approx(11.0)
    assert 2.0 < out.audio_duration < 4.0  # ≈ 3 s, never the 11 s the container claims
    assert read_wav(tmp_path / "out.wav").duration == pytest.approx(out.audio_duration)
    assert len(out.warnings) == 1
    assert out.warnings[0].startswith("the file seems truncated: only 2.")
    assert "of the 11.0 s it claims could be decoded" in out.warnings[0]


def test_longer_than_the_limit_is_refused_naming_both(testdata: Path, tmp_path: Path) -> None:
    short_limit = FfmpegTool(max_duration_s=10)
    with pytest.raises(InvalidInput) as err:
        short_limit.extract(testdata / "video" / "jfk_en_11s.mp4", tmp_path / "out.wav")
    assert err.value.message == "the recording is 00:11 (11 s) long, over the limit of 00:10 (10 s)"
    assert list(tmp_path.iterdir()) == []
    assert FfmpegTool(max_duration_s=12).probe(testdata / "video" / "jfk_en_11s.mp4").duration == 11.0


def test_cancel_kills_ffmpeg_mid_decode_and_removes_the_wav(tool: FfmpegTool, tmp_path: Path) -> None:
    """Cancelling stops a long decode at once instead of letting it run to the end."""
    source = tmp_path / "hour.mkv"  # an hour of silence, ~1 MB: seconds of ffmpeg work
    subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono"),
            *("-t", "3600", "-c:a", "flac", str(source)),
        ],
        check=True,
        timeout=60,
    )
    cancel = threading.Event()
    fractions: list[float] = []

    def progress(fraction: float) -> None:
        fractions.append(fraction)
        if fraction > 0.01:
            cancel.set()

    started = time.monotonic()
    with pytest.raises(Cancelled):
        tool.extract(source, tmp_path / "out.wav", progress, cancel=cancel)
    assert time.monotonic() - started < 10
    assert fractions and fractions[-1] < 0.5  # it really was decoding, and stopped early
    assert not (tmp_path / "out.wav").exists()


def test_urls_are_never_inputs(tool: FfmpegTool, tmp_path: Path) -> None:
    """The engine takes local files only: the servicer copies an upload before ffmpeg runs."""
    for url in ("http://127.0.0.1:9/up.mp4", "https://example.invalid/a.mp4", "file:///etc/passwd"):
        with pytest.raises(ValueError, match="local files only"):
            tool.probe(url)
        with pytest.raises(ValueError, match="local files only"):
            tool.extract(url, tmp_path / "out.wav")
    assert list(tmp_path.iterdir()) == []
