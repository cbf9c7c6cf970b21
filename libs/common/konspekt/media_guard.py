"""What ffmpeg may open: only the bytes of the upload, never what a file points at.

An HLS playlist, an ffconcat list, an SDP description or a DASH manifest is a few lines of text
that make ffmpeg open *other* inputs: URLs (SSRF) or local files by absolute path. The stages
that hand media to ffmpeg (the audio stage's ffmpeg/ffprobe, ASR's PyAV decode) use this module:

* an input is one local file (``file:`` URL) read with ``-protocol_whitelist file``, or bytes
  in memory with no protocol at all; nested opens inherit the whitelist and cannot widen it;
* ``-format_whitelist`` allows only demuxers of self-contained audio/video containers, so
  ffmpeg refuses an indirection format before its demuxer opens anything;
* the first bytes are sniffed before any ffmpeg runs, for a clear message;
* the probed format name is checked again against the same list before decoding.
"""

from __future__ import annotations

import re
from pathlib import Path

from konspekt.errors import InvalidInput
from konspekt.notices import Note

#: The only protocol an ffmpeg input on disk may use (the upload is a local temp file).
PROTOCOLS = "file"
#: The protocol whitelist for bytes read from memory: matches no protocol at all.
NO_PROTOCOLS = "none"

#: Demuxers of self-contained media files (no references to other files or URLs). Names as
#: ffmpeg's ``-demuxers`` lists them; a multi-name demuxer matches on any of its names.
DEMUXERS: tuple[str, ...] = (
    "mov",  # mov,mp4,m4a,3gp,3g2,mj2 (external data references stay off: enable_drefs=0)
    "matroska",  # matroska,webm
    "avi",
    "asf",  # wmv, wma
    "flv",
    "mpegts",
    "mpeg",  # program stream, vob
    "mxf",
    "nut",
    "rm",
    "wtv",
    "dv",
    "ogg",
    "wav",
    "w64",
    "aiff",
    "caf",
    "au",
    "mp3",
    "aac",
    "loas",
    "ac3",
    "eac3",
    "dts",
    "truehd",
    "flac",
    "amr",
    "amrnb",
    "amrwb",
    "qcp",
    "gsm",
    "wv",
    "ape",
    "tta",
    "tak",
    "mpc",
    "mpc8",
    "oma",
    "xwma",
    "dsf",
    "voc",
)
FORMAT_WHITELIST = ",".join(DEMUXERS)

#: Demuxers whose input names other inputs; named in the message when ffmpeg detects one.
INDIRECT_DEMUXERS = frozenset(
    {
        "hls",
        "applehttp",
        "dash",
        "webm_dash_manifest",
        "concat",
        "ffconcat",
        "image2",
        "imf",
        "lavfi",
        "sdp",
        "rtp",
        "rtsp",
        "sap",
        "data",
        "subfile",
        "tee",
    }
)

#: How many bytes of the file are sniffed.
HEAD_BYTES = 4096

#: Text signatures of playlists, lists and manifests (matched at the start, after a BOM and
#: white space, case-insensitively), with the name the message gives them.
_SIGNATURES: list[tuple[re.Pattern[bytes], str]] = [
    (re.compile(p, re.IGNORECASE), name)
    for p, name in [
        (rb"#EXTM3U|#EXTINF|#EXT-X-", "hls"),
        (rb"ffconcat\b", "ffconcat"),
        (rb"file\s+\S", "concat"),
        (rb"\[playlist\]", "pls"),
        (rb";FFMETADATA", "ffmetadata"),
        (rb"v=0\s", "sdp"),
        (rb"<\?xml|<mpd\b|<smil\b|<asx\b|<playlist\b|<\?wpl\b", "xml manifest"),
    ]
]
#: A text file that names a URL or an absolute path anywhere in its head.
_TEXT_POINTER = re.compile(rb"[a-z][a-z0-9+.-]{1,15}://|(?:^|[\s'\"=])/[\w.-]+/", re.IGNORECASE)


def refused(detail: str) -> InvalidInput:
    """The error for a file that is (or may be) a pointer to other inputs."""
    return InvalidInput(Note("playlist", detail=detail), reason="REFERENCES_OTHER_FILES")


def sniff(head: bytes) -> str | None:
    """The kind of playlist/list/manifest ``head`` (the file's first bytes) starts, if any."""
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    for pattern, name in _SIGNATURES:
        if pattern.match(text):
            return name
    if _is_text(head) and _TEXT_POINTER.search(head):
        return "text naming other files or URLs"
    return None


def check_head(source: Path | bytes) -> None:
    """Refuse ``source`` (a file or its bytes) before any ffmpeg reads it when its first bytes
    are a playlist & co."""
    if isinstance(source, Path):
        with source.open("rb") as f:
            head = f.read(HEAD_BYTES)
    else:
        head = source[:HEAD_BYTES]
    kind = sniff(head)
    if kind is not None:
        raise refused(kind)


def check_format(format_name: str) -> None:
    """Refuse a probed container that is not on the list (ffprobe's whitelist should already
    have; this holds even if a build of ffmpeg ignored the option)."""
    names = set(format_name.split(","))
    if names & INDIRECT_DEMUXERS:
        raise refused(format_name)
    if not names & set(DEMUXERS):
        raise InvalidInput(Note("format_not_accepted", format=format_name), reason="INVALID_MEDIA")


_NOT_ON_WHITELIST = re.compile(rb"\[([\w,]+) @ 0x[0-9a-fA-F]+\] Format not on whitelist")


def whitelist_refusal(stderr: bytes | None) -> InvalidInput | None:
    """The error for ffmpeg's "Format not on whitelist" (naming the demuxer it detected)."""
    found = _NOT_ON_WHITELIST.search(stderr or b"")
    if found is None:
        return None
    name = found.group(1).decode("ascii", errors="replace")
    if set(name.split(",")) & INDIRECT_DEMUXERS:
        return refused(name)
    return InvalidInput(Note("format_not_accepted", format=name), reason="INVALID_MEDIA")


def input_options(protocols: str = PROTOCOLS) -> dict[str, str]:
    """ffmpeg/ffprobe input options (before ``-i``; PyAV's ``container_options``) that hold for
    every nested open. ``protocols``: PROTOCOLS for a local file, NO_PROTOCOLS for bytes."""
    return {"protocol_whitelist": protocols, "format_whitelist": FORMAT_WHITELIST}


def file_url(path: Path) -> str:
    """``file:`` + the absolute path: no part of a file name can be read as a protocol."""
    return "file:" + str(path.resolve())


def _is_text(head: bytes) -> bool:
    if not head or b"\0" in head:
        return False
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a multi-byte character cut at the end of the head
        if exc.start < len(head) - 4:
            return False
        decoded = head[: exc.start].decode("utf-8")
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in decoded)
    return printable >= 0.95 * len(decoded)
