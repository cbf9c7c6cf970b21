"""Reads media facts and extracts 16 kHz mono WAV with ffmpeg (ffmpeg-python). No gRPC here.

``source`` is always a local file (the servicer copies an upload from the object store first):
ffmpeg and ffprobe read it through ``file:`` only, and only self-contained media formats
(``konspekt.media_guard``), so a playlist in an upload cannot make them open URLs or other
local files. The decoded audio is capped by the duration the container claims and by the
file's size, and a file that holds more than it claims comes with a warning.
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

from konspekt import media_guard
from konspekt.cli import fmt_time
from konspekt.errors import Cancelled, InvalidInput
from konspekt.notices import Note
from konspekt_audio.settings import AudioSettings

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
CHANNELS = 1
SAMPLE_WIDTH = 2  # bytes: pcm_s16le
BYTES_PER_SECOND = SAMPLE_RATE * CHANNELS * SAMPLE_WIDTH

#: A decode this much shorter than the container claims (and by more than TRUNCATION_GAP_S)
#: means the file was cut off, e.g. an upload that stopped part-way.
TRUNCATION_RATIO = 0.9
TRUNCATION_GAP_S = 1.0

#: Decoding stops at CLAIM_SLACK x the duration the container claims + ``claim_margin_s``:
#: a header that says 10 s over hours of silence yields a minute, not hours (issue 16).
CLAIM_SLACK = 1.1
#: A decode longer than the claim by this ratio and gap is worth a warning even under the cap.
OVERRUN_RATIO = 1.1
OVERRUN_GAP_S = 1.0
#: A decode this close to its cap is taken to have been cut off there.
_CAP_TOLERANCE_S = 0.1

#: A local file: the stage never hands ffmpeg a URL.
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
    def probe(self, source: Source) -> MediaInfo:
        """Media facts without decoding; raises InvalidInput for files the stage cannot use
        (playlists and other formats that point at other inputs included)."""
        ...

    def extract(
        self,
        source: Source,
        dest_wav: Path,
        on_progress: ProgressFn | None = None,
        *,
        cancel: threading.Event | None = None,
    ) -> ExtractOutcome:
        """Decode the first audio stream to ``dest_wav`` (16 kHz mono s16le WAV).

        ``on_progress`` gets the decoded fraction (0..1); setting ``cancel`` stops ffmpeg.
        Decoding stops at the cap (``FfmpegTool._cap``); the outcome's warnings say so.
        ``dest_wav`` is removed when this raises.
        """
        ...


class FfmpegTool:
    """MediaTool on the ffmpeg and ffprobe binaries."""

    def __init__(
        self,
        ffmpeg_bin: str = "ffmpeg",
        ffprobe_bin: str = "ffprobe",
        max_duration_s: float = 4 * 3600,
        *,
        max_audio_ratio: float = 500.0,
        claim_margin_s: float = 60.0,
    ) -> None:
        self.ffmpeg_bin = ffmpeg_bin
        self.ffprobe_bin = ffprobe_bin
        self.max_duration_s = max_duration_s
        self.max_audio_ratio = max_audio_ratio
        self.claim_margin_s = claim_margin_s

    @classmethod
    def from_settings(cls, settings: AudioSettings) -> FfmpegTool:
        return cls(
            settings.ffmpeg,
            settings.ffprobe,
            settings.max_duration_s,
            max_audio_ratio=settings.max_audio_ratio,
            claim_margin_s=settings.claim_margin_s,
        )

    def check(self) -> FfmpegTool:
        """Run both binaries once, so SERVING means they really work."""
        for binary in (self.ffmpeg_bin, self.ffprobe_bin):
            out = subprocess.run(
                [binary, "-hide_banner", "-version"], capture_output=True, check=True, timeout=30
            )
            log.info("using %s", out.stdout.decode(errors="replace").splitlines()[0])
        return self

    # -- probe --------------------------------------------------------------------------------
    def probe(self, source: Source) -> MediaInfo:
        path = _local(source)
        size = path.stat().st_size
        if size == 0:
            raise InvalidInput(Note("file_empty"), reason="INVALID_MEDIA")
        media_guard.check_head(path)  # a playlist is refused before any ffmpeg reads it
        location = media_guard.file_url(path)
        try:
            data = ffmpeg.probe(location, cmd=self.ffprobe_bin, v="error", **media_guard.input_options())
        except ffmpeg.Error as exc:
            refusal = media_guard.whitelist_refusal(exc.stderr)
            if refusal is not None:
                raise refusal from exc
            reason = _reason(exc.stderr, location)
            raise InvalidInput(Note("not_media", detail=reason), reason="INVALID_MEDIA") from exc
        info = _media_info(data, size)
        media_guard.check_format(info.container)
        if not info.has_audio:
            raise InvalidInput(Note("no_audio_track"), reason="NO_AUDIO_TRACK")
        if info.duration > self.max_duration_s:
            raise InvalidInput(self._too_long(info.duration), reason="MEDIA_TOO_LONG")
        return info

    # -- extract ------------------------------------------------------------------------------
    def extract(
        self,
        source: Source,
        dest_wav: Path,
        on_progress: ProgressFn | None = None,
        *,
        cancel: threading.Event | None = None,
    ) -> ExtractOutcome:
        path = _local(source)
        media = self.probe(path)
        location = media_guard.file_url(path)
        cap, capped_by = self._cap(media)
        try:
            returncode, stderr = self._decode(location, media, cap, dest_wav, on_progress, cancel)
            if cancel is not None and cancel.is_set():
                raise Cancelled("the request was cancelled; decoding was stopped")
            if returncode != 0:
                refusal = media_guard.whitelist_refusal(stderr)
                if refusal is not None:
                    raise refusal
                raise InvalidInput(
                    Note("audio_not_decoded", detail=_reason(stderr, location)), reason="INVALID_MEDIA"
                )
            frames = _wav_frames(dest_wav)
            if frames == 0:
                raise InvalidInput(Note("no_audio_decoded"), reason="INVALID_MEDIA")
            audio_duration = frames / SAMPLE_RATE
            hit_cap = audio_duration >= cap - _CAP_TOLERANCE_S
            if hit_cap and capped_by == "limit" and media.duration <= 0:
                # The container did not say how long it is, and decoding hit the -t cap.
                raise InvalidInput(self._too_long(audio_duration, at_least=True), reason="MEDIA_TOO_LONG")
            warnings = _warnings(media, audio_duration, capped_by if hit_cap else None)
            if on_progress is not None:
                on_progress(1.0)
            return ExtractOutcome(media, audio_duration, dest_wav.stat().st_size, warnings)
        except BaseException:
            dest_wav.unlink(missing_ok=True)
            raise

    def _cap(self, media: MediaInfo) -> tuple[float, str]:
        """Seconds of audio decoding may produce, and which bound set it: "limit" (the longest
        recording accepted), "claim" (the container's duration + slack) or "size" (the
        upload's size x max_audio_ratio)."""
        bounds = [(self.max_duration_s, "limit")]
        if media.duration > 0:
            bounds.append((media.duration * CLAIM_SLACK + self.claim_margin_s, "claim"))
        if media.size_bytes > 0 and self.max_audio_ratio > 0:
            bounds.append((media.size_bytes * self.max_audio_ratio / BYTES_PER_SECOND, "size"))
        return min(bounds)

    def _decode(
        self,
        location: str,
        media: MediaInfo,
        cap: float,
        dest_wav: Path,
        on_progress: ProgressFn | None,
        cancel: threading.Event | None,
    ) -> tuple[int, bytes]:
        """Run ffmpeg, reporting ``-progress`` as it goes; return its exit code and stderr tail."""
        duration = media.duration
        # The demuxer ffprobe found, forced: the decode cannot pick another one.
        demuxer = media.container.split(",")[0]
        stream = (
            ffmpeg.input(location, f=demuxer, **media_guard.input_options())["a:0"]
            .output(
                str(dest_wav),
                vn=None,
                ac=CHANNELS,
                ar=SAMPLE_RATE,
                acodec="pcm_s16le",
                f="wav",
                t=f"{cap:.3f}",  # a container that lies about its length still stops here
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

    def _too_long(self, duration: float, at_least: bool = False) -> Note:
        limit = self.max_duration_s
        return Note(
            "too_long_at_least" if at_least else "too_long",
            length=fmt_time(duration),
            seconds=f"{duration:.0f}",
            limit=fmt_time(limit),
            limit_seconds=f"{limit:.0f}",
        )


# -- helpers ------------------------------------------------------------------------------------
def _local(source: Source) -> Path:
    """The absolute path of a local file; a URL is a programming error (ffmpeg never gets one)."""
    if "://" in str(source):
        raise ValueError("the audio engine reads local files only, never a URL")
    return Path(source).resolve()


_LOG_PREFIX = re.compile(r"^\[[^\]]*@ ?0x[0-9a-fA-F]+\]\s*")
_ANY_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)


def _reason(stderr: bytes | None, location: str, keep: int = 2) -> str:
    """The last distinct lines of ffmpeg's stderr, without addresses, URLs or the temp path."""
    lines: list[str] = []
    for raw in (stderr or b"").decode("utf-8", errors="replace").splitlines():
        line = _LOG_PREFIX.sub("", raw.strip())
        for name in (location, location.removeprefix("file:")):
            line = line.replace(f"{name}: ", "").replace(name, "the input")
        line = _ANY_URL.sub("<url>", line)[:200]
        if line and line not in lines:
            lines.append(line)
    return "; ".join(lines[-keep:]) or "ffmpeg gave no reason"


def _number(value: object, kind: type[int] | type[float]) -> Any:
    try:
        return kind(float(str(value)))
    except (ValueError, OverflowError):
        return kind(0)


def _media_info(data: dict[str, Any], size: int) -> MediaInfo:
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
        size_bytes=size,
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


def _warnings(media: MediaInfo, decoded: float, capped_by: str | None) -> tuple[str, ...]:
    """What the user should know about the decoded length against the claimed one."""
    claimed = media.duration
    if capped_by == "size":
        return (Note("audio_far_more_than_size", decoded=f"{decoded:.1f}"),)
    if capped_by is not None and claimed > 0:  # "claim", or "limit" under a claim
        return (Note("audio_more_than_claimed", claimed=f"{claimed:.1f}", decoded=f"{decoded:.1f}"),)
    if claimed > 0 and decoded > OVERRUN_RATIO * claimed and decoded - claimed > OVERRUN_GAP_S:
        return (Note("audio_longer_than_claimed", claimed=f"{claimed:.1f}", decoded=f"{decoded:.1f}"),)
    if claimed > 0 and decoded < TRUNCATION_RATIO * claimed and claimed - decoded > TRUNCATION_GAP_S:
        return (Note("audio_truncated", claimed=f"{claimed:.1f}", decoded=f"{decoded:.1f}"),)
    return ()
