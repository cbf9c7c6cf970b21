"""gRPC servicer: transcript in (inline or from the object store), progress + konspekt out."""

from __future__ import annotations

import copy
import logging
import queue
import threading
from collections.abc import Iterator
from typing import Any

import grpc
from prometheus_client import Counter, Histogram

from konspekt.errors import Cancelled, InvalidInput
from konspekt.logs import in_this_context
from konspekt.notices import notices, to_proto
from konspekt.server import Loader, rpc
from konspekt.storage import ObjectStore, output_ref, require_store
from konspekt.transcripts import to_json, transcript_from_json
from konspekt.v1 import common_pb2, summarizer_pb2, summarizer_pb2_grpc
from konspekt_summarizer.engine import CallEngine
from konspekt_summarizer.konspekt import Summarizer
from konspekt_summarizer.prompts import MAX_INSTRUCTION

log = logging.getLogger(__name__)

#: How often the streaming loop looks at whether the client is still there, seconds (a
#: cancellation gRPC reports through its callback is seen at once).
POLL_SECONDS = 0.2

# What the engines report per model call (usage: prompt/completion tokens, seconds), summed
# per konspekt. Rate of tokens over rate of seconds = the fleet's generation speed.
PROMPT_TOKENS = Counter("konspekt_summarizer_prompt_tokens_total", "Prompt tokens given to the model.")
GENERATED_TOKENS = Counter(
    "konspekt_summarizer_generated_tokens_total", "Completion tokens the model generated."
)
MODEL_SECONDS = Counter(
    "konspekt_summarizer_model_seconds_total", "Time spent in model calls (prompt processing included)."
)
MODEL_CALLS = Counter("konspekt_summarizer_model_calls_total", "Model calls (several for long transcripts).")
TOKENS_PER_SECOND = Histogram(
    "konspekt_summarizer_tokens_per_second",
    "Generated tokens per second of model time, per konspekt.",
    buckets=(1, 2, 5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 1000),
)


class SummarizerServicer(summarizer_pb2_grpc.SummarizerServiceServicer):
    def __init__(self, loader: Loader[Summarizer], store: ObjectStore | None = None) -> None:
        self.loader = loader
        self.store = store

    @rpc
    def Summarize(
        self, request: summarizer_pb2.SummarizeRequest, context: grpc.ServicerContext
    ) -> Iterator[summarizer_pb2.SummarizeResponse]:
        yield from self._summarize(self.loader.get(), request, context)

    def _summarize(
        self,
        summarizer: Summarizer,
        request: summarizer_pb2.SummarizeRequest,
        context: grpc.ServicerContext,
    ) -> Iterator[summarizer_pb2.SummarizeResponse]:
        transcript = self._transcript(request)
        if len(request.instruction) > MAX_INSTRUCTION:
            raise InvalidInput(f"the instruction is longer than {MAX_INSTRUCTION} characters")
        output = output_ref(self.store, request.output, "output")  # before any work
        log.info(
            "summarize: %d segments, language %r, style %s",
            len(transcript.segments),
            request.language or transcript.language,
            common_pb2.Style.Name(request.style),
        )

        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        cancelled = threading.Event()
        if not context.add_callback(cancelled.set):  # cancelled, past its deadline, or ended
            cancelled.set()  # already over
        summarizer = for_call(summarizer, cancelled)

        def on_progress(fraction: float, message: str) -> None:
            if cancelled.is_set():
                raise Cancelled("the call was cancelled")
            progress = common_pb2.Progress(fraction=fraction, message=message, notice=to_proto(message))
            events.put(("progress", progress))

        def work() -> None:
            try:
                result = summarizer.summarize(
                    transcript, request.style, request.language, on_progress, instruction=request.instruction
                )
                events.put(("result", result))
            except BaseException as exc:  # noqa: BLE001 - handed to the RPC thread
                events.put(("error", exc))

        threading.Thread(target=in_this_context(work), name="summarize", daemon=True).start()
        while True:
            try:
                kind, value = events.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if cancelled.is_set() or not context.is_active():
                    cancelled.set()
                    log.info("client went away; stopping the generation")
                    return
                continue
            if kind == "progress":
                yield summarizer_pb2.SummarizeResponse(progress=value)
            elif kind == "error":
                if cancelled.is_set():  # it stopped because the caller went away: nobody to tell
                    log.info("client went away; the generation stopped")
                    return
                raise value
            else:
                konspekt, usage, warnings = value
                break

        PROMPT_TOKENS.inc(usage.prompt_tokens)
        GENERATED_TOKENS.inc(usage.completion_tokens)
        MODEL_SECONDS.inc(usage.seconds)
        MODEL_CALLS.inc(usage.calls)
        if usage.seconds > 0 and usage.completion_tokens > 0:
            TOKENS_PER_SECOND.observe(usage.completion_tokens / usage.seconds)
        stored = None
        if output is not None:
            store = require_store(self.store, "output")
            stored = store.put_bytes(output, to_json(konspekt), content_type="application/json")
        for warning in warnings:
            log.warning("%s", warning)
        log.info(
            "konspekt: %d key points, %d decisions, %d action items; %d calls, %.1f s",
            len(konspekt.key_points),
            len(konspekt.decisions),
            len(konspekt.action_items),
            usage.calls,
            usage.seconds,
        )
        yield summarizer_pb2.SummarizeResponse(
            result=summarizer_pb2.SummarizeResult(
                konspekt=konspekt,
                stored=stored,
                usage=usage.to_proto(),
                warnings=warnings,
                notices=notices(warnings),
            )
        )

    def _transcript(self, request: summarizer_pb2.SummarizeRequest) -> common_pb2.Transcript:
        source = request.WhichOneof("transcript_source")
        if source == "transcript":
            transcript = request.transcript
        elif source == "transcript_ref":
            store = require_store(self.store, "transcript_ref")
            transcript = transcript_from_json(store.get_bytes(request.transcript_ref))
        else:
            raise InvalidInput("no transcript given (set transcript_ref or transcript)")
        for i, seg in enumerate(transcript.segments):
            if seg.start < 0 or seg.end < seg.start:
                raise InvalidInput(f"segment {i} has invalid times: start {seg.start}, end {seg.end}")
        return transcript


def for_call(summarizer: Summarizer, cancelled: threading.Event) -> Summarizer:
    """The loaded summarizer with its engine seen through the call's cancel flag: every model
    call of this RPC stops once the flag is set, between tokens and before (and, with
    llama.cpp, during) reading a prompt, so an abandoned konspekt frees the engine at once."""
    view = copy.copy(summarizer)
    view.engine = CallEngine(summarizer.engine, cancelled)
    return view
