"""Tiny deterministic stand-ins for the four stages, served by a real gRPC server on port 0.

They read and write the real object store like the real stages do. A ``Script`` tells a stage
to fail, fail once, hang or wait at a gate (or lets a ``chaos`` hook decide per call), and
records every request it got, and any call made for a job while another call for it is running.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from konspekt.errors import abort
from konspekt.logs import JOB_ID_METADATA
from konspekt.notices import note, notices
from konspekt.storage import ObjectStore
from konspekt.transcripts import konspekt_from_json, to_json, transcript_from_json
from konspekt.v1 import (
    asr_pb2,
    asr_pb2_grpc,
    audio_pb2,
    audio_pb2_grpc,
    common_pb2,
    renderer_pb2,
    renderer_pb2_grpc,
    summarizer_pb2,
    summarizer_pb2_grpc,
)

NAMES = {
    renderer_pb2.FORMAT_KONSPEKT_DOCX: "konspekt.docx",
    renderer_pb2.FORMAT_KONSPEKT_TXT: "konspekt.txt",
    renderer_pb2.FORMAT_TRANSCRIPT_TXT: "transcript.txt",
    renderer_pb2.FORMAT_TRANSCRIPT_SRT: "transcript.srt",
    renderer_pb2.FORMAT_TRANSCRIPT_VTT: "transcript.vtt",
    renderer_pb2.FORMAT_TRANSCRIPT_JSON: "transcript.json",
    renderer_pb2.FORMAT_KONSPEKT_MD: "konspekt.md",
}

#: How a scripted call fails: (code, message) or (code, message, ErrorInfo reason).
Failure = tuple[grpc.StatusCode, str] | tuple[grpc.StatusCode, str, str]


@dataclass
class Script:
    """What the fake stages do. Stage names: probe, audio, asr, summarizer, renderer."""

    #: (code, message[, ErrorInfo reason]): the reason defaults to the code's name, as a real
    #: stage's would be the class default; a Note message sends its code and args too
    fail: dict[str, Failure] = field(default_factory=dict)
    fail_once: dict[str, Failure] = field(default_factory=dict)
    fail_first: dict[str, tuple[int, grpc.StatusCode, str] | tuple[int, grpc.StatusCode, str, str]] = field(
        default_factory=dict
    )
    hang: set[str] = field(default_factory=set)
    gates: dict[str, threading.Event] = field(default_factory=dict)
    no_speech: bool = False
    duration: float = 11.0
    calls: Counter[str] = field(default_factory=Counter)
    requests: dict[str, list[Any]] = field(default_factory=dict)
    entered: dict[str, threading.Event] = field(default_factory=dict)
    metadata: list[dict[str, str]] = field(default_factory=list)
    deadlines: dict[str, list[float | None]] = field(default_factory=dict)
    #: per stage, when each call came in (time.monotonic())
    arrived: dict[str, list[float]] = field(default_factory=dict)
    #: Called at the start of every call with the stage name and the context; may abort or hang.
    chaos: Callable[[str, grpc.ServicerContext], None] | None = None
    #: Calls in progress per job id, and (job id, stage) of each call that came while another
    #: call of the same job was in progress (one job processed twice at once).
    active: Counter[str] = field(default_factory=Counter)
    overlaps: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def gate(self, stage: str) -> threading.Event:
        """Make ``stage`` wait until the returned event is set."""
        event = threading.Event()
        self.gates[stage] = event
        return event

    def reached(self, stage: str) -> threading.Event:
        return self.entered.setdefault(stage, threading.Event())

    def enter(self, stage: str, request: Any, context: grpc.ServicerContext) -> None:
        """Record the call, then fail, hang or wait as scripted."""
        metadata = {k: str(v) for k, v in context.invocation_metadata() or ()}
        job_id = metadata.get(JOB_ID_METADATA, "")
        with self.lock:
            self.calls[stage] += 1
            first = self.calls[stage] == 1
            self.requests.setdefault(stage, []).append(request)
            self.metadata.append(metadata)
            self.deadlines.setdefault(stage, []).append(context.time_remaining())
            self.arrived.setdefault(stage, []).append(time.monotonic())
            if job_id:
                if self.active[job_id]:
                    self.overlaps.append((job_id, stage))
                self.active[job_id] += 1
        if job_id:
            context.add_callback(lambda: self._leave(job_id))  # when the call ends, however
        self.reached(stage).set()
        if self.chaos is not None:
            self.chaos(stage, context)
        if stage in self.fail:
            _abort(context, *self.fail[stage])
        if first and stage in self.fail_once:
            _abort(context, *self.fail_once[stage])
        if stage in self.fail_first and self.calls[stage] <= self.fail_first[stage][0]:
            _abort(context, *self.fail_first[stage][1:])
        if stage in self.hang:
            while context.is_active():
                time.sleep(0.02)
            context.abort(grpc.StatusCode.CANCELLED, "gave up")
        gate = self.gates.get(stage)
        if gate is not None:
            while not gate.wait(0.02):
                if not context.is_active():
                    context.abort(grpc.StatusCode.CANCELLED, "caller went away")

    def _leave(self, job_id: str) -> None:
        with self.lock:
            self.active[job_id] -= 1


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str, reason: str = "") -> None:
    """Fail as a stage does (konspekt.errors.abort: the message, an ErrorInfo with the reason)."""
    abort(context, code, message, reason or code.name)


def _progress(fraction: float, message: str) -> common_pb2.Progress:
    return common_pb2.Progress(fraction=fraction, message=message)


class Audio(audio_pb2_grpc.AudioServiceServicer):
    def __init__(self, script: Script, store: ObjectStore) -> None:
        self.script, self.store = script, store

    def _media(self, request: Any) -> audio_pb2.MediaInfo:
        return audio_pb2.MediaInfo(
            container="mov,mp4,m4a,3gp,3g2,mj2",
            duration=self.script.duration,
            has_audio=True,
            has_video=True,
            audio_codec="aac",
            video_codec="h264",
            size_bytes=self.store.size(request.input.ref),
        )

    def Probe(self, request: audio_pb2.ProbeRequest, context: Any) -> audio_pb2.MediaInfo:
        self.script.enter("probe", request, context)
        return self._media(request)

    def Extract(self, request: audio_pb2.ExtractRequest, context: Any) -> Iterator[audio_pb2.ExtractResponse]:
        # A progress event first: after it gRPC cannot retry transparently, so the gateway must.
        yield audio_pb2.ExtractResponse(progress=_progress(0.1, "decoding"))
        self.script.enter("audio", request, context)
        # "extraction" = the first 64 KiB (uploads in the memory test are big)
        resp = self.store.client.get_object(self.store.bucket, request.input.ref.key, length=64 * 1024)
        try:
            data = resp.read()
        finally:
            resp.close()
            resp.release_conn()
        self.store.put_bytes(request.output.key, data, "audio/wav")
        yield audio_pb2.ExtractResponse(progress=_progress(1.0, "decoded"))
        yield audio_pb2.ExtractResponse(
            result=audio_pb2.ExtractResult(
                media=self._media(request),
                audio=request.output,
                audio_duration=self.script.duration,
                audio_bytes=len(data),
            )
        )


class Asr(asr_pb2_grpc.AsrServiceServicer):
    def __init__(self, script: Script, store: ObjectStore) -> None:
        self.script, self.store = script, store

    def Transcribe(
        self, request: asr_pb2.TranscribeRequest, context: Any
    ) -> Iterator[asr_pb2.TranscribeResponse]:
        yield asr_pb2.TranscribeResponse(progress=_progress(0.0, "loading audio"))
        self.script.enter("asr", request, context)
        transcript = common_pb2.Transcript(language=request.language or "en", duration=self.script.duration)
        if not self.script.no_speech:
            transcript.segments.append(common_pb2.Segment(index=0, start=0.0, end=2.5, text="Hello, team."))
            yield asr_pb2.TranscribeResponse(segment=transcript.segments[0])
        self.store.put_bytes(request.output.key, to_json(transcript), "application/json")
        yield asr_pb2.TranscribeResponse(
            result=asr_pb2.TranscribeResult(
                language=transcript.language,
                language_probability=0.99,
                duration=self.script.duration,
                segment_count=len(transcript.segments),
                no_speech=self.script.no_speech,
                transcript=request.output,
                model="fake",
            )
        )


class Summarizer(summarizer_pb2_grpc.SummarizerServiceServicer):
    def __init__(self, script: Script, store: ObjectStore) -> None:
        self.script, self.store = script, store

    def Summarize(
        self, request: summarizer_pb2.SummarizeRequest, context: Any
    ) -> Iterator[summarizer_pb2.SummarizeResponse]:
        yield summarizer_pb2.SummarizeResponse(progress=_progress(0.0, "reading"))
        self.script.enter("summarizer", request, context)
        transcript = transcript_from_json(self.store.get_bytes(request.transcript_ref))
        text = " ".join(s.text for s in transcript.segments) or "No speech was found."
        konspekt = common_pb2.Konspekt(
            language=request.language or transcript.language,
            title="Weekly sync",
            summary=text,
            style=request.style,
        )
        if request.instruction:  # asked again with a wish: the konspekt shows it was heard
            konspekt.title = f"Weekly sync ({request.instruction})"
        if transcript.segments:
            konspekt.key_points.append(common_pb2.Point(text="The team met", at=1.5, segment_index=0))
            konspekt.decisions.append(common_pb2.Point(text="Ship on Friday", at=2.0, segment_index=0))
            konspekt.action_items.append(
                common_pb2.ActionItem(task="Write the notes", owner="Anna", due="Monday", at=62.0)
            )
        yield summarizer_pb2.SummarizeResponse(progress=_progress(0.5, "window 1/2"))
        self.store.put_bytes(request.output.key, to_json(konspekt), "application/json")
        # what the real checks write when they drop invented text (the page folds several notes)
        warnings: list[str] = (
            [
                note(
                    "summary_sentence_dropped",
                    text="Thomas Jefferson chaired the review.",
                    names="Thomas, Jefferson",
                ),
                note("title_dropped", text="Jefferson review", names="Jefferson"),
            ]
            if transcript.segments
            else []
        )
        yield summarizer_pb2.SummarizeResponse(
            result=summarizer_pb2.SummarizeResult(
                konspekt=konspekt, stored=request.output, warnings=warnings, notices=notices(warnings)
            )
        )


class Renderer(renderer_pb2_grpc.RendererServiceServicer):
    def __init__(self, script: Script, store: ObjectStore) -> None:
        self.script, self.store = script, store

    def Render(self, request: renderer_pb2.RenderRequest, context: Any) -> renderer_pb2.RenderResponse:
        self.script.enter("renderer", request, context)
        response = renderer_pb2.RenderResponse()
        konspekt = request.konspekt
        if request.konspekt_ref.key:  # as the real renderer: read the stored konspekt JSON
            konspekt = konspekt_from_json(self.store.get_bytes(request.konspekt_ref))
        for fmt, name in NAMES.items():
            data = rendered(name, request.source_name, konspekt.title)
            key = request.output_prefix.key + name
            self.store.put_bytes(key, data)
            response.files.append(
                renderer_pb2.RenderedFile(
                    format=fmt,
                    name=name,
                    content_type="application/octet-stream",
                    size_bytes=len(data),
                    ref=common_pb2.ObjectRef(bucket=request.output_prefix.bucket, key=key),
                )
            )
        return response


def rendered(name: str, source_name: str, title: str) -> bytes:
    """What the fake renderer writes for one file (tests compare downloads with it); JSON files
    are valid JSON, as the download's content type promises."""
    if name.endswith(".json"):
        return json.dumps({"file": name, "source": source_name, "title": title}, ensure_ascii=False).encode()
    return f"{name} of {source_name}: {title}\n".encode()


STAGES = ("audio", "asr", "summarizer", "renderer")


class FakeStages:
    """All four services (or ``services`` of them) plus gRPC health on one port (the gateway
    gets it as all four targets). A ``port`` of a stopped one can be served again (a restart)."""

    def __init__(
        self,
        store: ObjectStore,
        script: Script | None = None,
        *,
        port: int = 0,
        services: Collection[str] = STAGES,
        interceptors: Sequence[Any] = (),
    ) -> None:
        self.script = script or Script()
        # interceptors: e.g. konspekt.access's, to see what the gateway sends (its token)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), interceptors=list(interceptors))
        if "audio" in services:
            audio_pb2_grpc.add_AudioServiceServicer_to_server(Audio(self.script, store), self.server)
        if "asr" in services:
            asr_pb2_grpc.add_AsrServiceServicer_to_server(Asr(self.script, store), self.server)
        if "summarizer" in services:
            summarizer_pb2_grpc.add_SummarizerServiceServicer_to_server(
                Summarizer(self.script, store), self.server
            )
        if "renderer" in services:
            renderer_pb2_grpc.add_RendererServiceServicer_to_server(Renderer(self.script, store), self.server)
        self.health = health.HealthServicer()
        self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = self.server.add_insecure_port(f"127.0.0.1:{port}")
        if not self.port:
            raise RuntimeError(f"port {port} is taken")

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FakeStages:
        self.server.start()
        return self

    def stop(self) -> None:
        for gate in self.script.gates.values():
            gate.set()
        self.server.stop(grace=None)
