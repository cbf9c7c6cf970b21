"""The AsrService: loads the audio, streams progress and segments as they are recognised,
then the result; stores the transcript JSON when asked to."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
from prometheus_client import Counter, Histogram

from konspekt.errors import InvalidInput
from konspekt.metrics import RTF_BUCKETS
from konspekt.server import Loader, rpc
from konspekt.storage import ObjectStore, output_ref, require_store
from konspekt.transcripts import to_json
from konspekt.v1 import asr_pb2, asr_pb2_grpc, common_pb2
from konspekt_asr.engine import Audio, Transcriber, load_audio

log = logging.getLogger(__name__)

Response = asr_pb2.TranscribeResponse

AUDIO_SECONDS = Counter("konspekt_asr_audio_seconds_total", "Seconds of audio transcribed.")
REAL_TIME_FACTOR = Histogram(
    "konspekt_asr_real_time_factor",
    "Transcription time (loading the audio included) per second of audio; < 1 is faster than real time.",
    buckets=RTF_BUCKETS,
)


class AsrServicer(asr_pb2_grpc.AsrServiceServicer):
    def __init__(self, loader: Loader[Transcriber], store: ObjectStore | None) -> None:
        self.loader = loader
        self.store = store

    @rpc
    def Transcribe(
        self, request: asr_pb2.TranscribeRequest, context: grpc.ServicerContext
    ) -> Iterator[Response]:
        transcriber = self.loader.get()
        started = time.monotonic()
        output = output_ref(self.store, request.output, "output")  # before any work
        audio = self._audio(request)
        yield Response(progress=common_pb2.Progress(fraction=0.0, message="recognising"))

        info, segments = transcriber.transcribe(audio, request.language or None)
        del audio  # the model holds what it needs; free the samples for long recordings
        transcript = common_pb2.Transcript(
            language=info.language,
            language_probability=info.language_probability,
            duration=info.duration,
        )
        try:
            for seg in segments:
                if not context.is_active():  # cancelled or past its deadline while we decoded
                    log.info("cancelled by the caller after %d segments", len(transcript.segments))
                    return
                segment = transcript.segments.add(
                    index=len(transcript.segments), start=seg.start, end=seg.end, text=seg.text
                )
                yield Response(segment=segment)
                fraction = min(seg.end / info.duration, 1.0) if info.duration > 0 else 1.0
                yield Response(
                    progress=common_pb2.Progress(
                        fraction=fraction, message=f"{seg.end:.0f} s of {info.duration:.0f} s"
                    )
                )
        except GeneratorExit:
            # gRPC stops pulling responses once the call is cancelled and closes this generator.
            log.info("cancelled by the caller after %d segments", len(transcript.segments))
            raise

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
        yield Response(progress=common_pb2.Progress(fraction=1.0, message="done"))
        yield Response(result=result)

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
