"""The RendererService: loads the konspekt (inline or by reference) and the transcript, renders,
returns the files inline or stores them."""

from __future__ import annotations

import logging
import time

import grpc
from prometheus_client import Counter

from konspekt.errors import InvalidInput, ResourceExhausted
from konspekt.server import Loader, rpc
from konspekt.storage import ObjectStore, require_store
from konspekt.transcripts import konspekt_from_json, transcript_from_json
from konspekt.v1 import common_pb2, renderer_pb2, renderer_pb2_grpc
from konspekt_renderer.engine import Engine, RenderedFile

log = logging.getLogger(__name__)

#: Room left in a response for everything but the files' bytes (names, types, framing).
_OVERHEAD_PER_FILE = 256
_MARGIN = 64 * 1024

FILES_RENDERED = Counter(
    "konspekt_renderer_files_total", "Files rendered, by format (e.g. konspekt.docx).", ["format"]
)


class RendererServicer(renderer_pb2_grpc.RendererServiceServicer):
    def __init__(
        self,
        loader: Loader[Engine],
        store: ObjectStore | None,
        max_message_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self.loader = loader
        self.store = store
        self.max_message_bytes = max_message_bytes

    @rpc
    def Render(
        self, request: renderer_pb2.RenderRequest, context: grpc.ServicerContext
    ) -> renderer_pb2.RenderResponse:
        engine = self.loader.get()
        started = time.monotonic()
        konspekt = self._konspekt(request)
        transcript = self._transcript(request)
        out = self._output_store(request.output_prefix)  # checked before any work is done
        files = engine.render(konspekt, transcript, list(request.formats), request.source_name)
        response = self._inline(files) if out is None else self._store(out, files, request.output_prefix)
        for f in files:
            FILES_RENDERED.labels(f.name).inc()
        log.info(
            "rendered %s (%d segments) in %.0f ms",
            ", ".join(f.name for f in files),
            len(transcript.segments),
            (time.monotonic() - started) * 1000,
        )
        return response

    def _konspekt(self, request: renderer_pb2.RenderRequest) -> common_pb2.Konspekt:
        """The konspekt inline, or read from konspekt_ref (the access interceptor has checked the
        ref against the caller's prefix before the call got here, as for transcript_ref)."""
        ref = request.konspekt_ref
        if not request.HasField("konspekt_ref") or (not ref.bucket and not ref.key):
            return request.konspekt
        if request.HasField("konspekt"):
            raise InvalidInput("the request has both konspekt and konspekt_ref: set one")
        store = require_store(self.store, "konspekt_ref")
        return konspekt_from_json(store.get_bytes(ref))

    def _transcript(self, request: renderer_pb2.RenderRequest) -> common_pb2.Transcript:
        source = request.WhichOneof("transcript_source")
        if source == "transcript":
            return request.transcript
        if source == "transcript_ref":
            store = require_store(self.store, "transcript_ref")
            return transcript_from_json(store.get_bytes(request.transcript_ref))
        raise InvalidInput("the request has no transcript: set transcript or transcript_ref")

    def _output_store(self, prefix: common_pb2.ObjectRef) -> ObjectStore | None:
        """The store to write to, or None for inline results (output_prefix without a bucket)."""
        if not prefix.bucket:
            return None
        if not prefix.key:
            raise InvalidInput(
                "output_prefix has a bucket but no key (e.g. 'jobs/<id>/'): files would collide"
            )
        return require_store(self.store, "output_prefix")

    def _store(
        self, store: ObjectStore, files: list[RenderedFile], prefix: common_pb2.ObjectRef
    ) -> renderer_pb2.RenderResponse:
        response = renderer_pb2.RenderResponse()
        for f in files:
            ref = store.put_bytes(
                common_pb2.ObjectRef(bucket=prefix.bucket, key=prefix.key + f.name), f.data, f.content_type
            )
            response.files.add(
                format=f.format, name=f.name, content_type=f.content_type, size_bytes=len(f.data), ref=ref
            )
        return response

    def _inline(self, files: list[RenderedFile]) -> renderer_pb2.RenderResponse:
        total = sum(len(f.data) + _OVERHEAD_PER_FILE for f in files)
        limit = self.max_message_bytes - _MARGIN
        if total > limit:
            raise ResourceExhausted(
                f"the rendered files total {total / 2**20:.1f} MiB, over the {limit / 2**20:.1f} MiB "
                "that fit in one response: pass output_prefix to store them, or ask for fewer formats"
            )
        response = renderer_pb2.RenderResponse()
        for f in files:
            response.files.add(
                format=f.format,
                name=f.name,
                content_type=f.content_type,
                size_bytes=len(f.data),
                inline=f.data,
            )
        return response
