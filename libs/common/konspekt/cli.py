"""Shared bits of the per-stage command-line clients (``konspekt-audio``, ``konspekt-asr``...)."""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from pathlib import Path

import grpc

from konspekt.settings import S3Settings
from konspekt.storage import ObjectStore
from konspekt.v1 import common_pb2

INLINE_LIMIT = 3 * 1024 * 1024  # leaves room under the 4 MiB message limit


def add_client_args(parser: argparse.ArgumentParser, default_port: int) -> None:
    parser.add_argument("--target", default=f"127.0.0.1:{default_port}", help="host:port of the stage")
    parser.add_argument("--timeout", type=float, default=600.0, help="deadline of the call, seconds")
    parser.add_argument(
        "--token-file",
        type=Path,
        default=os.environ.get("KONSPEKT_STAGE_TOKEN_FILE") or None,
        help="file holding this client's stage token ($KONSPEKT_STAGE_TOKEN_FILE; or the token "
        "itself in $KONSPEKT_STAGE_TOKEN; ./dev run writes .run/stage-token)",
    )


def client_token(args: argparse.Namespace) -> str:
    """The client token the CLI sends (authorization: Bearer): from --token-file, else
    $KONSPEKT_STAGE_TOKEN; empty: none (a stage that allows calls without one)."""
    path: Path | None = getattr(args, "token_file", None)
    if path is not None:
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SystemExit(f"error: cannot read the token file {path}: {exc.strerror or exc}") from exc
    return os.environ.get("KONSPEKT_STAGE_TOKEN", "").strip()


def blob_for_file(path: Path) -> common_pb2.Blob:
    """Small files go inline; larger ones are uploaded to the object store (KONSPEKT_S3_*)."""
    size = path.stat().st_size
    if size <= INLINE_LIMIT:
        return common_pb2.Blob(inline=path.read_bytes())
    s3 = S3Settings()
    if not s3.configured:
        raise SystemExit(
            f"{path} is {size / 2**20:.1f} MiB, over the {INLINE_LIMIT // 2**20} MiB inline limit: "
            "set KONSPEKT_S3_ENDPOINT (and credentials) so the file can go through the object store"
        )
    store = ObjectStore(s3)
    store.ensure_bucket()
    return common_pb2.Blob(ref=store.put_file(f"jobs/cli-{uuid.uuid4().hex}/{path.name}", path))


def fail(err: grpc.RpcError) -> int:
    """Print a gRPC error the way a person wants to read it; return the exit code."""
    code = err.code() if isinstance(err, grpc.Call) else None
    details = err.details() if isinstance(err, grpc.Call) else str(err)
    print(f"error: {code.name if code else 'RPC failed'}: {details}", file=sys.stderr)
    return 1


def fmt_time(seconds: float) -> str:
    total = int(seconds)
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    return f"{h:d}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
