"""LLM engines behind one small protocol: chat messages + a JSON schema in, JSON text out.

The protocol is what an OpenAI-compatible server (vLLM) offers too: a chat completion
constrained by a JSON schema, so the konspekt logic does not depend on the engine.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from prometheus_client import Counter

from konspekt.errors import Cancelled, FailedPrecondition, Unavailable
from konspekt_summarizer.settings import SummarizerSettings

log = logging.getLogger(__name__)

#: Tokens the chat template adds around the messages (role markers etc.), kept in reserve.
TEMPLATE_OVERHEAD = 64
#: How often a call waiting for a busy engine looks at its cancel flag, seconds.
CANCEL_POLL_SECONDS = 0.05

#: Model calls stopped because their RPC was cancelled or its deadline passed, by where they
#: stopped: ``waiting`` (before the prompt was read), ``prompt`` (while the engine read it),
#: ``answer`` (between generated tokens).
CANCELLED_CALLS = Counter(
    "konspekt_summarizer_cancelled_calls_total",
    "Model calls stopped because their RPC was cancelled or expired, by where they stopped.",
    ["at"],
)
_WHERE = {
    "waiting": "before reading the prompt",
    "prompt": "while reading the prompt",
    "answer": "while answering",
}


def cancelled_error(at: str, tokens: int = 0) -> Cancelled:
    """The Cancelled a model call raises when its RPC is gone (counted and logged here)."""
    CANCELLED_CALLS.labels(at=at).inc()
    log.info("model call cancelled %s (%d answer tokens)", _WHERE.get(at, at), tokens)
    return Cancelled("the call was cancelled")


def stop_if_cancelled(cancelled: threading.Event | None, at: str, tokens: int = 0) -> None:
    """Raise Cancelled if the call's cancel flag is set."""
    if cancelled is not None and cancelled.is_set():
        raise cancelled_error(at, tokens)


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    #: Why generation stopped: "stop" (the answer is complete) or "length" (cut at max_tokens).
    finish_reason: str = "stop"
    #: Seconds until the first answer token: reading the prompt (0 if the engine cannot tell).
    prompt_seconds: float = 0.0


class LLMEngine(Protocol):
    name: str
    context_size: int
    #: Calls it runs at once: 1 for llama.cpp in process; a server (vLLM) batches several.
    parallel: int

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` in the model's own tokenizer."""
        ...

    def complete_json(
        self,
        messages: list[dict[str, str]],
        schema: dict[str, Any],
        max_tokens: int,
        on_token: Callable[[int], None] | None = None,
    ) -> Completion:
        """One chat completion constrained to ``schema``; ``on_token(n)`` after each token.

        An exception raised by ``on_token`` stops the generation and propagates (cancellation).
        An engine may also take ``cancelled: threading.Event | None = None`` (all of konspekt's
        do): once it is set, the call stops (before reading the prompt, while reading it where
        the engine can, between tokens) and raises Cancelled (:class:`CallEngine`).
        """
        ...


class CallEngine:
    """One RPC's view of the shared engine: each model call of that RPC stops once
    ``cancelled`` is set (the client cancelled, or its deadline passed), so an abandoned
    konspekt frees the engine for the next caller within a token, not after its answer."""

    def __init__(self, engine: LLMEngine, cancelled: threading.Event) -> None:
        self.engine = engine
        self.cancelled = cancelled
        self.name = engine.name
        self.context_size = engine.context_size
        self.parallel = engine.parallel
        self._takes_flag = "cancelled" in inspect.signature(engine.complete_json).parameters

    def count_tokens(self, text: str) -> int:
        return self.engine.count_tokens(text)

    def complete_json(
        self,
        messages: list[dict[str, str]],
        schema: dict[str, Any],
        max_tokens: int,
        on_token: Callable[[int], None] | None = None,
    ) -> Completion:
        stop_if_cancelled(self.cancelled, "waiting")
        if self._takes_flag:
            call: Any = self.engine.complete_json
            return cast(Completion, call(messages, schema, max_tokens, on_token, cancelled=self.cancelled))

        def checked(n: int) -> None:  # an engine without the flag: stop between tokens
            stop_if_cancelled(self.cancelled, "answer", n)
            if on_token is not None:
                on_token(n)

        return self.engine.complete_json(messages, schema, max_tokens, checked)


PING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
    "additionalProperties": False,
}


def ping(engine: LLMEngine) -> Completion:
    """A tiny schema-constrained generation; Unavailable unless the answer is that JSON."""
    done = engine.complete_json(
        [{"role": "user", "content": 'Answer {"ok": true}.'}], PING_SCHEMA, max_tokens=12
    )
    try:
        ok = isinstance(json.loads(done.text), dict)
    except json.JSONDecodeError:
        ok = False
    if not ok:
        raise Unavailable(f"model {engine.name} did not answer the ping: {done.text[:80]!r}")
    log.info("ping answered in %.2f s", done.seconds)
    return done


def load_engine(settings: SummarizerSettings) -> LLMEngine:
    """The engine the settings choose, loaded and answering (it has answered a ping)."""
    if settings.engine == "openai":
        from konspekt_summarizer.openai_engine import OpenAIEngine

        return OpenAIEngine.from_settings(settings)  # waits for the server and pings it
    engine: LLMEngine
    if settings.engine == "vllm":
        from konspekt_summarizer.vllm_engine import VllmEngine

        engine = VllmEngine.from_settings(settings)
    else:
        engine = LlamaCppEngine.from_settings(settings)
    ping(engine)
    return engine


class LlamaCppEngine:
    """llama.cpp on CPU through llama-cpp-python; the chat template comes from the GGUF.

    The KV cache of the previous call's prompt is kept: llama-cpp-python evaluates only what
    follows the longest common prefix (``Llama.generate``), so the system prompt every call of
    a konspekt starts with is read once per konspekt, not once per call."""

    def __init__(
        self,
        model: str | Path,
        *,
        n_ctx: int = 8192,
        threads: int = 2,
        temperature: float = 0.2,
        repeat_penalty: float = 1.1,
    ) -> None:
        from llama_cpp import Llama  # heavy import, only where the engine is built

        path = Path(model)
        if not path.is_file():
            raise FailedPrecondition(f"model file {path} does not exist")
        started = time.monotonic()
        try:
            self._llm = Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise FailedPrecondition(f"cannot load model {path}: {exc}") from exc
        meta: dict[str, str] = getattr(self._llm, "metadata", {}) or {}
        self.name = meta.get("general.name") or path.parent.name or path.stem
        self.context_size = int(self._llm.n_ctx())
        self.parallel = 1  # one llama.cpp context: one generation at a time
        self.temperature = temperature
        self.repeat_penalty = repeat_penalty
        # llama.cpp contexts are not thread-safe: one generation (or tokenization) at a time.
        self._lock = threading.Lock()
        log.info(
            "loaded %s (%s) in %.1f s: n_ctx %d, %d threads",
            self.name,
            path,
            time.monotonic() - started,
            self.context_size,
            threads,
        )

    @classmethod
    def from_settings(cls, settings: SummarizerSettings) -> LlamaCppEngine:
        return cls(
            settings.model,
            n_ctx=settings.n_ctx,
            threads=settings.n_threads,
            temperature=settings.temperature,
            repeat_penalty=settings.repeat_penalty,
        )

    def count_tokens(self, text: str) -> int:
        with self._lock:
            return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def ping(self) -> None:
        """A tiny constrained generation: the model loads *and* answers (health waits for this)."""
        ping(self)

    def complete_json(
        self,
        messages: list[dict[str, str]],
        schema: dict[str, Any],
        max_tokens: int,
        on_token: Callable[[int], None] | None = None,
        cancelled: threading.Event | None = None,
    ) -> Completion:
        """``cancelled`` set: stops while waiting for the engine, while llama.cpp reads the
        prompt (its abort callback) and between tokens, raising Cancelled."""
        self._acquire(cancelled)
        try:
            stop_if_cancelled(cancelled, "waiting")
            with self._abort_when(cancelled) as disarm:
                return self._complete(messages, schema, max_tokens, on_token, cancelled, disarm)
        finally:
            self._lock.release()

    def _acquire(self, cancelled: threading.Event | None) -> None:
        """The engine's lock; a cancelled call stops waiting for it."""
        if cancelled is None:
            self._lock.acquire()
            return
        while not self._lock.acquire(timeout=CANCEL_POLL_SECONDS):
            stop_if_cancelled(cancelled, "waiting")

    @contextlib.contextmanager
    def _abort_when(self, cancelled: threading.Event | None) -> Iterator[Callable[[], None]]:
        """Until the returned ``disarm()`` (called at the first answer token), llama.cpp's abort
        callback stops the prompt's decode once ``cancelled`` is set: llama_decode returns 2,
        llama-cpp-python raises RuntimeError, and the next call drops what the aborted batch
        left in the cache (``Llama.eval`` removes the KV cells past the tokens it kept). Only
        while reading the prompt: the callback runs for every node of the graph, which costs
        little in a batch of prompt tokens but much in a one-token decode; tokens are checked
        between them instead."""
        if cancelled is None:
            yield lambda: None
            return
        import llama_cpp

        callback = llama_cpp.ggml_abort_callback(lambda _data: cancelled.is_set())
        ctx = self._llm._ctx.ctx
        armed = [True]

        def disarm() -> None:
            if armed[0]:
                armed[0] = False
                llama_cpp.llama_set_abort_callback(ctx, llama_cpp.ggml_abort_callback(), None)

        llama_cpp.llama_set_abort_callback(ctx, callback, None)
        try:
            yield disarm
        finally:
            disarm()

    def _complete(
        self,
        messages: list[dict[str, str]],
        schema: dict[str, Any],
        max_tokens: int,
        on_token: Callable[[int], None] | None,
        cancelled: threading.Event | None,
        disarm: Callable[[], None],
    ) -> Completion:
        from konspekt_summarizer.stream import StreamedCompletion  # it builds on this module

        answer = StreamedCompletion(on_token, cancelled)
        try:
            stream = self._llm.create_chat_completion(
                messages=messages,  # type: ignore[arg-type]
                response_format={"type": "json_object", "schema": schema},
                max_tokens=max_tokens,
                temperature=self.temperature,
                repeat_penalty=self.repeat_penalty,
                stream=True,
            )
        except ValueError as exc:  # e.g. the prompt exceeds the context window
            raise FailedPrecondition(f"the model could not take the prompt: {exc}") from exc
        try:
            for chunk in cast(Iterator[dict[str, Any]], stream):
                disarm()  # the prompt is read
                answer.check()
                answer.add(chunk["choices"][0])
        except ValueError as exc:
            raise FailedPrecondition(f"the model could not take the prompt: {exc}") from exc
        except RuntimeError as exc:  # llama_decode returned 2: aborted by the callback
            answer.check(cause=exc)
            raise
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        # n_tokens: what is in the context now = prompt (with template) + generated tokens.
        completion_tokens = max(answer.chunks, self._count_unlocked(answer.text))
        prompt_tokens = max(int(self._llm.n_tokens) - completion_tokens, 0)
        return answer.completion(prompt_tokens, completion_tokens)

    def _count_unlocked(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))
