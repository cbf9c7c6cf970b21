"""``konspekt-renderer``: call a running renderer stage and write the files it renders.

    konspekt-renderer render --konspekt K.json --transcript T.json --out DIR \\
        [--format docx --format srt ...] [--source-name NAME]
"""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path

import grpc

from konspekt.channels import open_channel
from konspekt.cli import INLINE_LIMIT, add_client_args, client_token, fail
from konspekt.errors import StageError
from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt.transcripts import konspekt_from_json, transcript_from_json
from konspekt.v1 import common_pb2, renderer_pb2, renderer_pb2_grpc

DEFAULT_PORT = 50054

#: --format choices (file name without "konspekt."/"transcript." where that is unambiguous).
FORMAT_CHOICES: dict[str, renderer_pb2.Format.ValueType] = {
    "docx": renderer_pb2.FORMAT_KONSPEKT_DOCX,
    "konspekt-txt": renderer_pb2.FORMAT_KONSPEKT_TXT,
    "md": renderer_pb2.FORMAT_KONSPEKT_MD,
    "transcript-txt": renderer_pb2.FORMAT_TRANSCRIPT_TXT,
    "srt": renderer_pb2.FORMAT_TRANSCRIPT_SRT,
    "vtt": renderer_pb2.FORMAT_TRANSCRIPT_VTT,
    "json": renderer_pb2.FORMAT_TRANSCRIPT_JSON,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="konspekt-renderer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    render = sub.add_parser("render", help="render a konspekt and transcript into files")
    add_client_args(render, DEFAULT_PORT)
    render.add_argument("--konspekt", type=Path, required=True, help="konspekt JSON (summarizer output)")
    render.add_argument("--transcript", type=Path, required=True, help="transcript JSON (ASR output)")
    render.add_argument("--out", type=Path, required=True, help="directory to write the files to")
    render.add_argument(
        "--format",
        dest="formats",
        action="append",
        choices=sorted(FORMAT_CHOICES),
        help="a format to render (repeatable); default: all",
    )
    render.add_argument("--source-name", default="", help="recording name shown in the documents")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        konspekt = konspekt_from_json(args.konspekt.read_bytes())
        transcript_data = args.transcript.read_bytes()
        transcript = transcript_from_json(transcript_data)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except StageError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2

    request = renderer_pb2.RenderRequest(
        konspekt=konspekt,
        formats=[FORMAT_CHOICES[name] for name in args.formats or ()],
        source_name=args.source_name,
    )
    store: ObjectStore | None = None
    if len(transcript_data) > INLINE_LIMIT:
        # Too big for one message (and the rendered files would be too): go through the store.
        s3 = S3Settings()
        if not s3.configured:
            print(
                f"error: {args.transcript} is over the {INLINE_LIMIT // 2**20} MiB inline limit: "
                "set KONSPEKT_S3_ENDPOINT (and credentials) to go through the object store",
                file=sys.stderr,
            )
            return 2
        store = ObjectStore(s3)
        prefix = f"jobs/cli-{uuid.uuid4().hex}/"
        try:
            request.transcript_ref.CopyFrom(store.put_bytes(prefix + "transcript.json", transcript_data))
        except StageError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 1
        request.output_prefix.CopyFrom(common_pb2.ObjectRef(bucket=store.bucket, key=prefix))
    else:
        request.transcript.CopyFrom(transcript)

    with open_channel(args.target, token=client_token(args)) as channel:
        try:
            response = renderer_pb2_grpc.RendererServiceStub(channel).Render(request, timeout=args.timeout)
        except grpc.RpcError as err:
            return fail(err)

    args.out.mkdir(parents=True, exist_ok=True)
    for f in response.files:
        path = args.out / Path(f.name).name  # the name comes from the server: keep it inside --out
        try:
            data = store.get_bytes(f.ref) if f.HasField("ref") and store else f.inline
        except StageError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 1
        path.write_bytes(data)
        print(path)
    return 0
