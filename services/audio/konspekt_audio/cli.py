"""``konspekt-audio``: call a running audio stage.

konspekt-audio probe FILE               print the media facts as JSON
konspekt-audio extract FILE -o OUT.wav  write 16 kHz mono WAV, progress on stderr
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
from konspekt.v1 import audio_pb2, audio_pb2_grpc, common_pb2

DEFAULT_PORT = 50051


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="konspekt-audio", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    probe = sub.add_parser("probe", help="print what ffprobe says about a media file (JSON)")
    add_client_args(probe, DEFAULT_PORT)
    probe.add_argument("file", type=Path, help="video or audio file")
    extract = sub.add_parser("extract", help="extract 16 kHz mono WAV from a media file")
    add_client_args(extract, DEFAULT_PORT)
    extract.add_argument("file", type=Path, help="video or audio file")
    extract.add_argument("-o", "--output", type=Path, required=True, help="WAV file to write")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.file.is_file():
        print(f"error: {args.file} is not a file", file=sys.stderr)
        return 2
    try:
        blob = blob_for_file(args.file)
    except (OSError, StageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with open_channel(args.target, token=client_token(args)) as channel:
        stub = audio_pb2_grpc.AudioServiceStub(channel)
        try:
            if args.command == "probe":
                info = stub.Probe(audio_pb2.ProbeRequest(input=blob), timeout=args.timeout)
                print(to_json(info).decode("utf-8"))
                return 0
            return _extract(stub, blob, args.output, args.timeout)
        except grpc.RpcError as err:
            return fail(err)


def _extract(stub: audio_pb2_grpc.AudioServiceStub, blob: common_pb2.Blob, out: Path, timeout: float) -> int:
    """Write the streamed WAV to a temp name and rename it at the end: no half files on errors."""
    partial = out.with_name(out.name + ".part")
    result: audio_pb2.ExtractResult | None = None
    try:
        with partial.open("wb") as f:
            for event in stub.Extract(audio_pb2.ExtractRequest(input=blob), timeout=timeout):
                kind = event.WhichOneof("event")
                if kind == "progress":
                    print(
                        f"\r{event.progress.message:<18} {event.progress.fraction:4.0%}",
                        end="",
                        file=sys.stderr,
                        flush=True,
                    )
                elif kind == "audio_chunk":
                    f.write(event.audio_chunk)
                elif kind == "result":
                    result = event.result
        print(file=sys.stderr)
        if result is None:
            print("error: the stage ended the stream without a result", file=sys.stderr)
            return 1
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    media = result.media
    print(
        f"{out}: {fmt_time(result.audio_duration)} ({result.audio_duration:.2f} s) of 16 kHz mono audio, "
        f"{result.audio_bytes} bytes, from {media.container} "
        f"({media.audio_codec}, {media.duration:.2f} s claimed)"
    )
    for warning in result.warnings:
        print(f"warning: {warning}")
    return 0
