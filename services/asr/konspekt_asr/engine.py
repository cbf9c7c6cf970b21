"""Speech recognition with faster-whisper, and audio loading. No gRPC here.

The audio stage hands us 16 kHz mono 16-bit WAV, which is read directly (``wave`` + numpy);
anything else (inline clips from standalone clients) is decoded with PyAV (the ffmpeg libraries,
as ``faster_whisper.decode_audio`` does) restricted to self-contained media: no playlist, list or
manifest can make it open a URL or another local file (issue 16; ``konspekt.media_guard``, as
in the audio stage).
"""

from __future__ import annotations

import io
import itertools
import logging
import re
import threading
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import av
import numpy as np
import numpy.typing as npt
from faster_whisper import BatchedInferencePipeline, WhisperModel
from prometheus_client import Counter

from konspekt import media_guard
from konspekt.errors import Cancelled, InvalidInput
from konspekt.notices import Note
from konspekt_asr.settings import AsrSettings

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000

#: 16 kHz mono samples: float32 in [-1, 1], or the 16-bit PCM of a WAV as read (half the
#: memory of float32 for a long recording); a piece is scaled to float32 when it is recognised.
Audio = npt.NDArray[np.float32] | npt.NDArray[np.int16]
#: 16-bit PCM to float32: the same scaling as ``faster_whisper.decode_audio``.
PCM_SCALE = np.float32(32768.0)

CANCELLED = Counter(
    "konspekt_asr_cancelled_total",
    "Transcriptions stopped because their RPC was cancelled or expired (between decoding windows).",
)


def stop_if_cancelled(cancelled: threading.Event | None, reached: float) -> None:
    """Raise Cancelled (counted and logged) if the call's cancel flag is set; ``reached``: the
    seconds of audio recognised so far."""
    if cancelled is not None and cancelled.is_set():
        CANCELLED.inc()
        log.info("transcription cancelled at %.1f s of the audio", reached)
        raise Cancelled("the call was cancelled")


def as_float(audio: Audio) -> npt.NDArray[np.float32]:
    """Samples as float32 in [-1, 1] (what faster-whisper takes)."""
    if audio.dtype == np.int16:
        return audio.astype(np.float32) / PCM_SCALE
    return audio.astype(np.float32, copy=False)


@dataclass(frozen=True)
class SegmentData:
    """One recognised segment; times in seconds from the start of the audio."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class TranscriptionInfo:
    language: str
    language_probability: float
    #: Seconds of audio given.
    duration: float
    #: Seconds left after VAD removed non-speech (0: nothing to recognise); of the first piece
    #: only when the recording is recognised in pieces.
    speech_duration: float


class Transcriber(Protocol):
    @property
    def name(self) -> str: ...

    def transcribe(
        self, audio: Audio, language: str | None, cancelled: threading.Event | None = None
    ) -> tuple[TranscriptionInfo, Iterator[SegmentData]]:
        """Language detection (if ``language`` is None) and VAD run here; the segments are
        recognised lazily, one decoding window at a time, as the iterator is consumed. Once
        ``cancelled`` is set, the next window (or piece) is not decoded: Cancelled."""
        ...


# -- hallucinations -------------------------------------------------------------------------
#: Whole-segment texts Whisper is known to invent on silence/noise (YouTube-subtitle outros).
_INVENTED_SEGMENTS = frozenset(
    {
        "thank you for watching",
        "thanks for watching",
        "please subscribe",
        "продолжение следует",
        "спасибо за просмотр",
        "спасибо за внимание подписывайтесь на канал",
        "подписывайтесь на канал",
    }
)
#: Subtitle credits from Whisper's training data: never real speech in a recording.
_INVENTED_PARTS = (
    "dimatorzok",
    "редактор субтитров",
    "корректор а егорова",
    "субтитры создавал",
    "amara org",
)


def _normalised(text: str) -> str:
    return " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())


def is_hallucination(text: str) -> bool:
    """True for segments that are obviously not speech: no letters or digits at all ("$%$%",
    "..."; a lone "4%" may be real), or a known subtitle outro/credit Whisper invents on silence."""
    if not any(ch.isalnum() for ch in text):
        return True
    norm = _normalised(text)
    return norm in _INVENTED_SEGMENTS or any(part in norm for part in _INVENTED_PARTS)


def _unsure_and_short(seg: Any, text: str) -> bool:
    """A word or three that the model itself thinks is probably not speech. tiny.en hears "You"
    in 20 s of tones (no-speech probability 0.92, mean log-probability -0.95), just inside
    faster-whisper's own skip rule (> 0.6 and < -1.0)."""
    no_speech = float(getattr(seg, "no_speech_prob", 0.0))
    logprob = float(getattr(seg, "avg_logprob", 0.0))
    return no_speech > 0.6 and logprob < -0.7 and len(text.split()) <= 3


# -- the faster-whisper transcriber ---------------------------------------------------------
class WhisperTranscriber:
    """A faster-whisper model, loaded once and shared by all requests (CTranslate2 is thread-safe)."""

    def __init__(
        self,
        model: WhisperModel,
        name: str,
        *,
        beam_size: int,
        batch_size: int,
        vad: bool,
        piece_seconds: int = 0,
    ) -> None:
        self.model = model
        self._name = name
        self.beam_size = beam_size
        self.batch_size = batch_size
        self.vad = vad
        self.piece_seconds = piece_seconds
        self.languages = frozenset(model.supported_languages)
        self.multilingual = bool(model.model.is_multilingual)
        # Batch 0 or 1: the sequential path (a batch of one only loses the fine timestamps).
        self._batched = BatchedInferencePipeline(model) if batch_size > 1 else None

    @property
    def name(self) -> str:
        return self._name

    def check_language(self, language: str | None) -> str | None:
        """The language code to use (None: auto-detect); InvalidInput if the model lacks it."""
        code = (language or "").strip().lower()
        if not code:
            return None
        if code not in self.languages:
            if not self.multilingual:
                raise InvalidInput(
                    f"language {code!r} is not supported: model {self.name} is English-only ('en')",
                    reason="UNSUPPORTED_LANGUAGE",
                )
            raise InvalidInput(
                f"language {code!r} is not supported by model {self.name}: use an ISO 639-1 code "
                "such as 'ru' or 'en', or leave it empty to auto-detect",
                reason="UNSUPPORTED_LANGUAGE",
            )
        return code

    def transcribe(
        self, audio: Audio, language: str | None, cancelled: threading.Event | None = None
    ) -> tuple[TranscriptionInfo, Iterator[SegmentData]]:
        code = self.check_language(language)
        if audio.size == 0:
            raise InvalidInput(Note("audio_empty_samples"), reason="INVALID_MEDIA")
        bounds = list(itertools.pairwise(cut_points(audio, self.piece_seconds)))
        # Language detection, VAD and the features happen here, eagerly, for the first piece;
        # a first piece without speech says nothing about the language, so the next one is
        # tried (each piece's features are freed before the next is taken).
        first = 0
        stop_if_cancelled(cancelled, 0.0)
        segments, info = self._one(as_float(audio[: bounds[0][1]]), code)
        while code is None and info.duration_after_vad == 0 and first + 1 < len(bounds):
            first += 1
            a, b = bounds[first]
            stop_if_cancelled(cancelled, a / SAMPLE_RATE)
            segments, info = self._one(as_float(audio[a:b]), code)
        result = TranscriptionInfo(
            language=str(info.language),
            language_probability=float(info.language_probability),
            duration=audio.size / SAMPLE_RATE,
            speech_duration=float(info.duration_after_vad),
        )
        if len(bounds) > 1:
            log.info("recognising %.0f s in %d pieces", result.duration, len(bounds))

        def pieces() -> Iterator[SegmentData]:
            # the pieces before ``first`` had no speech
            yield from self._kept(segments, bounds[first][0] / SAMPLE_RATE, cancelled)
            rest = code or result.language
            for a, b in bounds[first + 1 :]:
                stop_if_cancelled(cancelled, a / SAMPLE_RATE)
                more, _ = self._one(as_float(audio[a:b]), rest)
                yield from self._kept(more, a / SAMPLE_RATE, cancelled)

        return result, pieces()

    def _one(self, audio: Audio, code: str | None) -> Any:
        """faster-whisper's (segments iterator, info) for one piece."""
        options: dict[str, Any] = {
            "language": code,
            "beam_size": self.beam_size,
            "vad_filter": self.vad,
            # Each window decoded on its own: no repetition loops carried across windows.
            "condition_on_previous_text": False,
        }
        if self._batched is not None:
            # Timestamps on: segments stay sentence-sized (for subtitles and the konspekt's
            # times) instead of one per VAD chunk of up to 30 s. They still come lazily, one
            # batch of chunks at a time.
            return self._batched.transcribe(
                audio, batch_size=self.batch_size, without_timestamps=False, **options
            )
        return self.model.transcribe(audio, **options)

    @staticmethod
    def _kept(
        segments: Any, offset: float = 0.0, cancelled: threading.Event | None = None
    ) -> Iterator[SegmentData]:
        """The segments worth keeping; the flag is looked at before each is pulled, so a
        cancelled call stops before faster-whisper decodes its next window."""
        pending = iter(segments)
        reached = offset
        while True:
            stop_if_cancelled(cancelled, reached)
            seg = next(pending, None)
            if seg is None:
                return
            reached = offset + float(seg.end)
            text = str(seg.text).strip()
            if is_hallucination(text) or _unsure_and_short(seg, text):
                log.info("dropped a hallucinated segment at %.1f s: %r", offset + seg.start, text[:80])
                continue
            yield SegmentData(start=offset + float(seg.start), end=offset + float(seg.end), text=text)

    def warm_up(self) -> None:
        """Run the model (and VAD) once, so a SERVING stage really answers at once."""
        silent = np.zeros(SAMPLE_RATE, dtype=np.float32)
        segments, _ = self.model.transcribe(
            silent,
            language="en",
            vad_filter=False,
            beam_size=1,
            temperature=0.0,
            max_new_tokens=4,
            condition_on_previous_text=False,
        )
        for _ in segments:
            pass
        if self.vad:
            segments, _ = self.model.transcribe(silent, language="en", vad_filter=True)
            for _ in segments:
                pass


def load_transcriber(settings: AsrSettings) -> WhisperTranscriber:
    started = time.monotonic()
    model = WhisperModel(
        settings.model,
        device=settings.device,
        compute_type=settings.compute_type,
        cpu_threads=settings.threads,
        local_files_only=True,
    )
    transcriber = WhisperTranscriber(
        model,
        settings.model_name,
        beam_size=settings.beam_size,
        batch_size=settings.batch_size,
        vad=settings.vad,
        piece_seconds=settings.piece_seconds,
    )
    transcriber.warm_up()
    log.info(
        "loaded %s (%s, %s, %d threads%s) in %.1f s",
        settings.model_name,
        settings.device,
        settings.compute_type,
        settings.threads,
        f", batch {settings.batch_size}" if settings.batch_size > 1 else "",
        time.monotonic() - started,
    )
    return transcriber


# -- pieces of a long recording ----------------------------------------------------------------
#: Where a cut is looked for: the last this many seconds before each piece's nominal end.
CUT_SEARCH_SECONDS = 30
#: A last piece shorter than this share of a piece is not cut off (the one before grows).
CUT_MIN_LAST = 0.25
_FRAME = SAMPLE_RATE // 10  # 100 ms


def cut_points(audio: Audio, piece_seconds: int) -> list[int]:
    """Sample offsets ``[0, c1, ..., len]`` that cut ``audio`` into pieces of at most about
    ``piece_seconds`` (0: one piece), each cut at the quietest half second (mean energy of five
    100 ms frames) of the last ``CUT_SEARCH_SECONDS`` before the nominal end, i.e. in a pause
    rather than a word. Reads the audio only there."""
    n = audio.size
    cuts = [0]
    if piece_seconds <= 0:
        return [0, n]
    piece = piece_seconds * SAMPLE_RATE
    search = min(CUT_SEARCH_SECONDS * SAMPLE_RATE, piece // 2)
    while n - cuts[-1] > piece * (1 + CUT_MIN_LAST):
        end = cuts[-1] + piece
        start = end - search
        frames = audio[start : start + search // _FRAME * _FRAME].reshape(-1, _FRAME)
        energy = np.square(frames, dtype=np.float64).mean(axis=1)
        smooth = np.convolve(energy, np.ones(5) / 5, mode="valid")  # window k = frames k..k+4
        quietest = int(np.argmin(smooth)) + 2  # the middle frame of the quietest window
        cuts.append(start + quietest * _FRAME + _FRAME // 2)
    cuts.append(n)
    return cuts


# -- audio ----------------------------------------------------------------------------------
def read_wav(source: Path | bytes) -> npt.NDArray[np.int16] | None:
    """16 kHz mono 16-bit PCM WAV -> its int16 samples, as they are (``as_float`` scales them);
    None for anything else (decode it instead)."""
    try:
        with wave.open(str(source) if isinstance(source, Path) else io.BytesIO(source), "rb") as wav:
            if (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) != (1, 2, SAMPLE_RATE):
                return None
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError):
        return None
    return np.frombuffer(frames[: len(frames) // 2 * 2], dtype="<i2")


def _open_media(source: Path | bytes) -> av.container.InputContainer:
    """PyAV on the local file (``file:`` only) or the bytes (no protocol at all), demuxers limited
    to self-contained media, so an HLS playlist, ffconcat list, SDP or DASH manifest is refused
    before it opens anything."""
    media_guard.check_head(source)  # a playlist & co. gets a clear message before PyAV runs
    target: str | io.BytesIO
    if isinstance(source, Path):
        target, protocols = media_guard.file_url(source), media_guard.PROTOCOLS
    else:
        target, protocols = io.BytesIO(source), media_guard.NO_PROTOCOLS
    # Nested opens inherit the whitelists: "none" matches no protocol, "file" only local files.
    options = media_guard.input_options(protocols)
    return av.open(target, mode="r", metadata_errors="ignore", container_options=options)


def _decode(source: Path | bytes) -> Audio:
    """16 kHz mono 16-bit samples of the first audio stream (what ``decode_audio`` does, with
    the demuxer and protocol limits above)."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    pieces: list[npt.NDArray[np.int16]] = []
    try:
        with _open_media(source) as container:
            for frame in _valid_frames(container.decode(audio=0)):
                pieces.extend(_samples(f) for f in resampler.resample(frame))
            pieces.extend(_samples(f) for f in resampler.resample(None))
    except InvalidInput:
        raise
    except IndexError as exc:  # container.decode(audio=0) on a file without audio streams
        raise InvalidInput(Note("no_audio_track"), reason="NO_AUDIO_TRACK") from exc
    except Exception as exc:  # PyAV raises many types for bad input; all of them mean "bad file"
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise InvalidInput(Note("cannot_decode", detail=reason), reason="INVALID_MEDIA") from exc
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16)


def _samples(frame: av.AudioFrame) -> npt.NDArray[np.int16]:
    return np.asarray(frame.to_ndarray(), dtype=np.int16).reshape(-1)


def _valid_frames(frames: Iterator[av.AudioFrame]) -> Iterator[av.AudioFrame]:
    """Frames, skipping the ones ffmpeg reports as invalid data (as ``decode_audio`` does)."""
    while True:
        try:
            yield next(frames)
        except StopIteration:
            return
        except av.error.InvalidDataError:
            continue


def load_audio(source: Path | bytes) -> Audio:
    """Samples at 16 kHz mono, from a file or bytes (a WAV of ours stays 16-bit PCM);
    InvalidInput if there is no usable audio."""
    size = source.stat().st_size if isinstance(source, Path) else len(source)
    if size == 0:
        raise InvalidInput(Note("audio_empty_bytes"), reason="INVALID_MEDIA")
    audio: Audio | None = read_wav(source)
    if audio is None:
        audio = _decode(source)
    if audio.size == 0:
        raise InvalidInput(Note("audio_no_samples"), reason="INVALID_MEDIA")
    return audio
