"""vLLM in process (GPU): for one pod that holds both the summarizer and the model.

vLLM's AsyncLLMEngine runs on an asyncio loop in a thread of its own; ``complete_json`` (called
from the summarizer's worker threads) submits a request there and streams the token counts back,
so progress is reported per token and an exception from ``on_token`` aborts the request.
Output is constrained by the JSON schema through vLLM's structured outputs (``StructuredOutputsParams``;
``GuidedDecodingParams`` on vLLM releases before it).

vllm is imported lazily: it is a CUDA build that is not installed on CPU machines, where selecting
this engine fails at once with VLLM_MISSING. Nothing here runs in this repository's CI.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from konspekt.errors import FailedPrecondition, Unavailable
from konspekt_summarizer.engine import CANCEL_POLL_SECONDS, Completion, stop_if_cancelled
from konspekt_summarizer.settings import VLLM_MISSING, SummarizerSettings

log = logging.getLogger(__name__)

#: Seconds the caller waits for the next token before giving up on the engine.
TOKEN_TIMEOUT = 300.0


def import_vllm() -> Any:
    try:
        return importlib.import_module("vllm")
    except ImportError as exc:
        raise FailedPrecondition(VLLM_MISSING) from exc


class VllmEngine:
    def __init__(
        self,
        model: str,
        *,
        max_model_len: int = 8192,
        gpu_memory_utilization: float = 0.9,
        temperature: float = 0.2,
        repeat_penalty: float = 1.1,
        parallel: int = 4,
    ) -> None:
        self._vllm = import_vllm()
        arg_utils = importlib.import_module("vllm.engine.arg_utils")
        started = time.monotonic()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="vllm-loop", daemon=True)
        self._thread.start()
        # prefix caching: every call of a konspekt starts with the same system prompt
        args = arg_utils.AsyncEngineArgs(
            model=model,
            max_model_len=max_model_len,
            gpu_memory_utilization=gpu_memory_utilization,
            enable_prefix_caching=True,
        )

        async def create() -> tuple[Any, Any]:
            engine = self._vllm.AsyncLLMEngine.from_engine_args(args)
            tokenizer = engine.get_tokenizer()
            if inspect.isawaitable(tokenizer):
                tokenizer = await tokenizer
            return engine, tokenizer

        try:
            self._engine, self._tokenizer = asyncio.run_coroutine_threadsafe(create(), self._loop).result()
        except Exception as exc:
            raise FailedPrecondition(f"vLLM could not load {model}: {exc}") from exc
        self.name = model
        self.context_size = max_model_len
        self.parallel = parallel  # vLLM batches concurrent requests
        self.temperature = temperature
        self.repeat_penalty = repeat_penalty
        log.info(
            "vLLM loaded %s in %.1f s: max_model_len %d", model, time.monotonic() - started, max_model_len
        )

    @classmethod
    def from_settings(cls, settings: SummarizerSettings) -> VllmEngine:
        return cls(
            settings.model,
            max_model_len=settings.context_length,
            gpu_memory_utilization=settings.gpu_memory_utilization,
            temperature=settings.temperature,
            repeat_penalty=settings.repeat_penalty,
            parallel=settings.parallel_requests,
        )

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False)) if text else 0

    def alive(self) -> bool:
        """Whether the engine's loop still runs and vLLM has not marked its engine dead."""
        return self._thread.is_alive() and not bool(getattr(self._engine, "errored", False))

    def _sampling(self, schema: dict[str, Any], max_tokens: int) -> Any:
        params = importlib.import_module("vllm.sampling_params")
        common = {
            "max_tokens": max_tokens,
            "temperature": self.temperature,
            "repetition_penalty": self.repeat_penalty,
        }
        if hasattr(params, "StructuredOutputsParams"):
            return params.SamplingParams(
                structured_outputs=params.StructuredOutputsParams(json=schema), **common
            )
        return params.SamplingParams(guided_decoding=params.GuidedDecodingParams(json=schema), **common)

    def complete_json(
        self,
        messages: list[dict[str, str]],
        schema: dict[str, Any],
        max_tokens: int,
        on_token: Callable[[int], None] | None = None,
        cancelled: threading.Event | None = None,
    ) -> Completion:
        """``cancelled`` set: the request is aborted in vLLM (before its prompt is scheduled,
        while it is read, or between tokens), raising Cancelled."""
        stop_if_cancelled(cancelled, "waiting")
        prompt = self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        sampling = self._sampling(schema, max_tokens)
        request_id = uuid.uuid4().hex
        events: queue.Queue[tuple[str, Any]] = queue.Queue()

        async def generate() -> None:
            try:
                async for out in self._engine.generate(prompt, sampling, request_id):
                    events.put(("out", out))
                events.put(("done", None))
            except Exception as exc:  # noqa: BLE001 - handed to the calling thread
                events.put(("error", exc))

        started = time.monotonic()
        future = asyncio.run_coroutine_threadsafe(generate(), self._loop)
        last: Any = None
        first = 0.0
        try:
            quiet_since = time.monotonic()
            while True:
                try:
                    kind, value = events.get(
                        timeout=CANCEL_POLL_SECONDS if cancelled is not None else TOKEN_TIMEOUT
                    )
                except queue.Empty as exc:
                    stop_if_cancelled(cancelled, "answer" if last is not None else "prompt")
                    if time.monotonic() - quiet_since < TOKEN_TIMEOUT:
                        continue
                    raise Unavailable(f"vLLM produced no token for {TOKEN_TIMEOUT:.0f} s") from exc
                quiet_since = time.monotonic()
                if kind == "done":
                    break
                if kind == "error":
                    dead = "dead" in type(value).__name__.lower()
                    error = Unavailable if dead else FailedPrecondition
                    raise error(f"vLLM failed: {type(value).__name__}: {value}") from value
                if last is None:
                    first = time.monotonic() - started
                last = value
                stop_if_cancelled(cancelled, "answer", len(last.outputs[0].token_ids))
                if on_token is not None:
                    on_token(len(last.outputs[0].token_ids))
        except BaseException:
            asyncio.run_coroutine_threadsafe(self._abort(request_id), self._loop)
            future.cancel()
            raise
        if last is None:
            raise FailedPrecondition("vLLM returned no output")
        output = last.outputs[0]
        return Completion(
            text=str(output.text),
            prompt_tokens=len(last.prompt_token_ids or []),
            completion_tokens=len(output.token_ids),
            seconds=time.monotonic() - started,
            finish_reason=str(output.finish_reason or "stop"),
            prompt_seconds=first,
        )

    async def _abort(self, request_id: str) -> None:
        result = self._engine.abort(request_id)
        if inspect.isawaitable(result):
            await result
