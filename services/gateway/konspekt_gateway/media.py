"""Serving the recording to its owner's player: HTTP range requests (RFC 9110 §14) over an S3
ranged GET, and a content type that is always a video or audio one (never what an upload said
it was, if that was anything else)."""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass

#: One byte range: ``bytes=first-last``, ``bytes=first-`` or ``bytes=-suffix``.
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
#: What the player is sent when neither the upload's type nor its name says video or audio.
FALLBACK_TYPE = "application/octet-stream"
#: The media response's own policy: it is data for a <video>/<audio> element, never a document.
MEDIA_CSP = "default-src 'none'; media-src 'self'; sandbox"
#: File endings the page plays in an <audio> element (the rest in <video>, which plays both).
AUDIO_EXTENSIONS = frozenset(
    {"mp3", "wav", "m4a", "aac", "ogg", "oga", "opus", "flac", "wma", "amr", "weba", "mka", "aiff"}
)


class RangeNotSatisfiable(ValueError):
    """The Range header names no byte of the object (416)."""


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range of a ``Range`` header within an object of ``size`` bytes; None when the
    whole object is to be sent (no header, a unit other than bytes, several ranges or a header
    that does not parse: RFC 9110 lets a server ignore those). A last byte past the end is
    clipped to it. Raises RangeNotSatisfiable when the range starts at or past the end, or is an
    empty suffix."""
    if not header:
        return None
    match = _RANGE.match(header)
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(header)
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # invalid syntax: ignored
    if start >= size:
        raise RangeNotSatisfiable(header)
    return ByteRange(start, min(end, size - 1))


def playable_type(content_type: str, filename: str) -> str:
    """The upload's content type if it is a video or audio one, else one guessed from its name
    (only video or audio), else application/octet-stream. An upload stored as text/html never
    comes back as a page of this site."""
    ctype = content_type.split(";")[0].strip().lower()
    if ctype.startswith(("video/", "audio/")) and re.fullmatch(r"[a-z]+/[a-z0-9.+-]+", ctype):
        return ctype
    guessed, _ = mimetypes.guess_type(filename)
    if guessed and guessed.startswith(("video/", "audio/")):
        return guessed
    return FALLBACK_TYPE


def player_kind(content_type: str, filename: str, has_video: bool | None) -> str:
    """ "audio" or "video": which element plays it. A file that is audio by type or name, or
    that the audio stage found to have no picture, gets an <audio> element."""
    ctype = content_type.split(";")[0].strip().lower()
    ext = filename.rpartition(".")[2].lower() if "." in filename else ""
    if ctype.startswith("audio/") or ext in AUDIO_EXTENSIONS or has_video is False:
        return "audio"
    return "video"
