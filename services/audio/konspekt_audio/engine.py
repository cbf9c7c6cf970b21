"""Reads media facts and extracts 16 kHz mono WAV with ffmpeg (ffmpeg-python). No gRPC here.

``source`` is a local path or an http(s) URL (a presigned GET on the object store): ffmpeg reads
an upload straight from S3 without the stage copying it first.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import re
import subprocess
import threading
import wave
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import ffmpeg

from konspekt.cli import fmt_time
from konspekt.errors import Cancelled, InvalidInput, Unavailable
from konspekt_audio.settings import AudioSettings

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
CHANNELS = 1
SAMPLE_WIDTH = 2  # bytes: pcm_s16le

#: A decode this much shorter than the container claims (and by more than TRUNCATION_GAP_S)
#: means the file was cut off, e.g. an upload that stopped part-way.
TRUNCATION_RATIO = 0.9
TRUNCATION_GAP_S = 1.0

#: Protocols ffmpeg may open: a playlist inside an upload must not reach other files or hosts.
_LOCAL_PROTOCOLS = "file"
_URL_PROTOCOLS = "http,https,tcp,tls"
_URL_TIMEOUT_US = 30_000_000

Source = str | Path
ProgressFn = Callable[[float], None]


@dataclass(frozen=True)
class MediaInfo:
    """What ffprobe says about a file (the first audio and video streams)."""

    container: str
    duration: float
    has_audio: bool
    has_video: bool
    audio_codec: str = ""
    video_codec: str = ""
    audio_sample_rate: int = 0
    audio_channels: int = 0
    size_bytes: int = 0


@dataclass(frozen=True)
class ExtractOutcome:
    media: MediaInfo
    #: Seconds of audio actually decoded (from the WAV's size, not the container's claim).
    audio_duration: float
    audio_bytes: int
    warnings: tuple[str, ...] = field(default_factory=tuple)


class MediaTool(Protocol):
    def probe(self, source: Source, size: int | None = None) -> MediaInfo:
        """Media facts without decoding; raises InvalidInput for files the stage cannot use.

        ``size`` is the file's size when the caller knows it (a URL cannot be stat'ed).
        """
        ...

    def extract(
        self,
        source: Source,
        dest_wav: Path,
        on_progress: ProgressFn | None = None,
        *,
        size: int | None = None,
        cancel: threading.Event | None = None,
    ) -> ExtractOutcome:
        """Decode the first audio stream to ``dest_wav`` (16 kHz mono s16le WAV).

        ``on_progress`` gets the decoded fraction (0..1); setting ``cancel`` stops ffmpeg.
        ``dest_wav`` is removed when this raises.
        """
        ...


class FfmpegTool:
    """MediaTool on the ffmpeg and ffprobe binaries."""

    def __init__(
        self, ffmpeg_bin: str = "ffmpeg", ffprobe_bin: str = "ffprobe", max_duration_s: float = 4 * 3600
    ) -> None:
        self.ffmpeg_bin = ffmpeg_bin
        self.ffprobe_bin = ffprobe_bin
        self.max_duration_s = max_duration_s

    @classmethod
    def from_settings(cls, settings: AudioSettings) -> FfmpegTool:
        return cls(settings.ffmpeg, settings.ffprobe, settings.max_duration_s)

    def check(self) -> FfmpegTool:
        """Run both binaries once, so SERVING means they really work."""
        for binary in (self.ffmpeg_bin, self.ffprobe_bin):
            out = subprocess.run(
                [binary, "-hide_banner", "-version"], capture_output=True, check=True, timeout=30
            )
            log.info("using %s", out.stdout.decode(errors="replace").splitlines()[0])
        return self

    # -- probe --------------------------------------------------------------------------------
    def probe(self, source: Source, size: int | None = None) -> MediaInfo:
        location = _location(source)
        if size is None and not _is_url(location):
            size = Path(location).stat().st_size
        if size == 0:
            raise InvalidInput("the file is empty")
        try:
            data = ffmpeg.probe(location, cmd=self.ffprobe_bin, v="error", **_input_options(location))
        except ffmpeg.Error as exc:
            reason = _reason(exc.stderr, location)
            if _is_url(location) and _NETWORK_ERROR.search(reason):
                raise Unavailable(f"could not read the file from the object store ({reason})") from exc
            raise InvalidInput(f"this is not a video or audio file that can be read ({reason})") from exc
        info = _media_info(data, size)
        if not info.has_audio:
            raise InvalidInput("the file has no audio track")
        if info.duration > self.max_duration_s:
            raise InvalidInput(self._too_long(info.duration))
        return info

    # -- extract ------------------------------------------------------------------------------
    def extract(
        self,
        source: Source,
        dest_wav: Path,
        on_progress: ProgressFn | None = None,
        *,
        size: int | None = None,
        cancel: threading.Event | None = None,
    ) -> ExtractOutcome:
        location = _location(source)
        media = self.probe(location, size)
        try:
            returncode, stderr = self._decode(location, dest_wav, media.duration, on_progress, cancel)
            if cancel is not None and cancel.is_set():
                raise Cancelled("the request was cancelled; decoding was stopped")
            if returncode != 0:
                reason = _reason(stderr, location)
                if _is_url(location) and _NETWORK_ERROR.search(reason):
                    # the object store went away while ffmpeg read the upload: transient, retried
                    raise Unavailable(f"could not read the file from the object store ({reason})")
                raise InvalidInput(f"the audio could not be decoded ({reason})")
            frames = _wav_frames(dest_wav)
            if frames == 0:
                raise InvalidInput("no audio could be decoded from the file")
            audio_duration = frames / SAMPLE_RATE
            if media.duration <= 0 and audio_duration >= self.max_duration_s:
                # The container did not say how long it is, and decoding hit the -t cap.
                raise InvalidInput(self._too_long(audio_duration, "at least "))
            warnings = _warnings(media.duration, audio_duration)
            if on_progress is not None:
                on_progress(1.0)
            return ExtractOutcome(media, audio_duration, dest_wav.stat().st_size, warnings)
        except BaseException:
            dest_wav.unlink(missing_ok=True)
            raise

    def _decode(
        self,
        location: str,
        dest_wav: Path,
        duration: float,
        on_progress: ProgressFn | None,
        cancel: threading.Event | None,
    ) -> tuple[int, bytes]:
        """Run ffmpeg, reporting ``-progress`` as it goes; return its exit code and stderr tail."""
        stream = (
            ffmpeg.input(location, **_input_options(location))["a:0"]
            .output(
                str(dest_wav),
                vn=None,
                ac=CHANNELS,
                ar=SAMPLE_RATE,
                acodec="pcm_s16le",
                f="wav",
                t=self.max_duration_s,  # a container that lies about its length still stops here
                map_metadata=-1,
                fflags="+bitexact",  # a plain 44-byte header: no encoder tag chunk
            )
            .global_args("-nostdin", "-hide_banner", "-v", "error", "-progress", "pipe:1", "-nostats")
            .overwrite_output()
        )
        proc: subprocess.Popen[bytes] = stream.run_async(
            cmd=self.ffmpeg_bin, pipe_stdout=True, pipe_stderr=True
        )
        assert proc.stdout is not None and proc.stderr is not None
        tail: collections.deque[bytes] = collections.deque(maxlen=40)
        readers = [threading.Thread(target=tail.extend, args=(proc.stderr,), daemon=True)]
        if cancel is not None:
            readers.append(threading.Thread(target=_kill_on, args=(proc, cancel), daemon=True))
        for thread in readers:
            thread.start()
        try:
            for decoded in _progress_times(proc.stdout):
                if on_progress is not None and duration > 0:
                    on_progress(min(decoded / duration, 1.0))
            proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for thread in readers:
                thread.join(timeout=5)
            proc.stdout.close()
            proc.stderr.close()
        return proc.returncode, b"".join(tail)

    def _too_long(self, duration: float, qualifier: str = "") -> str:
        limit = self.max_duration_s
        return (
            f"the recording is {qualifier}{fmt_time(duration)} ({duration:.0f} s) long, over the "
            f"limit of {fmt_time(limit)} ({limit:.0f} s)"
        )


# -- helpers ------------------------------------------------------------------------------------
def _is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def _location(source: Source) -> str:
    """URLs as they are; paths made absolute, so a name like ``a:b.mp4`` is not read as a protocol."""
    if isinstance(source, str) and _is_url(source):
        return source
    return str(Path(source).resolve())


def _input_options(location: str) -> dict[str, Any]:
    if _is_url(location):
        return {"protocol_whitelist": _URL_PROTOCOLS, "rw_timeout": _URL_TIMEOUT_US}
    return {"protocol_whitelist": _LOCAL_PROTOCOLS}


_LOG_PREFIX = re.compile(r"^\[[^\]]*@ ?0x[0-9a-fA-F]+\]\s*")
_ANY_URL = re.compile(r"https?://\S+")
_NETWORK_ERROR = re.compile(
    r"Server returned|Connection refused|timed out|Network is unreachable|Failed to resolve|"
    r"Connection reset",
    re.IGNORECASE,
)


def _reason(stderr: bytes | None, location: str, keep: int = 2) -> str:
    """The last distinct lines of ffmpeg's stderr, without addresses or URLs.

    A presigned URL carries a signature, so it never goes into a message.
    """
    lines: list[str] = []
    for raw in (stderr or b"").decode("utf-8", errors="replace").splitlines():
        line = _LOG_PREFIX.sub("", raw.strip())
        line = line.replace(f"{location}: ", "").replace(location, "the input")
        line = _ANY_URL.sub("<url>", line)[:200]
        if line and line not in lines:
            lines.append(line)
    return "; ".join(lines[-keep:]) or "ffmpeg gave no reason"


def _number(value: object, kind: type[int] | type[float]) -> Any:
    try:
        return kind(float(str(value)))
    except (ValueError, OverflowError):
        return kind(0)


def _media_info(data: dict[str, Any], size: int | None) -> MediaInfo:
    fmt: dict[str, Any] = data.get("format", {})
    streams: list[dict[str, Any]] = data.get("streams", [])
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    # Cover art in an MP3/M4A is a "video" stream too; it is not a video.
    video = next(
        (
            s
            for s in streams
            if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")
        ),
        None,
    )
    duration = _number(fmt.get("duration", 0), float)
    if duration <= 0:
        duration = max((_number(s.get("duration", 0), float) for s in streams), default=0.0)
    return MediaInfo(
        container=str(fmt.get("format_name", "")),
        duration=duration,
        has_audio=audio is not None,
        has_video=video is not None,
        audio_codec=str(audio.get("codec_name", "")) if audio else "",
        video_codec=str(video.get("codec_name", "")) if video else "",
        audio_sample_rate=_number(audio.get("sample_rate", 0), int) if audio else 0,
        audio_channels=_number(audio.get("channels", 0), int) if audio else 0,
        size_bytes=size if size is not None else _number(fmt.get("size", 0), int),
    )


def _progress_times(lines: Iterable[bytes]) -> Iterable[float]:
    """Seconds decoded, once per ``-progress`` block (``out_time_ms`` is µs too, despite its name)."""
    decoded: float | None = None
    for raw in lines:
        key, _, value = raw.decode("ascii", errors="replace").strip().partition("=")
        if key in {"out_time_us", "out_time_ms"}:
            with contextlib.suppress(ValueError):
                decoded = int(value) / 1e6
        elif key == "progress" and decoded is not None:
            yield max(decoded, 0.0)
            decoded = None


def _kill_on(proc: subprocess.Popen[bytes], cancel: threading.Event) -> None:
    while proc.poll() is None:
        if cancel.wait(0.2):
            proc.kill()
            return


def _wav_frames(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with wave.open(str(path), "rb") as wav:
            return wav.getnframes()
    except (wave.Error, EOFError):
        return 0


def _warnings(claimed: float, decoded: float) -> tuple[str, ...]:
    if claimed > 0 and decoded < TRUNCATION_RATIO * claimed and claimed - decoded > TRUNCATION_GAP_S:
        return (
            f"the file seems truncated: only {decoded:.1f} s of the {claimed:.1f} s it claims "
            "could be decoded",
        )
    return ()
