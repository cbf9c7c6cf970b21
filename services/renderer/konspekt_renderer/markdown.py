"""The konspekt as Markdown ("konspekt.md"): the same layout as DOCX and TXT (``layout.digest``),
written as CommonMark — a level-1 title, the meta line in italics, a level-2 heading per
section, items as a list with their time marks. Text from the transcript or the model is
escaped, so a stray ``*``, ``_``, ``#``, ``[`` or ``<`` shows as itself and never becomes markup,
a link or HTML."""

from __future__ import annotations

import re

from konspekt.v1 import common_pb2
from konspekt_renderer.layout import digest

MARKDOWN_TYPE = "text/markdown; charset=utf-8"

#: Characters CommonMark could read as markup inside a line (a `!` or `~` stays: without an
#: unescaped `[` there is no image, and a lone `~` is no strikethrough).
_INLINE = re.compile(r"([\\`*_\[\]<>#])")
#: What would make a line a list item, a quote or a heading's underline at its start.
_LINE_START = re.compile(r"^(\s*)(?:([-+=>])|(\d+)([.)]))")


def escape(text: str) -> str:
    """``text`` as literal Markdown: inline markup characters and line-start markers escaped."""
    text = _INLINE.sub(r"\\\1", text)
    # "\-" for a marker; "1\." for a number (a backslash before a digit is no escape)
    return _LINE_START.sub(lambda m: f"{m[1]}\\{m[2]}" if m[2] else f"{m[1]}{m[3]}\\{m[4]}", text)


def render_konspekt_md(
    konspekt: common_pb2.Konspekt, transcript: common_pb2.Transcript, source_name: str
) -> bytes:
    d = digest(konspekt, transcript, source_name)
    lines = [f"# {escape(d.title)}", "", f"*{escape(d.meta)}*", ""]
    if d.notice:
        lines += [escape(d.notice), ""]
    for section in d.sections:
        lines += [f"## {escape(section.heading)}", ""]
        for text in section.paragraphs:
            lines += [escape(text), ""]
        for item in section.items:
            line = "- " + (f"{item.stamp} " if item.stamp else "") + escape(item.text)
            if item.note:
                line += f" *{escape(item.note)}*"
            lines.append(line)
        if section.items:
            lines.append("")
        if section.empty:
            lines += [f"*{escape(d.labels.none)}*", ""]
    return ("\n".join(lines).rstrip("\n") + "\n").encode("utf-8")
