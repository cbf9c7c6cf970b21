"""Issue 16: the audio stage reads only the uploaded bytes, and a file cannot lie its way to hours
of audio. Real ffmpeg, a real gRPC server, a real S3 store, and a local HTTP listener that must
receive nothing."""

from __future__ import annotations

import http.server
import struct
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from konspekt import media_guard
from konspekt.errors import InvalidInput
from konspekt.server import StageServer
from konspekt.storage import ObjectStore
from konspekt.v1 import audio_pb2, audio_pb2_grpc, common_pb2
from konspekt_audio.engine import FfmpegTool
from konspekt_audio.server import build_server
from konspekt_audio.settings import AudioSettings
from konspekt_gateway import i18n
from tests.audio.wavs import read_wav

REFUSED = "playlists and files that point at other files or URLs are not accepted"
LOCAL_MEDIA = "video/jfk_en_11s.mp4"


class Listener:
    """An HTTP server on 127.0.0.1 that records every connection made to it."""

    def __init__(self) -> None:
        seen = self.seen = []  # type: list[str]

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(f"GET {self.path}")
                self.send_response(404)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            def verify_request(self, request: object, client_address: object) -> bool:
                seen.append(f"connection from {client_address}")
                return True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def playlists(url: str, local: Path) -> dict[str, bytes]:
    """Files that point ffmpeg at other inputs: ``url`` (the listener) or a local media file."""
    hls = "#EXTM3U\n#EXT-X-TARGETDURATION:11\n#EXTINF:11,\n{}\n#EXT-X-ENDLIST\n"
    return {
        "hls-url": hls.format(f"{url}/seg.mp4?x").encode(),  # the playlist, as reproduced
        "hls-local": hls.format(local).encode(),
        "hls-bom": b"\xef\xbb\xbf  \n" + hls.format(f"{url}/seg.ts").encode(),
        "ffconcat-local": f"ffconcat version 1.0\nfile {local}\n".encode(),
        "ffconcat-url": f"ffconcat version 1.0\nfile '{url}/a.mp4'\n".encode(),
        "concat-local": f"file '{local}'\n".encode(),
        "dash": (
            f'<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011"><BaseURL>{url}/</BaseURL>'
            "</MPD>\n"
        ).encode(),
        "sdp": b"v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 9 RTP/AVP 0\n",
        "pls": f"[playlist]\nFile1={url}/a.mp3\nNumberOfEntries=1\n".encode(),
        "text-url": f"see {url}/a.mp4 for the recording\n".encode(),
    }


# -- the engine --------------------------------------------------------------------------------
def test_every_playlist_is_refused_before_ffmpeg_reads_it(
    tool: FfmpegTool, listener: Listener, testdata: Path, tmp_path: Path
) -> None:
    for name, data in playlists(listener.url, testdata / LOCAL_MEDIA).items():
        source = tmp_path / f"{name}.mp4"
        source.write_bytes(data)
        with pytest.raises(InvalidInput) as err:
            tool.extract(source, tmp_path / "out.wav")
        assert err.value.message.startswith(REFUSED), name
        assert not (tmp_path / "out.wav").exists()
    assert listener.seen == []


@pytest.mark.parametrize("suffix", [".mp4", ".m3u8", ".ffconcat", ""])
def test_ffmpeg_itself_refuses_them_when_the_sniffing_misses(
    tool: FfmpegTool,
    listener: Listener,
    testdata: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    suffix: str,
) -> None:
    """The second wall: with the first bytes not checked, ffprobe's demuxer whitelist refuses
    the playlist before its demuxer opens anything, and names it."""
    monkeypatch.setattr(media_guard, "sniff", lambda head: None)
    detected = {"hls-url": "hls", "hls-local": "hls", "ffconcat-local": "concat", "ffconcat-url": "concat"}
    for name, data in playlists(listener.url, testdata / LOCAL_MEDIA).items():
        if name not in detected:
            continue
        source = tmp_path / f"{name}{suffix}"
        source.write_bytes(data)
        with pytest.raises(InvalidInput) as err:
            tool.probe(source)
        assert err.value.message.startswith(f"{REFUSED} ({detected[name]})"), name
    assert listener.seen == []


def test_formats_off_the_list_are_refused_by_name() -> None:
    for name in ("hls", "applehttp", "concat", "image2", "lavfi", "sdp", "rtsp", "dash"):
        with pytest.raises(InvalidInput, match=REFUSED):
            media_guard.check_format(name)
    with pytest.raises(InvalidInput, match=r"format png_pipe is not accepted"):
        media_guard.check_format("png_pipe")
    for name in ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "mp3", "wav", "ogg", "flac"):
        media_guard.check_format(name)  # no error
    assert media_guard.input_options() == {
        "protocol_whitelist": "file",
        "format_whitelist": media_guard.FORMAT_WHITELIST,
    }
    assert media_guard.input_options(media_guard.NO_PROTOCOLS)["protocol_whitelist"] == "none"  # bytes
    assert not set(media_guard.DEMUXERS) & media_guard.INDIRECT_DEMUXERS


def test_real_media_is_not_mistaken_for_a_playlist(testdata: Path) -> None:
    for path in [*(testdata / "video").iterdir(), *(testdata / "audio").iterdir()]:
        assert media_guard.sniff(path.read_bytes()[: media_guard.HEAD_BYTES]) is None, path.name
    assert media_guard.sniff((testdata / "bad" / "text_renamed.mp4").read_bytes()) is None  # no pointer


# -- the lying file ----------------------------------------------------------------------------
def silent_mkv(path: Path, seconds: int, *, claim: float | None, live: bool = False) -> Path:
    """``seconds`` of 8 kHz FLAC silence in Matroska (~16 KB a minute), its header's Duration
    rewritten to ``claim`` seconds (in place: same 8-byte float), or none at all (``live``)."""
    subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono"),
            *("-t", str(seconds), "-c:a", "flac", "-map_metadata", "-1"),
            *(("-live", "1") if live else ()),
            *("-f", "matroska", str(path)),
        ],
        check=True,
        timeout=120,
    )
    if claim is not None:
        data = bytearray(path.read_bytes())
        at = data.find(b"\x44\x89\x88")  # Segment Info > Duration, an 8-byte float in ms
        assert at > 0
        data[at + 3 : at + 11] = struct.pack(">d", claim * 1000)
        path.write_bytes(bytes(data))
    return path


def test_a_file_claiming_10_s_over_30_minutes_is_capped_and_warned(tool: FfmpegTool, tmp_path: Path) -> None:
    lie = silent_mkv(tmp_path / "lie.mkv", 1800, claim=10.0)
    assert lie.stat().st_size < 600_000
    out = tool.extract(lie, tmp_path / "out.wav")
    assert out.media.duration == pytest.approx(10.0)
    cap = 10.0 * 1.1 + 60  # CLAIM_SLACK x claim + claim_margin_s
    assert out.audio_duration == pytest.approx(cap, abs=0.1)  # not 1800 s (57.6 MB of WAV)
    assert read_wav(tmp_path / "out.wav").duration == pytest.approx(out.audio_duration)
    assert out.warnings == (
        "the file holds more audio than the 10.0 s it claims; only the first "
        f"{out.audio_duration:.1f} s were decoded",
    )


def test_more_audio_than_claimed_under_the_cap_is_warned(tool: FfmpegTool, tmp_path: Path) -> None:
    out = tool.extract(silent_mkv(tmp_path / "a.mkv", 30, claim=10.0), tmp_path / "out.wav")
    assert out.audio_duration == pytest.approx(30.0, abs=0.1)
    assert out.warnings == ("the file holds 30.0 s of audio, more than the 10.0 s it claims",)


def test_no_claim_is_capped_by_the_file_size(tmp_path: Path) -> None:
    """Without a duration in the header, the WAV may be at most max_audio_ratio x the upload."""
    source = silent_mkv(tmp_path / "nodur.mkv", 600, claim=None, live=True)
    strict = FfmpegTool(max_audio_ratio=20)
    assert strict.probe(source).duration == 0.0
    out = strict.extract(source, tmp_path / "out.wav")
    cap = source.stat().st_size * 20 / 32_000
    assert cap < 600 and out.audio_duration == pytest.approx(cap, abs=0.1)
    assert out.audio_bytes <= 20 * source.stat().st_size + 44
    assert out.warnings == (
        "the file holds far more audio than a file of its size can; only the first "
        f"{out.audio_duration:.1f} s were decoded",
    )
    # The default ratio (500) leaves an honest file alone.
    assert FfmpegTool().extract(source, tmp_path / "all.wav").audio_duration == pytest.approx(600, abs=0.1)


def test_the_warnings_have_russian(tool: FfmpegTool) -> None:
    """The stage's notes (as it makes them: media_guard's refusals, the engine's warnings) in
    Russian, from their code and args."""
    from konspekt_audio.engine import MediaInfo, _warnings

    media = MediaInfo(container="mov", duration=10.0, has_audio=True, has_video=False)
    notes = {
        media_guard.refused("hls").message: (
            "плейлисты и файлы со ссылками на другие файлы или адреса не принимаются (hls); "
            "загрузите саму запись"
        ),
        _warnings(media, 71.0, "claim")[0]: (
            "в файле больше звука, чем заявленные 10.0 с; извлечены только первые 71.0 с"
        ),
        _warnings(media, 375.3, "size")[0]: (
            "в файле намного больше звука, чем может быть в файле такого размера; "
            "извлечены только первые 375.3 с"
        ),
        _warnings(media, 30.0, None)[0]: "в файле 30.0 с звука — больше заявленных 10.0 с",
        media_guard.whitelist_refusal(b"[png_pipe @ 0x55d0] Format not on whitelist").message: (  # type: ignore[union-attr]
            "это не видео- и не аудиофайл, который можно прочитать (формат png_pipe не принимается)"
        ),
    }
    for note, ru in notes.items():
        assert i18n.reason(note, "ru") == ru
        assert i18n.reason(note, "en") == note


# -- the deployed stage: inline and stored uploads -----------------------------------------------
@pytest.fixture
def stage(store: ObjectStore, tmp_path: Path) -> Iterator[tuple[StageServer, Path]]:
    server, loader = build_server(AudioSettings(port=0, temp_dir=tmp_path), store)
    server.start().load_and_serve(loader)
    yield server, tmp_path
    server.stop(0)


def test_playlists_are_refused_inline_and_from_the_store(
    stage: tuple[StageServer, Path], store: ObjectStore, listener: Listener, testdata: Path
) -> None:
    server, temp_dir = stage
    prefix = f"test-audio/{uuid.uuid4().hex}/"
    with grpc.insecure_channel(server.address) as channel:
        stub = audio_pb2_grpc.AudioServiceStub(channel)
        for name, data in playlists(listener.url, testdata / LOCAL_MEDIA).items():
            inline = common_pb2.Blob(inline=data)
            ref = common_pb2.Blob(ref=store.put_bytes(prefix + f"{name}/meeting.mp4", data, "video/mp4"))
            for blob in (inline, ref):
                with pytest.raises(grpc.RpcError) as err:
                    list(stub.Extract(audio_pb2.ExtractRequest(input=blob), timeout=30))
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
                assert (err.value.details() or "").startswith(REFUSED), name
                with pytest.raises(grpc.RpcError) as err:
                    stub.Probe(audio_pb2.ProbeRequest(input=blob), timeout=30)
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
    assert listener.seen == []
    assert not any(temp_dir.iterdir())


def test_the_lying_file_from_the_store_is_capped_and_warned(
    stage: tuple[StageServer, Path], store: ObjectStore, tmp_path: Path
) -> None:
    server, _ = stage
    lie = silent_mkv(tmp_path / "lie.mkv", 1800, claim=10.0)
    prefix = f"test-audio/{uuid.uuid4().hex}/"
    upload = store.put_file(prefix + "meeting.mkv", lie)
    output = store.ref(prefix + "audio.wav")
    with grpc.insecure_channel(server.address) as channel:
        events = list(
            audio_pb2_grpc.AudioServiceStub(channel).Extract(
                audio_pb2.ExtractRequest(input=common_pb2.Blob(ref=upload), output=output), timeout=60
            )
        )
    result = events[-1].result
    assert result.media.duration == pytest.approx(10.0)
    assert result.audio_duration == pytest.approx(71.0, abs=0.1)
    assert result.audio_bytes == store.size(output) < 2.5e6  # not 57.6 MB
    assert list(result.warnings) == [
        f"the file holds more audio than the 10.0 s it claims; only the first {result.audio_duration:.1f} s "
        "were decoded"
    ]
