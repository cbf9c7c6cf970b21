"""``konspekt-summarizer``: call a running summarizer stage from the command line.

    konspekt-summarizer summarize meeting.json [--style lecture] [--language ru]

FILE is transcript JSON (as stored by the ASR stage) or plain text, one segment per line
(times are made up from the word count). Progress goes to stderr, the konspekt JSON to stdout.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import grpc

from konspekt.channels import open_channel
from konspekt.cli import add_client_args, client_token, fail
from konspekt.errors import InvalidInput
from konspekt.transcripts import to_json, transcript_from_json
from konspekt.v1 import common_pb2, summarizer_pb2, summarizer_pb2_grpc

DEFAULT_PORT = 50053
WORDS_PER_SECOND = 2.5
_CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)
_LATIN = re.compile(r"[a-z]", re.IGNORECASE)


def transcript_from_text(text: str, language: str = "") -> common_pb2.Transcript:
    """One segment per non-empty line, with times estimated from the words spoken."""
    transcript = common_pb2.Transcript(language=language or guess_language(text))
    t = 0.0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        duration = max(1.0, len(line.split()) / WORDS_PER_SECOND)
        transcript.segments.append(
            common_pb2.Segment(index=len(transcript.segments), start=t, end=t + duration, text=line)
        )
        t += duration
    transcript.duration = t
    return transcript


def guess_language(text: str) -> str:
    return "ru" if len(_CYRILLIC.findall(text)) > len(_LATIN.findall(text)) else "en"


def read_transcript(path: Path, language: str = "") -> common_pb2.Transcript:
    data = path.read_bytes()
    if path.suffix.lower() == ".json" or data.lstrip()[:1] == b"{":
        return transcript_from_json(data)
    return transcript_from_text(data.decode("utf-8", errors="replace"), language)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="konspekt-summarizer",
        description="Call a running summarizer stage: transcript in, konspekt out.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    summ = sub.add_parser("summarize", help="write the konspekt of a transcript")
    summ.add_argument("file", type=Path, help="transcript JSON, or text with one segment per line")
    summ.add_argument("--style", choices=["meeting", "lecture"], default="meeting")
    summ.add_argument("--language", default="", help="language to write in (default: the transcript's)")
    add_client_args(summ, DEFAULT_PORT)
    args = parser.parse_args(argv)

    try:
        transcript = read_transcript(args.file, args.language)
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    except InvalidInput as exc:
        print(f"error: {args.file}: {exc.message}", file=sys.stderr)
        return 2
    style = common_pb2.STYLE_LECTURE if args.style == "lecture" else common_pb2.STYLE_MEETING
    request = summarizer_pb2.SummarizeRequest(transcript=transcript, style=style, language=args.language)

    with open_channel(args.target, token=client_token(args)) as channel:
        stub = summarizer_pb2_grpc.SummarizerServiceStub(channel)
        try:
            for response in stub.Summarize(request, timeout=args.timeout, wait_for_ready=True):
                if response.HasField("progress"):
                    p = response.progress
                    print(f"[{p.fraction * 100:3.0f}%] {p.message}", file=sys.stderr)
                else:
                    result = response.result
                    for warning in result.warnings:
                        print(f"warning: {warning}", file=sys.stderr)
                    u = result.usage
                    print(
                        f"{u.model}: {u.calls} call(s), {u.prompt_tokens} prompt + "
                        f"{u.completion_tokens} answer tokens, {u.seconds:.1f} s",
                        file=sys.stderr,
                    )
                    sys.stdout.write(to_json(result.konspekt).decode("utf-8") + "\n")
                    return 0
        except grpc.RpcError as err:
            return fail(err)
    print("error: the stage ended the call without a result", file=sys.stderr)
    return 1
