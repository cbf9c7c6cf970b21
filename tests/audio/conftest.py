"""Fixtures the audio tests share."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from konspekt_audio.engine import FfmpegTool
from konspekt_audio.settings import AudioSettings


@pytest.fixture(scope="session")
def tool() -> FfmpegTool:
    """The real ffmpeg/ffprobe, checked the way the server's loader does."""
    return FfmpegTool.from_settings(AudioSettings()).check()


class _Stalling(http.server.BaseHTTPRequestHandler):
    """Sends the headers and half of the body of every path, then stalls like a dead link."""

    body = b""
    release = threading.Event()

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.send_header("Content-Type", "video/mp4")
        self.send_header("ETag", '"0123456789abcdef"')
        self.send_header("Last-Modified", "Mon, 24 Nov 2025 06:02:00 GMT")
        self.end_headers()

    def do_GET(self) -> None:
        self.do_HEAD()
        try:
            self.wfile.write(self.body[: len(self.body) // 2])
            self.wfile.flush()
        except OSError:
            return
        self.release.wait(30)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def stalling_http(testdata: Path) -> Iterator[str]:
    """host:port of an HTTP server whose downloads (news_en_169s.mp4) never finish."""

    class Handler(_Stalling):
        body = (testdata / "video" / "news_en_169s.mp4").read_bytes()
        release = threading.Event()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    Handler.release.set()
    server.shutdown()
    server.server_close()
