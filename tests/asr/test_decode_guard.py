"""Issue 16: ASR's own decode (inline clips, stored non-WAV audio) cannot be fed a playlist."""

from __future__ import annotations

from pathlib import Path

import pytest
from faster_whisper import decode_audio

from konspekt import media_guard
from konspekt.errors import InvalidInput
from konspekt_asr.engine import SAMPLE_RATE, load_audio
from tests.audio.test_media_security import LOCAL_MEDIA, Listener, playlists


def test_plain_pyav_would_read_a_local_file_through_a_playlist(testdata: Path, tmp_path: Path) -> None:
    """Why the guard exists: what faster-whisper's decode_audio does with an .m3u8 naming a file."""
    playlist = tmp_path / "clip.m3u8"
    playlist.write_bytes(playlists("http://127.0.0.1:9", testdata / LOCAL_MEDIA)["hls-local"])
    assert len(decode_audio(str(playlist), SAMPLE_RATE)) > SAMPLE_RATE  # the other file's audio


def test_playlists_are_refused_as_bytes_and_as_files(
    listener: Listener, testdata: Path, tmp_path: Path
) -> None:
    for name, data in playlists(listener.url, testdata / LOCAL_MEDIA).items():
        for suffix in (".m3u8", ".mp4", ""):
            path = tmp_path / f"{name}{suffix}"
            path.write_bytes(data)
            for source in (data, path):
                with pytest.raises(InvalidInput):
                    load_audio(source)
    assert listener.seen == []


def test_the_demuxer_list_holds_when_the_first_bytes_are_not_recognised(
    listener: Listener, testdata: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(media_guard, "sniff", lambda head: None)
    for name, data in playlists(listener.url, testdata / LOCAL_MEDIA).items():
        path = tmp_path / f"{name}.m3u8"
        path.write_bytes(data)
        for source in (data, path):
            with pytest.raises(InvalidInput, match="cannot decode the audio"):
                load_audio(source)
    assert listener.seen == []


def test_media_still_decodes(testdata: Path) -> None:
    for name, seconds in (("video/short_ru_6s.mov", 6.4), ("video/lecture_en_60s.webm", 60.0)):
        path = testdata / name
        for source in (path, path.read_bytes()):
            audio = load_audio(source)
            assert audio.shape[0] / SAMPLE_RATE == pytest.approx(seconds, abs=0.1)
