"""The AudioService: resolves the input (presigned URL or inline bytes), probes, extracts,
streams progress, then stores the WAV or streams it back in chunks."""

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
from prometheus_client import Counter

from konspekt.errors import InvalidInput
from konspekt.logs import in_this_context
from konspekt.server import Loader, rpc
from konspekt.storage import ObjectStore, output_ref, require_store
from konspekt.v1 import audio_pb2, audio_pb2_grpc, common_pb2
from konspekt_audio.engine import ExtractOutcome, MediaInfo, MediaTool, Source

log = logging.getLogger(__name__)

#: WAV bytes per audio_chunk message (well under the 4 MiB message limit).
CHUNK_SIZE = 1024 * 1024
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
            source, size = self._source(request.input, tmp)
            return media_info_pb(tool.probe(source, size))

    @rpc
    def Extract(
        self, request: audio_pb2.ExtractRequest, context: grpc.ServicerContext
    ) -> Iterator[audio_pb2.ExtractResponse]:
        tool = self.loader.get()
        output = output_ref(self.store, request.output, "output")  # before any work
        started = time.monotonic()
        with self._workspace() as tmp:
            source, size = self._source(request.input, tmp)
            wav = tmp / "audio.wav"
            yield _progress(0.0, "reading the file")
            outcome = yield from self._extract(tool, source, size, wav, context)
            result = audio_pb2.ExtractResult(
                media=media_info_pb(outcome.media),
                audio_duration=outcome.audio_duration,
                audio_bytes=outcome.audio_bytes,
                warnings=outcome.warnings,
            )
            if output is not None:
                yield _progress(1.0, "storing the audio")
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
        self, tool: MediaTool, source: Source, size: int | None, wav: Path, context: grpc.ServicerContext
    ) -> ExtractStream:
        """Run the blocking extract in a thread and stream its progress; ffmpeg is killed if the
        RPC ends early (cancel, deadline, client gone)."""
        cancel = threading.Event()
        context.add_callback(cancel.set)
        fractions: queue.Queue[float | None] = queue.Queue()
        future: Future[ExtractOutcome] = Future()

        def work() -> None:
            try:
                future.set_result(tool.extract(source, wav, fractions.put, size=size, cancel=cancel))
            except BaseException as exc:  # noqa: BLE001 - handed to the RPC thread
                future.set_exception(exc)
            finally:
                fractions.put(None)

        worker = threading.Thread(target=in_this_context(work), name="ffmpeg", daemon=True)
        worker.start()
        try:
            reported = -1.0  # the first report always goes: decoding has started
            while (fraction := fractions.get()) is not None:
                if fraction - reported >= _PROGRESS_STEP or (fraction >= 1.0 > reported):
                    reported = fraction
                    yield _progress(fraction, "decoding")
        finally:
            if worker.is_alive():  # the generator was closed before the end
                cancel.set()
                worker.join()
        return future.result()

    @contextlib.contextmanager
    def _workspace(self) -> Iterator[Path]:
        """A private temp dir for inline input and the WAV, removed whatever happens."""
        with tempfile.TemporaryDirectory(prefix="konspekt-audio-", dir=self.temp_dir) as tmp:
            yield Path(tmp)

    def _source(self, blob: common_pb2.Blob, tmp: Path) -> tuple[Source, int]:
        """A presigned URL for a stored upload (ffmpeg streams it; no copy), or a temp file."""
        kind = blob.WhichOneof("source")
        if kind == "ref":
            store = require_store(self.store, "input.ref")
            size = store.size(blob.ref)  # a clear NotFound before ffmpeg meets a 404
            return store.presigned_get(blob.ref), size
        if kind == "inline":
            path = tmp / "input"
            path.write_bytes(blob.inline)
            return path, len(blob.inline)
        raise InvalidInput("the request has no input: set input.ref or input.inline")


def media_info_pb(info: MediaInfo) -> audio_pb2.MediaInfo:
    return audio_pb2.MediaInfo(**dataclasses.asdict(info))


def _progress(fraction: float, message: str) -> audio_pb2.ExtractResponse:
    return audio_pb2.ExtractResponse(progress=common_pb2.Progress(fraction=fraction, message=message))
