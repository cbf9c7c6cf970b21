"""The AudioService: puts the input (a stored upload or inline bytes) into a private temp file,
probes, extracts, streams progress, then stores the WAV or streams it back in chunks.

ffmpeg only ever reads that temp file: never a URL, so nothing in an upload can make it fetch
another address (see ``konspekt.media_guard``)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import tempfile
import threading
import time
from collections.abc import Generator, Iterator
from concurrent.futures import Future
from pathlib import Path

import grpc
import urllib3
from prometheus_client import Counter

from konspekt.errors import Cancelled, InvalidInput, Unavailable
from konspekt.logs import in_this_context
from konspekt.notices import Note, notices, to_proto
from konspekt.server import Loader, rpc
from konspekt.storage import ObjectStore, output_ref, require_store
from konspekt.v1 import audio_pb2, audio_pb2_grpc, common_pb2
from konspekt_audio.engine import ExtractOutcome, MediaInfo, MediaTool, Source

log = logging.getLogger(__name__)

#: WAV bytes per audio_chunk message (well under the 4 MiB message limit).
CHUNK_SIZE = 1024 * 1024
#: Bytes per read when copying a stored upload into the temp file.
DOWNLOAD_CHUNK = 1024 * 1024
#: How long a cancelled call waits for a download blocked on the network before leaving it
#: (the store's read timeout ends it; its temp dir is gone by then).
_DOWNLOAD_JOIN_S = 2.0
#: How often the RPC thread looks at the cancel flag while it waits for progress.
_POLL_S = 0.2
#: Smallest change of the decoded fraction worth a Progress message.
_PROGRESS_STEP = 0.01

ExtractStream = Generator[audio_pb2.ExtractResponse, None, ExtractOutcome]

MEDIA_SECONDS = Counter(
    "konspekt_audio_media_seconds_total", "Seconds of audio extracted (16 kHz mono WAV written)."
)


class AudioServicer(audio_pb2_grpc.AudioServiceServicer):
    def __init__(
        self,
        loader: Loader[MediaTool],
        store: ObjectStore | None,
        temp_dir: Path | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self.loader = loader
        self.store = store
        self.temp_dir = temp_dir
        self.chunk_size = chunk_size

    @rpc
    def Probe(self, request: audio_pb2.ProbeRequest, context: grpc.ServicerContext) -> audio_pb2.MediaInfo:
        tool = self.loader.get()
        with self._workspace() as tmp:
            source = self._source(request.input, tmp)
            if source is None:
                source = self._download(request.input.ref, tmp)
            return media_info_pb(tool.probe(source))

    @rpc
    def Extract(
        self, request: audio_pb2.ExtractRequest, context: grpc.ServicerContext
    ) -> Iterator[audio_pb2.ExtractResponse]:
        tool = self.loader.get()
        output = output_ref(self.store, request.output, "output")  # before any work
        started = time.monotonic()
        with self._workspace() as tmp:
            source = self._source(request.input, tmp)
            wav = tmp / "audio.wav"
            yield _progress(0.0, Note("audio_reading"))
            outcome = yield from self._extract(tool, request.input, source, tmp, wav, context)
            result = audio_pb2.ExtractResult(
                media=media_info_pb(outcome.media),
                audio_duration=outcome.audio_duration,
                audio_bytes=outcome.audio_bytes,
                warnings=outcome.warnings,
                notices=notices(outcome.warnings),
            )
            if output is not None:
                yield _progress(1.0, Note("audio_storing"))
                store = require_store(self.store, "output")
                result.audio.CopyFrom(store.put_file(output, wav, "audio/wav"))
            else:
                with wav.open("rb") as f:
                    while chunk := f.read(self.chunk_size):
                        yield audio_pb2.ExtractResponse(audio_chunk=chunk)
        MEDIA_SECONDS.inc(max(outcome.audio_duration, 0.0))
        log.info(
            "extracted %.1f s of audio from %s (%.1f s claimed) in %.0f ms%s",
            outcome.audio_duration,
            outcome.media.container,
            outcome.media.duration,
            (time.monotonic() - started) * 1000,
            "; " + "; ".join(outcome.warnings) if outcome.warnings else "",
        )
        yield audio_pb2.ExtractResponse(result=result)

    def _extract(
        self,
        tool: MediaTool,
        blob: common_pb2.Blob,
        source: Source | None,
        tmp: Path,
        wav: Path,
        context: grpc.ServicerContext,
    ) -> ExtractStream:
        """Run the download (when ``source`` is None) and the blocking extract in a thread and
        stream its progress; both stop, and ffmpeg is killed, if the RPC ends early (cancel,
        deadline, client gone)."""
        cancel = threading.Event()
        context.add_callback(cancel.set)
        fractions: queue.Queue[float | None] = queue.Queue()
        future: Future[ExtractOutcome] = Future()

        def work() -> None:
            try:
                local = source if source is not None else self._download(blob.ref, tmp, cancel)
                future.set_result(tool.extract(local, wav, fractions.put, cancel=cancel))
            except BaseException as exc:  # noqa: BLE001 - handed to the RPC thread
                future.set_exception(exc)
            finally:
                fractions.put(None)

        worker = threading.Thread(target=in_this_context(work), name="ffmpeg", daemon=True)
        worker.start()
        try:
            reported = -1.0  # the first report always goes: decoding has started
            while (fraction := _next(fractions, cancel)) is not None:
                if fraction - reported >= _PROGRESS_STEP or (fraction >= 1.0 > reported):
                    reported = fraction
                    yield _progress(fraction, Note("audio_decoding"))
        finally:
            if worker.is_alive():  # cancelled, or the generator was closed before the end
                cancel.set()
                worker.join(_DOWNLOAD_JOIN_S)  # ffmpeg dies at once; a stalled read may not
        if not future.done():  # a download blocked on the network: left to its read timeout
            raise Cancelled("the request was cancelled; reading the file was stopped")
        return future.result()

    @contextlib.contextmanager
    def _workspace(self) -> Iterator[Path]:
        """A private temp dir for inline input and the WAV, removed whatever happens."""
        with tempfile.TemporaryDirectory(prefix="konspekt-audio-", dir=self.temp_dir) as tmp:
            yield Path(tmp)

    def _source(self, blob: common_pb2.Blob, tmp: Path) -> Source | None:
        """The temp file of inline input; None for a stored upload, after checking it exists
        (a clear NotFound before any work): ``_download`` copies it."""
        kind = blob.WhichOneof("source")
        if kind == "ref":
            require_store(self.store, "input.ref").size(blob.ref)
            return None
        if kind == "inline":
            path = tmp / "input"
            path.write_bytes(blob.inline)
            return path
        raise InvalidInput("the request has no input: set input.ref or input.inline")

    def _download(self, ref: common_pb2.ObjectRef, tmp: Path, cancel: threading.Event | None = None) -> Path:
        """Copy a stored upload into the temp dir: ffmpeg reads a local file, never a URL."""
        store = require_store(self.store, "input.ref")
        path = tmp / "input"
        expected = store.size(ref)
        written = 0
        try:
            with path.open("wb") as f:
                for chunk in store.iter_chunks(ref, DOWNLOAD_CHUNK):
                    _check(cancel)
                    f.write(chunk)
                    written += len(chunk)
        except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as exc:
            raise Unavailable(Note("store_read_failed", detail=str(exc))) from exc
        _check(cancel)
        if written != expected:
            raise Unavailable(Note("store_read_failed", detail=f"got {written} of {expected} bytes"))
        return path


def _next(fractions: queue.Queue[float | None], cancel: threading.Event) -> float | None:
    """The next decoded fraction; None at the end, or once the call is cancelled (the worker
    may be blocked where it cannot see ``cancel``, e.g. in a read from the object store)."""
    while True:
        try:
            return fractions.get(timeout=_POLL_S)
        except queue.Empty:
            if cancel.is_set():
                return None


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("the request was cancelled; reading the file was stopped")


def media_info_pb(info: MediaInfo) -> audio_pb2.MediaInfo:
    return audio_pb2.MediaInfo(**dataclasses.asdict(info))


def _progress(fraction: float, message: str) -> audio_pb2.ExtractResponse:
    progress = common_pb2.Progress(fraction=fraction, message=message, notice=to_proto(message))
    return audio_pb2.ExtractResponse(progress=progress)
