"""A client of the four stages as another team writes one: it imports only grpc and the stubs
generated from ``protos/`` into a folder of its own (never the repository's ``konspekt.v1``).

Run by tests/security/test_outside_client.py as ``python -S outside_client.py`` (no site
packages, so no editable install of konspekt is visible); the test puts the generated stubs and
the site-packages folder of grpcio/protobuf on ``sys.path`` through ``KONSPEKT_CLIENT_PATH``.
Reads a JSON plan on stdin, prints a JSON report on stdout.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

sys.path[:0] = os.environ["KONSPEKT_CLIENT_PATH"].split(os.pathsep)

import grpc  # noqa: E402

from konspekt.v1 import (  # type: ignore[import-not-found, unused-ignore]  # noqa: E402
    asr_pb2,
    asr_pb2_grpc,
    audio_pb2,
    audio_pb2_grpc,
    common_pb2,
    renderer_pb2,
    renderer_pb2_grpc,
    summarizer_pb2,
    summarizer_pb2_grpc,
)


def code(call: Any) -> str:
    """The status name a call ends with ("OK" when it succeeds)."""
    try:
        call()
    except grpc.RpcError as err:
        return str(err.code().name)
    return "OK"


def main() -> None:
    plan = json.load(sys.stdin)
    bucket, prefix, stranger = plan["bucket"], plan["prefix"], plan["stranger"]
    metadata = (("authorization", f"Bearer {plan['token']}"),)

    def ref(key: str) -> Any:
        return common_pb2.ObjectRef(bucket=bucket, key=key)

    report: dict[str, Any] = {"stubs": __import__("konspekt").__path__[0]}
    audio = grpc.insecure_channel(plan["audio"])
    asr = grpc.insecure_channel(plan["asr"])
    summarizer = grpc.insecure_channel(plan["summarizer"])
    renderer = grpc.insecure_channel(plan["renderer"])
    audio_stub = audio_pb2_grpc.AudioServiceStub(audio)
    asr_stub = asr_pb2_grpc.AsrServiceStub(asr)
    summarizer_stub = summarizer_pb2_grpc.SummarizerServiceStub(summarizer)
    renderer_stub = renderer_pb2_grpc.RendererServiceStub(renderer)
    upload = common_pb2.Blob(ref=ref(prefix + "upload.mp4"))

    # refused calls first: no token, then refs outside the client's prefix
    report["no_token"] = {
        "probe": code(lambda: audio_stub.Probe(audio_pb2.ProbeRequest(input=upload), timeout=30)),
        "transcribe": code(
            lambda: list(asr_stub.Transcribe(asr_pb2.TranscribeRequest(audio=upload), timeout=30))
        ),
        "summarize": code(
            lambda: list(
                summarizer_stub.Summarize(
                    summarizer_pb2.SummarizeRequest(transcript_ref=ref(prefix + "transcript.json")),
                    timeout=30,
                )
            )
        ),
        "render": code(
            lambda: renderer_stub.Render(
                renderer_pb2.RenderRequest(transcript_ref=ref(prefix + "transcript.json")), timeout=30
            )
        ),
    }
    report["outside"] = {
        "read": code(
            lambda: list(
                audio_stub.Extract(
                    audio_pb2.ExtractRequest(input=common_pb2.Blob(ref=ref(stranger + "upload.mp4"))),
                    timeout=30,
                    metadata=metadata,
                )
            )
        ),
        "write": code(
            lambda: list(
                audio_stub.Extract(
                    audio_pb2.ExtractRequest(input=upload, output=ref(stranger + "audio.wav")),
                    timeout=30,
                    metadata=metadata,
                )
            )
        ),
        "dotdot": code(
            lambda: list(
                asr_stub.Transcribe(
                    asr_pb2.TranscribeRequest(audio=common_pb2.Blob(ref=ref(prefix + "../" + stranger))),
                    timeout=30,
                    metadata=metadata,
                )
            )
        ),
        "render": code(
            lambda: renderer_stub.Render(
                renderer_pb2.RenderRequest(
                    transcript=common_pb2.Transcript(language="en"), output_prefix=ref(stranger + "out/")
                ),
                timeout=30,
                metadata=metadata,
            )
        ),
    }

    # the chain, object refs from one stage to the next, all under the client's prefix
    extracted = [
        e.result
        for e in audio_stub.Extract(
            audio_pb2.ExtractRequest(input=upload, output=ref(prefix + "audio.wav")),
            timeout=120,
            metadata=metadata,
        )
        if e.HasField("result")
    ]
    report["audio"] = {"key": extracted[-1].audio.key, "seconds": extracted[-1].audio_duration}
    events = list(
        asr_stub.Transcribe(
            asr_pb2.TranscribeRequest(
                audio=common_pb2.Blob(ref=extracted[-1].audio),
                language="en",
                output=ref(prefix + "transcript.json"),
            ),
            timeout=300,
            metadata=metadata,
        )
    )
    transcribed = events[-1].result
    report["asr"] = {
        "key": transcribed.transcript.key,
        "language": transcribed.language,
        "text": " ".join(e.segment.text for e in events if e.HasField("segment")),
    }
    summaries = [
        e.result
        for e in summarizer_stub.Summarize(
            summarizer_pb2.SummarizeRequest(
                transcript_ref=transcribed.transcript,
                style=common_pb2.STYLE_MEETING,
                output=ref(prefix + "konspekt.json"),
            ),
            timeout=600,
            metadata=metadata,
        )
        if e.HasField("result")
    ]
    summary = summaries[-1]
    report["summarizer"] = {
        "key": summary.stored.key,
        "language": summary.konspekt.language,
        "summary": summary.konspekt.summary,
    }
    rendered = renderer_stub.Render(
        renderer_pb2.RenderRequest(
            konspekt=summary.konspekt,
            transcript_ref=transcribed.transcript,
            formats=[
                renderer_pb2.FORMAT_KONSPEKT_MD,
                renderer_pb2.FORMAT_KONSPEKT_DOCX,
                renderer_pb2.FORMAT_TRANSCRIPT_SRT,
            ],
            output_prefix=ref(prefix + "out/"),
            source_name="jfk_en_11s.mp4",
        ),
        timeout=120,
        metadata=metadata,
    )
    report["renderer"] = {f.name: f.ref.key for f in rendered.files}
    for channel in (audio, asr, summarizer, renderer):
        channel.close()
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
