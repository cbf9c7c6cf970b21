"""``konspekt-asr``: call a running ASR stage and print the transcript as it is recognised.

konspekt-asr transcribe FILE [--language ru] [--json] [--target HOST:PORT] [--timeout S]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import grpc

from konspekt.channels import open_channel
from konspekt.cli import add_client_args, blob_for_file, client_token, fail, fmt_time
from konspekt.errors import StageError
from konspekt.transcripts import to_json
from konspekt.v1 import asr_pb2, asr_pb2_grpc, common_pb2

DEFAULT_PORT = 50052


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="konspekt-asr", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    transcribe = sub.add_parser("transcribe", help="transcribe an audio/video file")
    add_client_args(transcribe, DEFAULT_PORT)
    transcribe.add_argument("file", type=Path, help="audio or video (16 kHz mono WAV is fastest)")
    transcribe.add_argument("--language", default="", help="ISO 639-1 code, e.g. ru; default: detect")
    transcribe.add_argument(
        "--json", action="store_true", help="print the transcript JSON at the end instead of lines"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.file.is_file():
        print(f"error: {args.file} is not a file", file=sys.stderr)
        return 2
    try:
        blob = blob_for_file(args.file)
    except (OSError, StageError) as exc:
        print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    request = asr_pb2.TranscribeRequest(audio=blob, language=args.language)
    transcript = common_pb2.Transcript()
    tty = sys.stderr.isatty()

    with open_channel(args.target, token=client_token(args)) as channel:
        stub = asr_pb2_grpc.AsrServiceStub(channel)
        try:
            for event in stub.Transcribe(request, timeout=args.timeout):
                kind = event.WhichOneof("event")
                if kind == "progress":
                    line = f"{event.progress.fraction:4.0%} {event.progress.message}"
                    print(f"\r{line:<40}" if tty else line, end="" if tty else "\n", file=sys.stderr)
                elif kind == "segment":
                    seg = event.segment
                    transcript.segments.append(seg)
                    if not args.json:
                        if tty:
                            print("\r" + " " * 40 + "\r", end="", file=sys.stderr)
                        print(f"[{fmt_time(seg.start)} → {fmt_time(seg.end)}] {seg.text}", flush=True)
                elif kind == "result":
                    result = event.result
                    transcript.language = result.language
                    transcript.language_probability = result.language_probability
                    transcript.duration = result.duration
        except grpc.RpcError as err:
            if tty:
                print(file=sys.stderr)
            return fail(err)

    if tty:
        print(file=sys.stderr)
    if args.json:
        sys.stdout.write(to_json(transcript).decode("utf-8") + "\n")
    if not transcript.segments:
        print("no speech found", file=sys.stderr)
    else:
        print(
            f"language {transcript.language} (p={transcript.language_probability:.2f}), "
            f"{fmt_time(transcript.duration)}, {len(transcript.segments)} segments",
            file=sys.stderr,
        )
    return 0
