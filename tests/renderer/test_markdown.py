"""The konspekt as Markdown: the same layout as TXT and DOCX (one digest), both languages,
text that would be markup escaped, read back by a CommonMark parser (markdown-it-py)."""

from __future__ import annotations

import re

import pytest

from konspekt.v1 import common_pb2
from konspekt_renderer import engine, markdown


def test_markdown_english(en_konspekt: common_pb2.Konspekt, en_transcript: common_pb2.Transcript) -> None:
    text = markdown.render_konspekt_md(en_konspekt, en_transcript, "lecture.mp4").decode("utf-8")
    lines = text.splitlines()
    assert lines[0] == "# Political philosophy and the real world"
    assert re.fullmatch(
        r"\*Meeting · Source: lecture\.mp4 · Duration: 01:00 · Created: \d{4}-\d{2}-\d{2}\*", lines[2]
    )
    assert [line for line in lines if line.startswith("## ")] == [
        "## Summary",
        "## Key points",
        "## Decisions",
        "## Action items",
    ]
    assert [line for line in lines if line.startswith("- ")] == [
        "- [00:00] Start from where we are",
        "- [00:42] Piketty's 4% global wealth tax",
        "- [00:55] Focus on implementable proposals",
        "- [01:05] Read Capital in the 21st Century *— Owner: Anna, due: Friday*",
    ]
    assert en_konspekt.summary in lines
    assert text.endswith("*\n") and not text.endswith("\n\n")


def test_markdown_has_the_txt_layout(
    ru_konspekt: common_pb2.Konspekt, ru_transcript: common_pb2.Transcript
) -> None:
    """Item for item what the TXT says (one layout, two notations)."""
    md = markdown.render_konspekt_md(ru_konspekt, ru_transcript, "звонок.mp4").decode("utf-8")
    txt = engine.render_konspekt_txt(ru_konspekt, ru_transcript, "звонок.mp4").decode("utf-8")
    assert md.splitlines()[0] == "# " + txt.splitlines()[0]
    assert "## Задачи" in md and "## Ключевые моменты" in md
    md_items = [line for line in md.splitlines() if line.startswith("- ")]
    txt_items = [line for line in txt.splitlines() if line.startswith("- ")]
    assert [re.sub(r" \*(— .*)\*$", r" \1", line) for line in md_items] == txt_items
    assert "- [00:38] Проверить зачисление платежа *— Ответственный: Анна, срок: пятница*" in md_items


def test_markdown_escapes_what_would_be_markup(en_transcript: common_pb2.Transcript) -> None:
    konspekt = common_pb2.Konspekt(
        language="en",
        title="# C* and <b>bold</b> [link](http://x)",
        summary="- not a list\n1. not numbered\nsnake_case and `code`",
        key_points=[common_pb2.Point(text="*stars* _under_", at=3.0, segment_index=0)],
        style=common_pb2.STYLE_LECTURE,
    )
    md = markdown.render_konspekt_md(konspekt, en_transcript, "").decode("utf-8")
    lines = md.splitlines()
    assert lines[0] == r"# \# C\* and \<b\>bold\</b\> \[link\](http://x)"
    assert r"\- not a list" in lines and r"1\. not numbered" in lines
    assert r"snake\_case and \`code\`" in lines
    assert r"- [00:03] \*stars\* \_under\_" in lines
    assert "## Decisions" not in md  # a lecture leaves out empty decisions and tasks, as in TXT

    # read back by a CommonMark parser: the structure is the konspekt's, the text stays text
    markdown_it = pytest.importorskip("markdown_it")
    html = markdown_it.MarkdownIt("commonmark").render(md)
    assert html.count("<h1>") == 1 and html.count("<h2>") == 2  # summary, key points
    assert html.count("<li>") == 1 and "<ol" not in html
    assert "<b>" not in html and "<a " not in html and "<code>" not in html
    assert html.count("<em>") == 1  # the meta line alone
    assert "&lt;b&gt;bold&lt;/b&gt; [link](http://x)" in html and "*stars* _under_" in html


def test_markdown_without_speech() -> None:
    md = markdown.render_konspekt_md(common_pb2.Konspekt(language="ru"), common_pb2.Transcript(), "")
    assert md.decode("utf-8").splitlines() == [
        "# Конспект",
        "",
        md.decode("utf-8").splitlines()[2],
        "",
        "В записи не обнаружено речи, поэтому конспект пуст.",
    ]


def test_registry_has_markdown() -> None:
    spec = engine.FORMATS[engine.Format.FORMAT_KONSPEKT_MD]
    assert (spec.name, spec.content_type) == ("konspekt.md", "text/markdown; charset=utf-8")
    [rendered] = engine.Engine().render(
        common_pb2.Konspekt(title="T"), common_pb2.Transcript(), [spec.format]
    )
    assert rendered.name == "konspekt.md" and rendered.data.startswith(b"# T\n")
