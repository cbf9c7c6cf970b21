"""An OpenAI-compatible chat server as the engine: vLLM's (how ops run the fine-tuned Llama on
Kubernetes) or llama-cpp-python's. Streaming chat completions constrained by the konspekt's JSON
schema; tokens counted by the server's own tokenizer endpoint where it has one.

Schema-constrained output is asked for in one of two dialects (setting ``json_mode``):

- ``json_schema``: ``{"type": "json_schema", "json_schema": {"name": ..., "schema": ...}}``
  (OpenAI, vLLM);
- ``json_object``: ``{"type": "json_object", "schema": ...}`` (llama-cpp-python's server, which
  rejects the first; vLLM accepts this one but ignores the schema);
- ``auto``: the first one the server accepts at load, tried with the ping.

Errors: the server unreachable, timing out, dropping the stream or answering 5xx/429 raises
Unavailable (retryable); a request it refuses (4xx, e.g. a prompt over its context) raises
FailedPrecondition.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

import httpx

from konspekt.errors import FailedPrecondition, StageError, Unavailable
from konspekt_summarizer.engine import CANCEL_POLL_SECONDS, Completion, ping, stop_if_cancelled
from konspekt_summarizer.settings import SummarizerSettings
from konspekt_summarizer.stream import StreamedCompletion

log = logging.getLogger(__name__)
# httpx logs every request at INFO: one per token count here.
logging.getLogger("httpx").setLevel(logging.WARNING)

JsonMode = Literal["json_schema", "json_object"]
#: Bytes of UTF-8 per token assumed when the server has no tokenizer endpoint: an overestimate
#: of the token count for English and Russian alike (so windows stay inside the context).
BYTES_PER_TOKEN_ESTIMATE = 3
#: Tokens the chat template adds per message, for the prompt count when the server sends no usage.
PER_MESSAGE_OVERHEAD = 8
#: Seconds the liveness probe waits for the server's answer.
PROBE_TIMEOUT = 5.0


class ServerError(StageError):
    """An HTTP error answer, with its status (for the json_mode probe)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = Unavailable.code if status in (408, 429) or status >= 500 else FailedPrecondition.code


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN_ESTIMATE)


def response_format(mode: JsonMode, schema: dict[str, Any]) -> dict[str, Any]:
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "konspekt", "schema": schema, "strict": True}}
    return {"type": "json_object", "schema": schema}


def api_root(base_url: str) -> str:
    """``http://host:8000/v1`` -> ``http://host:8000``: the tokenizer endpoints live at the root."""
    base = base_url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


class OpenAIEngine:
    """Chat completions from an OpenAI-compatible server; same protocol as LlamaCppEngine."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str = "",
        api_key: str | None = None,
        n_ctx: int = 8192,
        timeout: float = 600.0,
        json_mode: Literal["auto", "json_schema", "json_object"] = "auto",
        temperature: float = 0.2,
        repeat_penalty: float = 1.1,
        parallel: int = 4,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.parallel = parallel  # the server batches concurrent requests
        self.root = api_root(self.base_url)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))
        self.temperature = temperature
        self.repeat_penalty = repeat_penalty
        self._modes: list[JsonMode] = ["json_schema", "json_object"] if json_mode == "auto" else [json_mode]
        self.json_mode: JsonMode = self._modes[0]
        self.name, served_ctx = self._served_model(model)
        self.context_size = min(n_ctx, served_ctx) if served_ctx else n_ctx
        self._counter = self._find_tokenizer()
        self.count_tokens: Callable[[str], int] = functools.lru_cache(maxsize=8192)(self._counter)

    @classmethod
    def from_settings(cls, settings: SummarizerSettings) -> OpenAIEngine:
        """Connects (waiting up to ``startup_wait`` s for the server to come up) and pings."""
        deadline = time.monotonic() + settings.startup_wait
        while True:
            try:
                engine = cls(
                    settings.base_url,
                    model=settings.api_model,
                    api_key=settings.api_key.get_secret_value() if settings.api_key else None,
                    n_ctx=settings.n_ctx,
                    timeout=settings.request_timeout,
                    json_mode=settings.json_mode,
                    temperature=settings.temperature,
                    repeat_penalty=settings.repeat_penalty,
                    parallel=settings.parallel_requests,
                )
                engine.ping()
                return engine
            except Unavailable as exc:
                if time.monotonic() >= deadline:
                    raise
                log.warning("model server %s not ready (%s); retrying", settings.base_url, exc.message)
                time.sleep(min(5.0, max(deadline - time.monotonic(), 0.1)))

    # -- discovery --------------------------------------------------------------------------------

    def _served_model(self, wanted: str) -> tuple[str, int]:
        """The model name to send, and the context the server reports for it (0 if none)."""
        data = self._get_json(f"{self.base_url}/models")
        models = [m for m in data.get("data", []) if isinstance(m, dict) and m.get("id")]
        if not models:
            raise FailedPrecondition(f"the model server {self.base_url} lists no models")
        if wanted:
            match = [m for m in models if m["id"] == wanted]
            if not match:
                ids = ", ".join(str(m["id"]) for m in models)
                raise FailedPrecondition(f"the model server serves {ids}, not {wanted}")
            chosen = match[0]
        else:
            chosen = models[0]
        served_ctx = chosen.get("max_model_len")  # vLLM reports it
        return str(chosen["id"]), int(served_ctx) if isinstance(served_ctx, int) else 0

    def _find_tokenizer(self) -> Callable[[str], int]:
        """vLLM's POST /tokenize, llama-cpp-python's /extras/tokenize/count, else an estimate."""
        candidates: list[tuple[str, Callable[[str], dict[str, Any]]]] = [
            (
                "/tokenize",
                lambda text: {"model": self.name, "prompt": text, "add_special_tokens": False},
            ),
            ("/extras/tokenize/count", lambda text: {"input": text}),
        ]
        for path, body in candidates:
            url = f"{self.root}{path}"
            try:
                reply = self._http.post(url, json=body("hello"))
                count = reply.json().get("count") if reply.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                continue
            if isinstance(count, int):
                log.info("counting tokens with %s", url)

                def counter(text: str, url: str = url, body: Callable[[str], dict[str, Any]] = body) -> int:
                    if not text:
                        return 0
                    return int(self._post_json(url, body(text))["count"])

                return counter
        log.warning(
            "model server %s has no tokenizer endpoint: token counts are estimated (%d bytes/token)",
            self.base_url,
            BYTES_PER_TOKEN_ESTIMATE,
        )
        return estimate_tokens

    # -- generation -------------------------------------------------------------------------------

    def ping(self) -> None:
        """A tiny generation (in ``auto`` mode also finds the JSON dialect the server accepts)."""
        last: ServerError | None = None
        for mode in self._modes:
            self.json_mode = mode
            try:
                ping(self)
            except ServerError as exc:
                if exc.code == Unavailable.code and exc.status != 500:
                    raise Unavailable(exc.message) from exc
                log.info("json_mode %s refused by the server: %s", mode, exc.message)
                last = exc
                continue
            log.info("model %s at %s answers (json_mode %s)", self.name, self.base_url, mode)
            return
        assert last is not None
        raise FailedPrecondition(f"the model server accepts no JSON-schema request: {last.message}")

    def complete_json(
        self,
        messages: list[dict[str, str]],
        schema: dict[str, Any],
        max_tokens: int,
        on_token: Callable[[int], None] | None = None,
        cancelled: threading.Event | None = None,
    ) -> Completion:
        """``cancelled`` set: the stream is closed (between chunks, or by shutting the socket
        down while the server still reads the prompt); the server stops generating when its
        client goes (vLLM aborts the request, llama-cpp-python's server stops); Cancelled."""
        stop_if_cancelled(cancelled, "waiting")
        body = {
            "model": self.name,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": self.temperature,
            # vLLM's and llama-cpp-python's names for the same thing; each ignores the other's
            "repetition_penalty": self.repeat_penalty,
            "repeat_penalty": self.repeat_penalty,
            "response_format": response_format(self.json_mode, schema),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        answer = StreamedCompletion(on_token, cancelled)
        usage: dict[str, Any] = {}
        url = f"{self.base_url}/chat/completions"
        try:
            with self._http.stream("POST", url, json=body) as reply, _hang_up_when(cancelled, reply):
                if reply.status_code >= 400:
                    reply.read()
                    raise self._error(reply)
                for line in reply.iter_lines():
                    answer.check()
                    if not line.startswith("data:"):
                        continue
                    payload = line[len("data:") :].strip()
                    if payload == "[DONE]":
                        break
                    chunk = json.loads(payload)
                    if chunk.get("error"):
                        raise FailedPrecondition(f"the model server failed: {_message(chunk)}")
                    if chunk.get("usage"):
                        usage = dict(chunk["usage"])
                    for choice in chunk.get("choices") or []:
                        answer.add(choice)
        except (httpx.TransportError, httpx.StreamError, json.JSONDecodeError) as exc:
            answer.check(cause=exc)  # we hung up
            if isinstance(exc, httpx.TimeoutException):
                raise Unavailable(f"the model server {self.base_url} timed out: {exc}") from exc
            if isinstance(exc, json.JSONDecodeError):
                raise Unavailable(f"the model server sent a broken stream: {exc}") from exc
            raise Unavailable(f"the model server {self.base_url} is unreachable: {exc}") from exc
        completion_tokens = int(usage.get("completion_tokens") or 0) or max(
            answer.chunks, self._count(answer.text)
        )
        prompt_tokens = int(usage.get("prompt_tokens") or 0) or sum(
            self._count(m["content"]) + PER_MESSAGE_OVERHEAD for m in messages
        )
        return answer.completion(prompt_tokens, completion_tokens)

    def alive(self) -> bool:
        """Whether the model server still answers HTTP (the stage's health follows this).

        ``GET /health`` (vLLM's: 200 while its engine works, 5xx once it died); any answer
        below 500 counts, so llama-cpp-python's server, which has no such route (404), is alive
        while it answers at all. Not an endpoint that needs the model: llama-cpp-python's server
        interrupts a running generation for every request that does.
        """
        try:
            reply = self._http.get(f"{self.root}/health", timeout=PROBE_TIMEOUT)
        except httpx.HTTPError as exc:
            log.info("model server %s does not answer: %s", self.base_url, exc)
            return False
        if reply.status_code >= 500:
            log.info("model server %s: /health answered %d", self.base_url, reply.status_code)
            return False
        return True

    def close(self) -> None:
        self._http.close()

    # -- HTTP helpers -----------------------------------------------------------------------------

    def _count(self, text: str) -> int:
        return self.count_tokens(text) if len(text) < 20000 else self._counter(text)

    def _get_json(self, url: str) -> dict[str, Any]:
        return self._request("GET", url, None)

    def _post_json(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", url, body)

    def _request(self, method: str, url: str, body: dict[str, Any] | None) -> dict[str, Any]:
        try:
            reply = self._http.request(method, url, json=body)
        except httpx.TimeoutException as exc:
            raise Unavailable(f"the model server {self.base_url} timed out: {exc}") from exc
        except httpx.TransportError as exc:
            raise Unavailable(f"the model server {self.base_url} is unreachable: {exc}") from exc
        if reply.status_code >= 400:
            raise self._error(reply)
        try:
            data = reply.json()
        except ValueError as exc:
            raise Unavailable(f"the model server sent no JSON for {url}: {reply.text[:200]!r}") from exc
        if not isinstance(data, dict):
            raise Unavailable(f"the model server sent unexpected JSON for {url}")
        return data

    def _error(self, reply: httpx.Response) -> ServerError:
        try:
            detail = _message(reply.json())
        except ValueError:
            detail = reply.text[:300]
        return ServerError(
            reply.status_code, f"the model server answered {reply.status_code} for {reply.url}: {detail}"
        )


@contextlib.contextmanager
def _hang_up_when(cancelled: threading.Event | None, reply: httpx.Response) -> Iterator[None]:
    """While the block runs, a watcher shuts the response's socket down once ``cancelled`` is
    set: a read blocked while the server reads a long prompt returns at once (closing the
    response from another thread would not wake it)."""
    stream = reply.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if cancelled is None or not isinstance(sock, socket.socket):
        yield
        return
    done = threading.Event()

    def watch() -> None:
        while not done.wait(CANCEL_POLL_SECONDS):
            if cancelled.is_set():
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                return

    watcher = threading.Thread(target=watch, name="hang-up", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def _message(data: Any) -> str:
    """The human part of an error body: OpenAI's {"error": {"message"}}, FastAPI's {"detail"}."""
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
        if isinstance(err, str):
            return err[:300]
        if data.get("detail"):
            return str(data["detail"])[:300]
        if data.get("message"):
            return str(data["message"])[:300]
    return str(data)[:300]
