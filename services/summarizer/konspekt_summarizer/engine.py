"""LLM engines behind one small protocol: chat messages + a JSON schema in, JSON text out.

The protocol is what an OpenAI-compatible server (vLLM) offers too: a chat completion
constrained by a JSON schema, so the konspekt logic does not depend on the engine.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from konspekt.errors import FailedPrecondition, Unavailable
from konspekt_summarizer.settings import SummarizerSettings

log = logging.getLogger(__name__)

#: Tokens the chat template adds around the messages (role markers etc.), kept in reserve.
TEMPLATE_OVERHEAD = 64


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
        """
        ...


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
    ) -> Completion:
        with self._lock:
            started = time.monotonic()
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
            parts: list[str] = []
            chunks = 0
            finish = "stop"
            first = 0.0
            try:
                for chunk in cast(Iterator[dict[str, Any]], stream):
                    choice: dict[str, Any] = chunk["choices"][0]
                    delta: dict[str, Any] = dict(choice.get("delta") or {})
                    piece = str(delta.get("content") or "")
                    if piece:
                        if not chunks:
                            first = time.monotonic() - started
                        parts.append(piece)
                        chunks += 1
                        if on_token is not None:
                            on_token(chunks)
                    if choice.get("finish_reason"):
                        finish = str(choice["finish_reason"])
            except ValueError as exc:
                raise FailedPrecondition(f"the model could not take the prompt: {exc}") from exc
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
            text = "".join(parts)
            # n_tokens: what is in the context now = prompt (with template) + generated tokens.
            completion_tokens = max(chunks, self._count_unlocked(text))
            prompt_tokens = max(int(self._llm.n_tokens) - completion_tokens, 0)
            return Completion(
                text=text,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                seconds=time.monotonic() - started,
                finish_reason=finish,
                prompt_seconds=first,
            )

    def _count_unlocked(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))
