"""Collecting a streamed chat completion: the one accumulator of the engines that read an
OpenAI-style chunk stream (llama.cpp's ``create_chat_completion(stream=True)``, an
OpenAI-compatible server's server-sent events).

Each chunk's choices carry a ``delta`` with a piece of the answer and, at the end, a
``finish_reason``. The accumulator joins the pieces, counts them (one piece is one token in
both streams), times the first one (the prompt's reading), calls ``on_token`` after each and
stops once the call's cancel flag is set.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from konspekt_summarizer.engine import Completion, cancelled_error


class StreamedCompletion:
    """One streamed completion being read: ``check()`` before each chunk, ``add(choice)`` for
    each choice of it, ``completion(...)`` at the end. Started (its clock) when made."""

    def __init__(
        self,
        on_token: Callable[[int], None] | None = None,
        cancelled: threading.Event | None = None,
    ) -> None:
        self.on_token = on_token
        self.cancelled = cancelled
        self.started = time.monotonic()
        self.parts: list[str] = []
        #: Pieces of the answer so far (one token each).
        self.chunks = 0
        #: Why generation stopped: the last ``finish_reason`` a choice carried ("stop" if none).
        self.finish = "stop"
        #: Seconds from the start to the first piece of the answer (0 until it comes).
        self.first = 0.0

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def at(self) -> str:
        """Where a cancellation would stop the call: ``prompt`` before the first piece, then ``answer``."""
        return "answer" if self.chunks else "prompt"

    def check(self, cause: BaseException | None = None) -> None:
        """Raise Cancelled (counted and logged, ``from cause`` if given) if the cancel flag is set.

        Before each chunk; and where reading the stream failed, with the error as ``cause``:
        the failure may be the cancellation itself (an aborted decode, a socket shut down)."""
        if self.cancelled is None or not self.cancelled.is_set():
            return
        error = cancelled_error(self.at, self.chunks)
        if cause is None:
            raise error
        raise error from cause

    def add(self, choice: dict[str, Any]) -> None:
        """One choice of a chunk: its ``delta``'s content (``on_token`` after it) and finish reason.

        An exception raised by ``on_token`` propagates (it stops the generation)."""
        piece = str((choice.get("delta") or {}).get("content") or "")
        if piece:
            if not self.chunks:
                self.first = time.monotonic() - self.started
            self.parts.append(piece)
            self.chunks += 1
            if self.on_token is not None:
                self.on_token(self.chunks)
        if choice.get("finish_reason"):
            self.finish = str(choice["finish_reason"])

    def completion(self, prompt_tokens: int, completion_tokens: int) -> Completion:
        """The result, with the token counts the engine found (its seconds end now)."""
        return Completion(
            text=self.text,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            seconds=time.monotonic() - self.started,
            finish_reason=self.finish,
            prompt_seconds=self.first,
        )
