"""One job's run through the stages: each stage's request built from the job, its result
written back into the job (an upload's run, and a run of "resummarize")."""

from __future__ import annotations

import asyncio
import logging

from konspekt.errors import StageError
from konspekt.notices import Note
from konspekt.v1 import asr_pb2, audio_pb2, common_pb2, renderer_pb2, summarizer_pb2
from konspekt_gateway import stages
from konspekt_gateway.jobs import DOWNLOADS, Job, MediaFacts, ModelUsage
from konspekt_gateway.notes import warn
from konspekt_gateway.stagecalls import CallFailed, JobFailed, StageCalls

log = logging.getLogger(__name__)

#: Upper bound on the media duration when the audio stage cannot probe it (8 kbit/s, ≤ 24 h).
_MIN_BYTES_PER_SECOND = 1000
_MAX_GUESSED_DURATION = 24 * 3600.0
#: The documents made from a konspekt (a konspekt written again or edited; the transcript's stay).
KONSPEKT_DOCUMENTS = {
    renderer_pb2.FORMAT_KONSPEKT_DOCX: "konspekt.docx",
    renderer_pb2.FORMAT_KONSPEKT_TXT: "konspekt.txt",
    renderer_pb2.FORMAT_KONSPEKT_MD: "konspekt.md",
}
#: ``files`` name of the konspekt a run of "resummarize" wrote, until it replaces konspekt.json.
NEXT_KONSPEKT = "konspekt.next"


class StageSteps(StageCalls):
    """The steps of a run; the orchestrator (pipeline.Orchestrator) runs them for each job."""

    async def _stages(self, job: Job) -> None:
        """An upload's run: each stage whose output the job does not have yet."""
        if stages.AUDIO.output not in job.files:
            await self._audio(job)
        if stages.ASR.output not in job.files:
            await self._transcribe(job)
        if stages.SUMMARIZER.output not in job.files:
            await self._summarize(job)
        if not job.downloads:
            await self._render(job)

    async def _resummarize(self, job: Job) -> None:
        """A run of "resummarize": the summarizer writes a konspekt from the stored transcript
        (into konspekt.next.json), the renderer makes its documents (into out/v<N>/), and only
        then does it become konspekt.json: the previous kept as konspekt.v<N-1>.json, the
        version counted up, the documents before deleted (as an edit does, edits.py)."""
        version = job.konspekt_version + 1
        if NEXT_KONSPEKT not in job.files:
            await self._summarize(job, NEXT_KONSPEKT, job.key("konspekt.next.json"))
        await self._enter(job, "renderer", Note("job_rendering"))

        async def render(deadline: float) -> renderer_pb2.RenderResponse:
            request = renderer_pb2.RenderRequest(
                konspekt_ref=self.store.ref(job.files[NEXT_KONSPEKT]),  # the renderer reads it
                transcript_ref=self.store.ref(job.files["transcript"]),
                formats=list(KONSPEKT_DOCUMENTS),
                output_prefix=self.store.ref(job.key(f"out/v{version}/")),
                source_name=job.filename,
            )
            return await self.clients.renderer.Render(
                request, timeout=deadline, metadata=self.clients.metadata(job.id)
            )

        response = await self._attempts(
            job, "renderer", render, lambda: self.settings.deadline("renderer", self._duration(job))
        )
        names = set(KONSPEKT_DOCUMENTS.values())
        made = {f.name: f.ref.key for f in response.files if f.name in names and f.ref.key}
        stray = [f.ref.key for f in response.files if f.ref.key and f.ref.key not in made.values()]
        if set(made) != names:
            raise JobFailed("renderer", Note("renderer_stored_nothing"))
        previous = job.key(f"konspekt.v{job.konspekt_version}.json")

        def store_version() -> None:
            # konspekt.v<N>.json exists only if this was done before a restart: it holds the
            # konspekt before, and konspekt.json may already be the new one
            if not self.store.exists(previous):
                self.store.put_bytes(
                    previous, self.store.get_bytes(job.files["konspekt"]), "application/json"
                )
            data = self.store.get_bytes(job.files[NEXT_KONSPEKT])
            self.store.put_bytes(job.files["konspekt"], data, "application/json")

        for attempt in range(1, self.settings.stage_attempts + 1):
            try:
                await asyncio.to_thread(store_version)
                break
            except StageError as exc:
                if attempt == self.settings.stage_attempts:
                    raise JobFailed("renderer", Note("konspekt_not_stored", detail=exc.message)) from None
                if not await asyncio.to_thread(self.store.ping):
                    await self._wait_for_store(job)
                else:
                    await asyncio.sleep(self.settings.backoff(attempt))
        replaced = [job.files[name] for name in made if job.files.get(name) not in (None, made[name])]
        staged = job.files.pop(NEXT_KONSPEKT)
        job.files[f"konspekt.v{job.konspekt_version}"] = previous
        job.files.update(made)
        job.konspekt_version = version
        await self._save(job)
        for key in [*replaced, *stray, staged]:  # the documents before, any extra, the staged copy
            try:
                await asyncio.to_thread(self.store.delete, key)
            except StageError as exc:
                log.info("job %s: %s stays until the job expires: %s", job.short_id, key, exc.message)

    # -- stages -------------------------------------------------------------------------------
    def _duration(self, job: Job) -> float:
        if job.audio_duration > 0:
            return job.audio_duration
        if job.media and job.media.duration > 0:
            return job.media.duration
        return min(job.size / _MIN_BYTES_PER_SECOND, _MAX_GUESSED_DURATION)

    async def _audio(self, job: Job) -> None:
        await self._enter(job, "audio", Note("job_reading_media"))
        upload = common_pb2.Blob(ref=self.store.ref(job.files["upload"]))
        meta = self.clients.metadata(job.id)
        if job.media is None:

            async def probe(deadline: float) -> audio_pb2.MediaInfo:
                return await self.clients.audio.Probe(
                    audio_pb2.ProbeRequest(input=upload), timeout=deadline, metadata=meta
                )

            try:
                info = await self._attempts(
                    job, "audio", probe, lambda: self.settings.probe_deadline, probe=True
                )
            except CallFailed:  # UNIMPLEMENTED: guess the duration from the size instead
                log.warning("the audio stage cannot probe; deadline from the file size")
            else:
                job.media = _media(info)

        key = job.key("audio.wav")

        async def extract(deadline: float) -> audio_pb2.ExtractResult:
            call = self.clients.audio.Extract(
                audio_pb2.ExtractRequest(input=upload, output=self.store.ref(key)),
                timeout=deadline,
                metadata=meta,
            )
            result: audio_pb2.ExtractResult = await self._consume(job, call, "result")
            return result

        result = await self._attempts(
            job, "audio", extract, lambda: self.settings.deadline("audio", self._duration(job))
        )
        if result.HasField("media"):
            job.media = _media(result.media)
        job.audio_duration = result.audio_duration
        warn(job, result.warnings, result.notices)
        job.files["audio"] = result.audio.key or key

    async def _transcribe(self, job: Job) -> None:
        await self._enter(job, "asr", Note("job_recognising"))
        key = job.key("transcript.json")
        request = asr_pb2.TranscribeRequest(
            audio=common_pb2.Blob(ref=self.store.ref(job.files["audio"])),
            language=job.language,
            output=self.store.ref(key),
        )

        async def transcribe(deadline: float) -> asr_pb2.TranscribeResult:
            call = self.clients.asr.Transcribe(
                request, timeout=deadline, metadata=self.clients.metadata(job.id)
            )
            result: asr_pb2.TranscribeResult = await self._consume(job, call, "result")
            return result

        result = await self._attempts(
            job, "asr", transcribe, lambda: self.settings.deadline("asr", self._duration(job))
        )
        job.detected_language = result.language
        job.no_speech = result.no_speech
        if result.duration > 0 and job.audio_duration <= 0:
            job.audio_duration = result.duration
        if result.no_speech:
            warn(job, [Note("no_speech")])
        job.files["transcript"] = result.transcript.key or key

    async def _summarize(self, job: Job, name: str = "konspekt", key: str = "") -> None:
        """The summarizer stage; its konspekt is stored as ``key`` (konspekt.json) and listed in
        the job's files as ``name``."""
        await self._enter(job, "summarizer", Note("job_writing"))
        key = key or job.key("konspekt.json")
        style = common_pb2.STYLE_LECTURE if job.style == "lecture" else common_pb2.STYLE_MEETING
        request = summarizer_pb2.SummarizeRequest(
            transcript_ref=self.store.ref(job.files["transcript"]),
            style=style,
            language=job.konspekt_language,
            instruction=job.instruction,
            output=self.store.ref(key),
        )

        async def summarize(deadline: float) -> summarizer_pb2.SummarizeResult:
            call = self.clients.summarizer.Summarize(
                request, timeout=deadline, metadata=self.clients.metadata(job.id)
            )
            result: summarizer_pb2.SummarizeResult = await self._consume(job, call, "result")
            return result

        result = await self._attempts(
            job, "summarizer", summarize, lambda: self.settings.deadline("summarizer", self._duration(job))
        )
        warn(job, result.warnings, result.notices)
        job.files[name] = result.stored.key or key
        if result.HasField("usage"):
            u = result.usage
            job.model_usage = ModelUsage(
                model=u.model,
                calls=u.calls,
                prompt_tokens=u.prompt_tokens,
                completion_tokens=u.completion_tokens,
                seconds=round(u.seconds, 2),
                one_pass_seconds=round(u.one_pass_seconds, 2),
            )

    async def _render(self, job: Job) -> None:
        await self._enter(job, "renderer", Note("job_rendering"))

        async def render(deadline: float) -> renderer_pb2.RenderResponse:
            # by reference: the renderer reads the konspekt as stored (the summarizer's, or an
            # edit's: edits.py replaces the object), the gateway does not read it back
            request = renderer_pb2.RenderRequest(
                konspekt_ref=self.store.ref(job.files["konspekt"]),
                transcript_ref=self.store.ref(job.files["transcript"]),
                output_prefix=self.store.ref(job.key("out/")),
                source_name=job.filename,
            )
            return await self.clients.renderer.Render(
                request, timeout=deadline, metadata=self.clients.metadata(job.id)
            )

        response = await self._attempts(
            job, "renderer", render, lambda: self.settings.deadline("renderer", self._duration(job))
        )
        for file in response.files:
            if file.name in DOWNLOADS and file.ref.key:
                job.files[file.name] = file.ref.key
        if not job.downloads:
            raise JobFailed("renderer", Note("renderer_stored_nothing"))


def _media(info: audio_pb2.MediaInfo) -> MediaFacts:
    return MediaFacts(
        duration=info.duration,
        container=info.container,
        has_audio=info.has_audio,
        has_video=info.has_video,
        audio_codec=info.audio_codec,
        video_codec=info.video_codec,
    )
