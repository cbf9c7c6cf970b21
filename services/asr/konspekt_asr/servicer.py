"""The AsrService: loads the audio, streams progress and segments as they are recognised,
then the result; stores the transcript JSON when asked to."""

from __future__ import annotations

import logging
import queue
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
from prometheus_client import Counter, Histogram

from konspekt.errors import InvalidInput
from konspekt.logs import in_this_context
from konspekt.metrics import RTF_BUCKETS
from konspekt.notices import Note, to_proto
from konspekt.server import Loader, rpc
from konspekt.storage import ObjectStore, output_ref, require_store
from konspekt.transcripts import to_json
from konspekt.v1 import asr_pb2, asr_pb2_grpc, common_pb2
from konspekt_asr.engine import Audio, Transcriber, TranscriptionInfo, load_audio, stop_if_cancelled

log = logging.getLogger(__name__)

Response = asr_pb2.TranscribeResponse

#: How often the streaming loop looks at whether the client is still there, seconds (a
#: cancellation gRPC reports through its callback is seen at once).
POLL_SECONDS = 0.2

AUDIO_SECONDS = Counter("konspekt_asr_audio_seconds_total", "Seconds of audio transcribed.")
REAL_TIME_FACTOR = Histogram(
    "konspekt_asr_real_time_factor",
    "Transcription time (loading the audio included) per second of audio; < 1 is faster than real time.",
    buckets=RTF_BUCKETS,
)


class AsrServicer(asr_pb2_grpc.AsrServiceServicer):
    """Recognition runs in a thread of its own while the RPC streams what it finds: a call that
    is cancelled or expires ends at once, its recognition stops before the next decoding window
    (``Transcriber.transcribe``'s cancel flag), and at most ``workers`` recognitions run at once,
    so the next call starts streaming at once and decodes as soon as the abandoned window is done."""

    def __init__(self, loader: Loader[Transcriber], store: ObjectStore | None, workers: int = 1) -> None:
        self.loader = loader
        self.store = store
        self._decoding = threading.BoundedSemaphore(workers)

    @rpc
    def Transcribe(
        self, request: asr_pb2.TranscribeRequest, context: grpc.ServicerContext
    ) -> Iterator[Response]:
        transcriber = self.loader.get()
        started = time.monotonic()
        output = output_ref(self.store, request.output, "output")  # before any work
        audio = self._audio(request)
        yield Response(progress=_progress(0.0, Note("asr_recognising")))

        cancelled = threading.Event()
        if not context.add_callback(cancelled.set):  # cancelled, past its deadline, or ended
            cancelled.set()  # already over
        events = self._recognise(transcriber, [audio], request.language or None, cancelled)
        del audio  # the recognition holds what it needs; free the samples for long recordings
        transcript = common_pb2.Transcript()
        info: TranscriptionInfo | None = None
        try:
            while True:
                try:
                    kind, value = events.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    if cancelled.is_set() or not context.is_active():
                        cancelled.set()
                        log.info("cancelled by the caller after %d segments", len(transcript.segments))
                        return
                    continue
                if kind == "error":
                    if cancelled.is_set():  # it stopped because the caller went away: nobody to tell
                        log.info("cancelled by the caller after %d segments", len(transcript.segments))
                        return
                    raise value
                if kind == "end":
                    break
                if kind == "info":
                    info = value
                    transcript.language = value.language
                    transcript.language_probability = value.language_probability
                    transcript.duration = value.duration
                    continue
                assert info is not None
                seg = value
                segment = transcript.segments.add(
                    index=len(transcript.segments), start=seg.start, end=seg.end, text=seg.text
                )
                yield Response(segment=segment)
                fraction = min(seg.end / info.duration, 1.0) if info.duration > 0 else 1.0
                position = Note("asr_position", done=f"{seg.end:.0f}", total=f"{info.duration:.0f}")
                yield Response(progress=_progress(fraction, position))
        except GeneratorExit:
            # gRPC stops pulling responses once the call is cancelled and closes this generator.
            cancelled.set()
            log.info("cancelled by the caller after %d segments", len(transcript.segments))
            raise
        assert info is not None

        count = len(transcript.segments)
        if count == 0:
            # A language "detected" on silence is noise: report only what the caller asked for.
            transcript.language = request.language.strip().lower()
            transcript.language_probability = 0.0
        result = asr_pb2.TranscribeResult(
            language=transcript.language,
            language_probability=transcript.language_probability,
            duration=transcript.duration,
            segment_count=count,
            no_speech=count == 0,
            model=transcriber.name,
            notices=[] if count else [to_proto(Note("no_speech"))],
        )
        if output is not None:
            store = require_store(self.store, "output")
            result.transcript.CopyFrom(store.put_bytes(output, to_json(transcript), "application/json"))
        elapsed = time.monotonic() - started
        if info.duration > 0:
            AUDIO_SECONDS.inc(info.duration)
            REAL_TIME_FACTOR.observe(elapsed / info.duration)
        log.info(
            "transcribed %.1f s (%s, p=%.2f): %d segments in %.1f s",
            info.duration,
            transcript.language or "no speech",
            transcript.language_probability,
            count,
            elapsed,
        )
        yield Response(progress=_progress(1.0, Note("done")))
        yield Response(result=result)

    def _recognise(
        self, transcriber: Transcriber, audio: list[Audio], language: str | None, cancelled: threading.Event
    ) -> queue.Queue[tuple[str, Any]]:
        """Starts the recognition in a thread; its events: ("info", TranscriptionInfo), then
        ("segment", SegmentData)..., then ("end", None); or ("error", exception)."""
        events: queue.Queue[tuple[str, Any]] = queue.Queue()

        def work() -> None:
            try:
                while not self._decoding.acquire(timeout=POLL_SECONDS):  # an abandoned window
                    stop_if_cancelled(cancelled, 0.0)
                try:
                    info, segments = transcriber.transcribe(audio.pop(), language, cancelled)
                    events.put(("info", info))
                    for seg in segments:
                        events.put(("segment", seg))
                finally:
                    self._decoding.release()
                events.put(("end", None))
            except BaseException as exc:  # noqa: BLE001 - handed to the RPC thread
                events.put(("error", exc))

        threading.Thread(target=in_this_context(work), name="transcribe", daemon=True).start()
        return events

    def _audio(self, request: asr_pb2.TranscribeRequest) -> Audio:
        source = request.audio.WhichOneof("source")
        if source == "inline":
            return load_audio(request.audio.inline)
        if source == "ref":
            store = require_store(self.store, "audio.ref")
            with tempfile.TemporaryDirectory(prefix="konspekt-asr-") as tmp:
                path = store.download(request.audio.ref, Path(tmp) / "audio")
                return load_audio(path)
        raise InvalidInput("the request has no audio: set audio.ref or audio.inline")


def _progress(fraction: float, phase: Note) -> common_pb2.Progress:
    return common_pb2.Progress(fraction=fraction, message=phase, notice=to_proto(phase))
