"""Streaming uploads with bounded memory: request body → bounded queue → ``put_stream`` in a
thread (multipart to the object store). Nothing is spooled to RAM or to local disk.

Also what keeps one owner from taking everything: per-owner counts of things under way
(uploads, event streams) refused with 429 and ``Retry-After`` past their limit, and the pace
an upload must keep (a minimum average rate after a grace period, a time limit)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from konspekt.errors import StageError
from konspekt.storage import ObjectStore
from konspekt_gateway import metrics as gateway_metrics
from konspekt_gateway.i18n import LocalizedError

if TYPE_CHECKING:
    from konspekt_gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

#: Chunks waiting between the request and the store writer (each at most ~64 KiB from uvicorn).
QUEUE_CHUNKS = 32
#: Most bytes one read() returns. The store asks for 16 MiB parts and appends what each read
#: returns; handing them over in 4 MiB pieces keeps fewer 16 MiB copies alive at once.
READ_MAX = 4 * 1024 * 1024
#: A reader thread gives up if no data arrives for this long (a stalled client).
IDLE_SECONDS = 600.0
#: Form fields other than the file are short; anything longer is cut.
MAX_FIELD_BYTES = 1024


class UploadError(LocalizedError):
    """Rejects an upload with an HTTP status, an error code and words for people."""


def too_large(limit_mb: int) -> UploadError:
    return UploadError(413, "too_large", limit_mb=limit_mb)


#: Retry-After (seconds) of the per-owner limits: an upload or a stream may end soon; a job
#: takes minutes.
RETRY_UPLOADS = 15
RETRY_STREAMS = 30
RETRY_JOBS = 60


class OwnerLimit:
    """How many of one kind of thing (uploads, event streams) each owner has under way, held
    to ``limit`` per owner: one more is refused with 429, ``code`` and ``Retry-After``."""

    def __init__(self, limit: int, code: str, retry_after: int) -> None:
        self.limit = limit
        self.code = code
        self.retry = retry_after
        self.counts: collections.Counter[str] = collections.Counter()

    def __getitem__(self, owner: str) -> int:
        return self.counts[owner]

    def take(self, owner: str) -> None:
        if self.counts[owner] >= self.limit:
            raise UploadError(429, self.code, limit=self.limit).retry_after(self.retry)
        self.counts[owner] += 1

    def release(self, owner: str) -> None:
        self.counts[owner] -= 1
        if self.counts[owner] <= 0:
            del self.counts[owner]

    @contextlib.contextmanager
    def held(self, owner: str) -> Iterator[None]:
        self.take(owner)
        try:
            yield
        finally:
            self.release(owner)


class OwnedStream(StreamingResponse):
    """A streaming response that calls ``on_close`` once it has ended, however it ends (the
    stream finished, the client went away, the server stopped): an event stream hands its
    owner's place back."""

    def __init__(self, content: AsyncIterator[str], *, on_close: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()


@dataclass(frozen=True)
class Pace:
    """How fast an upload must go, from the moment it has an upload slot: on average at least
    ``min_rate`` bytes/s once ``grace`` seconds have passed, and all of it within
    ``max_seconds``. Time the gateway spends waiting for the object store (back-pressure) is
    not counted against the client."""

    min_rate: float = 0.0
    grace: float = 30.0
    max_seconds: float = math.inf

    @classmethod
    def of(cls, settings: GatewaySettings) -> Pace:
        return cls(
            min_rate=settings.upload_min_rate_kib * 1024,
            grace=settings.upload_grace_seconds,
            max_seconds=settings.upload_max_seconds,
        )

    def deadline(self, started: float, size: int, excused: float) -> float:
        """The loop time by which more bytes must have arrived: when the average would fall
        under ``min_rate``, or the time limit."""
        allowed = self.max_seconds
        if self.min_rate > 0:
            allowed = min(allowed, max(self.grace, size / self.min_rate))
        return started + excused + allowed

    def error(self, elapsed: float) -> UploadError:
        if elapsed >= self.max_seconds:
            if self.max_seconds >= 120:
                return UploadError(408, "upload_too_long", minutes=f"{self.max_seconds / 60:.0f}")
            return UploadError(
                408, "upload_too_long", "upload_too_long_seconds", seconds=f"{self.max_seconds:g}"
            )
        return UploadError(408, "upload_too_slow", rate=f"{self.min_rate / 1024:g}")


class Aborted(Exception):
    """Raised inside the writer thread to stop an upload (deliberately not an OSError, which
    the object store would translate)."""


_Item = bytes | BaseException | None


class ChunkPipe:
    """Async producer, blocking consumer: ``read`` runs in the writer thread and blocks until
    the event loop has put enough data (the queue is bounded: back-pressure on the client)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int = QUEUE_CHUNKS) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize)
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._eof = False

    # -- event loop side ----------------------------------------------------------------------
    async def put(self, chunk: bytes, writer: asyncio.Future[Any]) -> None:
        """Queue a chunk; returns early if the writer has died (so it cannot block forever)."""
        if not self._queue.full():
            self._queue.put_nowait(chunk)
            return
        put = asyncio.ensure_future(self._queue.put(chunk))
        await asyncio.wait({put, writer}, return_when=asyncio.FIRST_COMPLETED)
        if not put.done():
            put.cancel()

    async def close(self) -> None:
        await self._queue.put(None)

    def abort(self, reason: str) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(Aborted(reason))

    async def _take(self) -> list[_Item]:
        items = [await self._queue.get()]
        while not self._queue.empty():
            items.append(self._queue.get_nowait())
        return items

    # -- writer thread side -------------------------------------------------------------------
    def read(self, size: int = -1) -> bytes:
        size = READ_MAX if size < 0 else min(size, READ_MAX)
        while not self._eof and self._buffered < size:
            future = asyncio.run_coroutine_threadsafe(self._take(), self._loop)
            try:
                items = future.result(IDLE_SECONDS)
            except TimeoutError as exc:
                future.cancel()
                raise Aborted("no data arrived for too long") from exc
            for item in items:
                if item is None:
                    self._eof = True
                elif isinstance(item, BaseException):
                    raise item
                else:
                    self._chunks.append(item)
                    self._buffered += len(item)
        want = min(size, self._buffered)
        pieces = []
        taken = 0
        while taken < want:
            chunk = self._chunks.popleft()
            if taken + len(chunk) > want:
                cut = want - taken
                self._chunks.appendleft(chunk[cut:])
                chunk = chunk[:cut]
            pieces.append(chunk)
            taken += len(chunk)
        self._buffered -= taken
        return b"".join(pieces)


async def store_stream(
    store: ObjectStore,
    key: str,
    chunks: AsyncIterator[bytes],
    *,
    limit: int,
    limit_mb: int,
    content_type: str,
    executor: Executor,
    pace: Pace | None = None,
) -> int:
    """Stream ``chunks`` into ``key``; returns the size. On any failure (too large, too slow,
    client gone, store down) the partial upload is aborted and removed, and the error raised."""
    pace = pace or Pace()
    loop = asyncio.get_running_loop()
    pipe = ChunkPipe(loop)
    writer: asyncio.Future[Any] = asyncio.ensure_future(
        loop.run_in_executor(executor, store.put_stream, key, cast(BinaryIO, pipe), -1, content_type, 1)
    )
    size = 0
    started = loop.time()
    excused = 0.0  # seconds spent waiting for the store, not for the client
    timer: asyncio.Timeout | None = None
    try:
        async with asyncio.timeout_at(pace.deadline(started, 0, 0.0)) as timer:
            async for chunk in chunks:
                if not chunk:
                    continue
                size += len(chunk)
                gateway_metrics.upload_received(len(chunk))
                if size > limit:
                    raise too_large(limit_mb)
                if writer.done():
                    break
                before = loop.time()
                await pipe.put(chunk, writer)
                excused += loop.time() - before
                timer.reschedule(pace.deadline(started, size, excused))
        if not writer.done():
            await pipe.close()
        await writer
    except BaseException as exc:
        gateway_metrics.upload_finished(stored=False)
        pipe.abort(f"upload stopped: {type(exc).__name__}")
        with contextlib.suppress(Exception):
            await writer
        await _remove(store, key)
        if isinstance(exc, Aborted):
            raise UploadError(400, "upload_stalled") from exc
        if isinstance(exc, TimeoutError) and timer is not None and timer.expired():
            elapsed = loop.time() - started - excused
            log.info("upload cut off after %.0f s at %d bytes (too slow or too long)", elapsed, size)
            raise pace.error(elapsed) from None
        raise
    if size == 0:
        await _remove(store, key)
        gateway_metrics.upload_finished(stored=False)
        raise UploadError(400, "empty_file")
    gateway_metrics.upload_finished(stored=True)
    return size


async def _remove(store: ObjectStore, key: str) -> None:
    try:
        await asyncio.to_thread(store.delete, key)
    except StageError as exc:
        log.warning("could not remove the partial upload %s: %s", key, exc.message)


class FormFile:
    """Pulls the ``file`` field out of a multipart/form-data body with python-multipart's
    push parser, chunk by chunk. Other fields (language, style) land in ``fields``."""

    def __init__(self, content_type: str, file_field: str = "file") -> None:
        _ctype, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        if not boundary:
            raise UploadError(400, "invalid_request", "no_boundary")
        self.file_field = file_field
        self.fields: dict[str, str] = {}
        self.filename = ""
        self.content_type = "application/octet-stream"
        self.found = False
        self._out: list[bytes] = []
        self._headers: dict[str, bytes] = {}
        self._field = b""
        self._value = b""
        self._name = ""
        self._is_file = False
        self._field_value = bytearray()
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
            },
        )

    async def chunks(self, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in body:
            try:
                self._parser.write(chunk)
            except FormParserError as exc:
                raise UploadError(400, "invalid_request", "bad_multipart", detail=str(exc)) from exc
            out, self._out = self._out, []
            for piece in out:
                yield piece
        self._parser.finalize()
        if not self.found:
            raise UploadError(400, "invalid_request", "no_file_field", field=self.file_field)

    # -- parser callbacks ---------------------------------------------------------------------
    def _part_begin(self) -> None:
        self._headers = {}
        self._name = ""
        self._is_file = False
        self._field_value = bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.decode("latin-1").lower()] = self._value
        self._field = self._value = b""

    def _headers_finished(self) -> None:
        _disp, params = parse_options_header(self._headers.get("content-disposition", b""))
        self._name = params.get(b"name", b"").decode("utf-8", "replace")
        if self._name == self.file_field and not self.found:
            self.found = self._is_file = True
            name = params.get(b"filename", b"").decode("utf-8", "replace")
            # browsers (and httpx) send these three escaped in a form's file name (WHATWG
            # multipart/form-data encoding); control characters are removed later
            self.filename = name.replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")
            ctype = self._headers.get("content-type", b"").decode("latin-1").strip()
            self.content_type = ctype or self.content_type

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            self._out.append(bytes(data[start:end]))
        elif len(self._field_value) < MAX_FIELD_BYTES:
            self._field_value += data[start:end]

    def _part_end(self) -> None:
        if not self._is_file and self._name:
            self.fields[self._name] = self._field_value[:MAX_FIELD_BYTES].decode("utf-8", "replace")
