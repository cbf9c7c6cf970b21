"""Download names: "<original name> — konspekt.docx", sent per RFC 6266 / RFC 5987."""

from __future__ import annotations

import re
import unicodedata
import urllib.parse

MEDIA_TYPES = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "txt": "text/plain; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "json": "application/json",
}

_CYRILLIC = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        (
            *("a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o"),
            *("p", "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya"),
        ),
        strict=True,
    )
)


def media_type(name: str) -> str:
    return MEDIA_TYPES.get(name.rpartition(".")[2], "application/octet-stream")


def download_name(stem: str, name: str) -> str:
    return f"{stem} — {name}"


def ascii_fallback(filename: str) -> str:
    """A plain-ASCII version for old clients: Cyrillic transliterated, the rest decomposed."""
    out = []
    for ch in filename:
        low = ch.lower()
        if low in _CYRILLIC:
            latin = _CYRILLIC[low]
            out.append(latin.capitalize() if ch != low else latin)
        elif ch in "—–":
            out.append("-")
        else:
            out.append(ch)
    text = unicodedata.normalize("NFKD", "".join(out)).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^A-Za-z0-9 ._()\[\]+,=-]", "_", text)
    return " ".join(text.split()).strip(" -_") or "download"


def content_disposition(filename: str) -> str:
    quoted = urllib.parse.quote(filename, safe="")
    return f"attachment; filename=\"{ascii_fallback(filename)}\"; filename*=UTF-8''{quoted}"
