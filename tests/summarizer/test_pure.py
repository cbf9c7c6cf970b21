"""Pure functions of the konspekt logic: no model involved."""

from __future__ import annotations

import importlib.util
import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from pydantic import ValidationError

from konspekt.cli import fmt_time
from konspekt.errors import FailedPrecondition
from konspekt.v1 import common_pb2
from konspekt_summarizer.answer import (
    ACTION_ITEMS_MAX,
    DECISIONS_MAX,
    KEY_POINTS_MAX,
    SUMMARY_MAX,
    TIME_PATTERN,
    TITLE_MAX,
    KonspektOut,
    konspekt_schema,
    parse_answer,
    salvage_answer,
    salvage_json,
)
from konspekt_summarizer.checks import check_free_text, clean_field
from konspekt_summarizer.cli import guess_language, transcript_from_text
from konspekt_summarizer.cues import MAX_CANDIDATES, uncovered
from konspekt_summarizer.engine import Completion
from konspekt_summarizer.evidence import (
    Evidence,
    dedupe,
    find_evidence,
    locate,
    parse_time,
    required_overlap,
)
from konspekt_summarizer.konspekt import Summarizer, Usage
from konspekt_summarizer.openai_engine import api_root, estimate_tokens, response_format
from konspekt_summarizer.owners import Names
from konspekt_summarizer.prompts import Prompts, prompts_for
from konspekt_summarizer.settings import DEFAULT_MODELS, SummarizerSettings
from konspekt_summarizer.vllm_engine import VllmEngine
from konspekt_summarizer.windows import Line, split_windows, transcript_lines

from .conftest import load_transcript


def pass_asks(style: int, prompts: Prompts) -> list[str]:
    """The instructions of one pass over a window, in the order they are asked (``Summarizer._read``):
    a meeting's tasks, its decisions and the rest each in a call of its own over the same (cached)
    transcript; a lecture's whole konspekt in one call."""
    if style == common_pb2.STYLE_LECTURE:
        return [prompts.ask_all]
    return [prompts.ask_tasks, prompts.ask_decisions, prompts.ask_rest]


#: Model calls of one pass over a window, by style.
CALLS_PER_WINDOW: dict[int, int] = {
    style: len(pass_asks(style, prompts_for("en")))
    for style in (common_pb2.STYLE_MEETING, common_pb2.STYLE_LECTURE)
}


def meeting_calls(transcript: common_pb2.Transcript, answer: dict[str, Any]) -> int:
    """The calls of a meeting that fits one window when every call gets ``answer``: one pass
    (``CALLS_PER_WINDOW``), plus one when lines that look like a decision or a task are left
    uncovered by its decisions and tasks (``cues``; ``Summarizer._review``)."""
    items = [(d["text"], d.get("time", "")) for d in answer.get("decisions", [])]
    items += [
        (f"{a['task']} {a['owner']} {a['due']}", a.get("time", "")) for a in answer.get("action_items", [])
    ]
    left = uncovered(transcript_lines(transcript), items, Names.of(transcript.segments).people)
    return CALLS_PER_WINDOW[common_pb2.STYLE_MEETING] + (1 if left else 0)


def seg(start: float, end: float, text: str) -> common_pb2.Segment:
    return common_pb2.Segment(start=start, end=end, text=text)


SEGMENTS = [
    seg(0.0, 5.5, "Welcome everyone to the budget review."),
    seg(5.5, 12.7, "Marketing spent forty thousand on ads."),
    seg(12.7, 20.0, "Boris will send the invoice by Friday."),
    seg(20.0, 30.0, "We decided to cut the travel budget."),
    seg(95.0, 101.0, "Thanks, that is all."),
]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("00:12", 12.0),
        ("1:05", 65.0),
        ("[03:20]", 200.0),
        ("1:02:03", 3723.0),
        ("75:00", 4500.0),
        ("42", 42.0),
        ("12.5", 12.5),
        ("00:61", None),
        ("soon", None),
        ("", None),
    ],
)
def test_parse_time(text: str, seconds: float | None) -> None:
    assert parse_time(text) == seconds


def test_locate_prefers_the_cited_line_label() -> None:
    # 12.7 is cited as "00:12": the label of segment 2, although 12 s lies inside segment 1.
    assert locate("00:12", "invoice", SEGMENTS) == 2
    assert locate("00:05", "forty thousand on ads", SEGMENTS) == 1  # 5.5 s is labelled 00:05
    assert locate("00:00", "welcome", SEGMENTS) == 0


def test_locate_containing_then_nearest() -> None:
    assert locate("00:25", "", SEGMENTS) == 3  # inside [20, 30]
    assert locate("01:00", "", SEGMENTS) == 4  # in a gap: start 95 is nearer than 20
    assert locate("01:30", "", SEGMENTS) == 4
    assert locate("10:00", "", SEGMENTS) == 4


def test_locate_neighbour_only_when_clearly_better() -> None:
    # cited one line too late; the text matches the line before
    assert locate("00:20", "Boris sends the invoice", SEGMENTS) == 2
    # cited line shares as many words as the neighbour: the cited line stays
    assert locate("00:20", "budget", SEGMENTS) == 3


def test_locate_without_time_uses_word_overlap() -> None:
    assert locate("", "cut the travel budget", SEGMENTS) == 3
    assert locate("later", "invoice from Boris", SEGMENTS) == 2
    assert locate("", "quantum chromodynamics", SEGMENTS) == -1
    assert locate("00:10", "anything", []) == -1


def test_locate_russian_word_forms() -> None:
    segments = [
        seg(0, 5, "Начинаем встречу."),
        seg(5, 10, "Дмитрий подготовит выгрузку клиентов до пятницы."),
    ]
    assert locate("", "Выгрузка клиентов", segments) == 1


def test_dedupe_drops_empty_and_near_duplicates() -> None:
    items = [
        "Move the release to March 17th.",
        "move the release to March 17th",
        "Move the release to March 17",
        "   ",
        "Stay with Mixpanel",
        "...",
    ]
    assert dedupe(items, lambda s: s) == ["Move the release to March 17th.", "Stay with Mixpanel"]


def test_clean_field_keeps_only_what_was_said() -> None:
    said = {"boris", "will", "send", "invoice", "friday", "среды", "дмитрий", "пятницы"}
    assert clean_field("Boris", said) == "Boris"
    assert clean_field("Friday.", said) == "Friday"
    assert clean_field("Not specified", said) == ""
    assert clean_field("не указан", said) == ""
    assert clean_field("Alice", said) == ""  # nobody said Alice
    assert clean_field("2024-03-15", said) == ""  # invented date
    assert clean_field("среда", said) == "среда"  # "до среды" was said
    assert clean_field("Дмитрию", said) == "Дмитрию"


def test_schema_bounds_every_string_and_array() -> None:
    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            kind = node.get("type")
            if kind == "array":
                assert "maxItems" in node, path
            if kind == "string":
                assert "maxLength" in node or "pattern" in node, path
            for key, value in node.items():
                walk(value, f"{path}.{key}")

    for style in (common_pb2.STYLE_MEETING, common_pb2.STYLE_LECTURE):
        schema = konspekt_schema(style)
        walk(schema, "")
        props = schema["properties"]
        assert props["title"]["maxLength"] == TITLE_MAX
        assert props["summary"]["maxLength"] == SUMMARY_MAX
        assert props["key_points"]["maxItems"] == KEY_POINTS_MAX
        assert props["action_items"]["maxItems"] == ACTION_ITEMS_MAX
        assert set(schema["required"]) == set(props)
    # a meeting's tasks first (the model writes fields in schema order), a lecture's key points
    assert list(konspekt_schema(common_pb2.STYLE_MEETING)["properties"])[1] == "action_items"
    assert list(konspekt_schema(common_pb2.STYLE_LECTURE)["properties"])[1] == "key_points"
    assert re.match(TIME_PATTERN, "01:02:03") and re.match(TIME_PATTERN, "12:30")
    assert not re.match(TIME_PATTERN, "12:3")


def test_parse_answer() -> None:
    good = {
        "title": " Sync ",
        "summary": "We met.",
        "key_points": [{"text": "x" * 1000, "time": "00:01"}] * 20,
        "decisions": [],
        "action_items": [{"task": "Send", "owner": None, "due": "", "time": "00:02"}],
    }
    out = parse_answer(json.dumps(good), KonspektOut)
    assert out.title == "Sync"
    assert len(out.key_points) == KEY_POINTS_MAX
    assert out.action_items[0].owner == ""
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_answer('{"title": "cut off', KonspektOut)
    with pytest.raises(ValueError, match="summary"):
        parse_answer(json.dumps({**good, "summary": "  "}), KonspektOut)
    with pytest.raises(ValueError, match="title"):
        parse_answer(json.dumps({"summary": "x"}), KonspektOut)


def test_transcript_lines_skip_empty_segments_and_keep_indexes() -> None:
    t = common_pb2.Transcript(
        segments=[seg(0, 1, " hello "), seg(1, 2, "  "), seg(3725.2, 3727, "late  words")]
    )
    lines = transcript_lines(t)
    assert [(ln.index, ln.render()) for ln in lines] == [(0, "[00:00] hello"), (2, "[1:02:05] late words")]


def words(text: str) -> int:
    return len(text.split())


def test_split_windows_on_segment_boundaries_without_losing_anything() -> None:
    lines = [Line(i, f"00:{i:02d}", f"segment {i} has five words") for i in range(20)]
    # each rendered line: 6 words + 1 for the newline = 7 "tokens"
    windows = split_windows(lines, words, budget=30)
    assert len(windows) == 5
    assert all(sum(words(ln.render()) + 1 for ln in w) <= 30 for w in windows)
    assert [ln for w in windows for ln in w] == lines
    assert split_windows(lines, words, budget=10_000) == [lines]


def test_split_windows_cuts_an_oversized_line_into_pieces() -> None:
    long = Line(3, "00:09", " ".join(f"w{i}" for i in range(100)))
    windows = split_windows([Line(0, "00:00", "short"), long], words, budget=20)
    pieces = [ln for w in windows for ln in w if ln.index == 3]
    assert len(pieces) > 1
    assert " ".join(p.text for p in pieces) == long.text
    assert all(words(ln.render()) + 1 <= 20 for w in windows for ln in w)


def test_prompts_are_in_the_language_of_the_meeting() -> None:
    ru = prompts_for("ru")
    cyr = len(re.findall(r"[а-яё]", ru.system_meeting, re.I))
    assert cyr > 0.8 * len(re.findall(r"[a-zа-яё]", ru.system_meeting, re.I))
    assert "English" in prompts_for("en").system_meeting
    assert "German" in prompts_for("de").system_meeting
    de = prompts_for("de")
    for style in (common_pb2.STYLE_MEETING, common_pb2.STYLE_LECTURE):
        assert all("German" in ask for ask in pass_asks(style, de))
        assert all("по-русски" in ask for ask in pass_asks(style, ru))
    # the transcript comes before any instruction: the calls over it share their start (KV cache)
    assert de.user.rstrip().endswith("{lines}") and ru.user.rstrip().endswith("{lines}")
    assert "lecture" in prompts_for("en").system_lecture


def test_text_files_become_transcripts() -> None:
    t = transcript_from_text("Привет всем.\n\nСегодня обсуждаем бюджет на следующий квартал.\n")
    assert t.language == "ru"
    assert [s.text for s in t.segments] == ["Привет всем.", "Сегодня обсуждаем бюджет на следующий квартал."]
    assert t.segments[1].start == t.segments[0].end > 0
    assert guess_language("Hello there") == "en"


def test_scripted_meetings_are_well_formed(facts: dict[str, object]) -> None:
    for name in sorted(facts):
        t = load_transcript(name)
        assert 10 <= len(t.segments) <= 20
        assert all(s.end > s.start for s in t.segments)
        assert name in facts


# -- evidence ---------------------------------------------------------------------------------------

BRIGADE = [seg(0.0, 6.0, "Ну, сейчас у тебя приедет бригада, и ты им всё покажешь на месте.")]


def test_invented_item_has_no_evidence() -> None:
    # what the 1.5B wrote for a 6-second clip that only says the line above
    found = find_evidence("00:00", "Она состоит из 5 человек", BRIGADE)
    assert found.index == -1 and "nowhere" in found.note
    assert find_evidence("00:00", "Приедет бригада", BRIGADE) == Evidence(0)
    moved = find_evidence("", "Бригада приедет сейчас", BRIGADE)
    assert moved.index == 0 and "no usable time" in moved.note
    assert find_evidence("0:03", "Anything", []).index == -1


def test_evidence_near_the_cited_time() -> None:
    assert find_evidence("00:05", "Marketing spent forty thousand", SEGMENTS).index == 1
    # cited next to the right line: still near enough (a neighbour)
    assert find_evidence("00:00", "Marketing spent forty thousand on ads", SEGMENTS).index == 1
    # a long invented sentence sharing one common word is not evidence
    assert (
        find_evidence("00:12", "The budget doubled because the board approved hiring", SEGMENTS).index == -1
    )


def test_time_outside_the_transcript_is_moved_to_its_words_or_dropped() -> None:
    last = SEGMENTS[-1]
    words = last.text.split()[:4]
    found = find_evidence("59:00", " ".join(words), SEGMENTS)
    assert found.index == len(SEGMENTS) - 1 and "not a time in the transcript" in found.note
    assert find_evidence("59:00", "Quantum chromodynamics lecture", SEGMENTS).index == -1
    assert find_evidence("soon", " ".join(words), SEGMENTS).index == len(SEGMENTS) - 1


def test_evidence_far_from_the_cited_time_is_moved_with_a_note() -> None:
    segments = [seg(i * 10.0, i * 10.0 + 9, f"Filler sentence number {i} about weather.") for i in range(12)]
    segments.append(seg(120.0, 125.0, "Kate will send the invitations by Friday."))
    found = find_evidence("00:00", "Kate sends the invitations", segments)
    assert found.index == 12 and "nothing near 00:00 says it" in found.note


def test_required_overlap_grows_with_the_item() -> None:
    assert required_overlap("Mixpanel") == 1
    assert required_overlap("Release on March 17") == 1
    assert required_overlap("Boris will fix the login crash by Wednesday") == 2


class ScriptedEngine:
    """Answers every call with the same JSON: the konspekt logic without a model."""

    name = "scripted"
    context_size = 4096
    parallel = 1

    def __init__(self, answer: dict[str, object]) -> None:
        self.answer = json.dumps(answer, ensure_ascii=False)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def complete_json(
        self, messages: object, schema: object, max_tokens: int, on_token: object = None
    ) -> Completion:
        return Completion(self.answer, 100, 50, 0.1)


RU_MEETING = [
    seg(0.0, 5.0, "Здесь Анна, Игорь и Марина. Говорим про запуск приложения для магазина."),
    seg(5.0, 10.0, "Платная подписка в первой версии нужна или нет?"),
    seg(10.0, 15.0, "Решили отказаться от платной подписки в первой версии."),
    seg(15.0, 20.0, "Третий вопрос — доступы. Договорились, что доступ получают только продажи."),
    seg(20.0, 25.0, "Анна согласует финальный дизайн с заказчиком до конца недели."),
    seg(25.0, 30.0, "Магазин приложений проверяет сборку примерно неделю."),
    seg(30.0, 35.0, "Всё, спасибо, созвонимся в четверг."),
]


def ru_konspekt() -> tuple[common_pb2.Konspekt, list[str]]:
    """What the 1.5B did with the second Russian test meeting, in small: a question as a
    decision, a decision as a task with no one to do it, a fact as a task with a thing as its
    owner, a decision and a task left out (one call: nothing is asked again)."""
    engine = ScriptedEngine(
        {
            "title": "Запуск приложения",
            "summary": "Обсудили запуск приложения.",
            "decisions": [{"text": "Платная подписка в первой версии нужна или нет?", "time": "00:05"}],
            "action_items": [
                {"task": "Решить отказаться от платной подписки", "owner": "", "due": "", "time": "00:10"},
                {"task": "Магазин проверяет сборку неделю", "owner": "Магазин", "due": "", "time": "00:25"},
            ],
            "key_points": [],
        }
    )
    settings = SummarizerSettings(engine="openai", base_url="http://model-server/v1")
    transcript = common_pb2.Transcript(language="ru", segments=RU_MEETING, duration=35.0)
    k, _, warnings = Summarizer(engine, settings).summarize(transcript)
    return k, warnings


def test_what_the_model_got_wrong_about_decisions_is_put_right() -> None:
    k, warnings = ru_konspekt()
    # its line says "решили" and no one is to do it: a decision. Of what the model left out
    # even when shown those lines again, the line that says plainly it was agreed
    # ("Договорились…" at 00:15) is kept word for word (a warning says so); so is Anna's task at
    # 00:20, said in the third person with its deadline (``exchanges``), as an action item.
    assert [(d.text, d.segment_index) for d in k.decisions] == [
        ("Решить отказаться от платной подписки", 2),
        ("Договорились, что доступ получают только продажи.", 3),
    ]
    assert [(a.task, a.owner, a.due, a.segment_index) for a in k.action_items] == [
        ("Анна согласует финальный дизайн с заказчиком до конца недели.", "Анна", "до конца недели", 4)
    ]
    # "Магазин" is said in lower case too: not a person; the "task" is a fact
    assert [(p.text, p.segment_index) for p in k.key_points] == [("Магазин проверяет сборку неделю", 5)]
    assert any("a question is not a decision" in w for w in warnings)
    assert any("listed as a decision" in w for w in warnings)
    assert any("not a person named in the transcript; dropped; listed as a key point" in w for w in warnings)
    assert [w for w in warnings if "word for word" in w] == [
        "decision 'Договорились, что доступ получают только продажи.': "
        "the model left it out; taken word for word at 00:15",
        "action item 'Анна согласует финальный дизайн с заказчиком до конца недели.': "
        "the model left it out; taken word for word from 00:20",
    ]


def test_a_plain_decision_after_many_other_candidates_is_still_kept() -> None:
    """The model is shown again only the first ``MAX_CANDIDATES`` lines that look like a
    decision or a task; a line further on that says plainly it was decided (a long meeting: the
    parents' committee's "Решили: покупаем шторы…" was its 13th) is still kept as said."""
    promises = [f"Я позвоню поставщику номер {i} до пятницы." for i in range(MAX_CANDIDATES + 2)]
    said = [*promises, "Решили: покупаем шторы из фонда класса, но не дороже пятнадцати тысяч."]
    segments = [seg(5.0 * i, 5.0 * i + 5.0, text) for i, text in enumerate(said)]
    engine = ScriptedEngine(
        {"title": "Комитет", "summary": "Комитет.", "decisions": [], "action_items": [], "key_points": []}
    )
    settings = SummarizerSettings(engine="openai", base_url="http://model-server/v1")
    transcript = common_pb2.Transcript(language="ru", segments=segments, duration=5.0 * len(said))
    k, _, _ = Summarizer(engine, settings).summarize(transcript)
    assert [(d.text, d.segment_index) for d in k.decisions] == [
        ("Решили: покупаем шторы из фонда класса, но не дороже пятнадцати тысяч.", len(promises))
    ]


def test_what_the_second_look_adds_is_not_cut_at_the_answer_limit() -> None:
    """Each model answer holds at most ``DECISIONS_MAX`` decisions; what the second look and the
    checks add comes after them and is kept (the window's lists were validated again and cut
    there: a meeting's ninth decision, found by the second look, was lost)."""
    said = [f"Решили: закупаем оборудование номер {i} для склада." for i in range(DECISIONS_MAX)]
    said.append("Итак, решили: с понедельника вводим ночную смену на складе.")
    segments = [seg(5.0 * i, 5.0 * i + 5.0, text) for i, text in enumerate(said)]
    decisions = [{"text": text, "time": f"00:{5 * i:02d}"} for i, text in enumerate(said[:DECISIONS_MAX])]
    engine = ScriptedEngine(
        {"title": "Склад", "summary": "Склад.", "decisions": decisions, "action_items": [], "key_points": []}
    )
    settings = SummarizerSettings(engine="openai", base_url="http://model-server/v1")
    transcript = common_pb2.Transcript(language="ru", segments=segments, duration=5.0 * len(said))
    k, _, _ = Summarizer(engine, settings).summarize(transcript)
    assert len(k.decisions) == DECISIONS_MAX + 1
    assert k.decisions[-1].text == "Итак, решили: с понедельника вводим ночную смену на складе."


def test_summarizer_drops_items_without_evidence(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"x")
    settings = SummarizerSettings(model=str(model), n_ctx=4096, max_tokens=500)
    engine = ScriptedEngine(
        {
            "title": "Бригада",
            "summary": "Едет бригада.",
            "key_points": [
                {"text": "Приедет бригада", "time": "00:00"},
                {"text": "Она состоит из 5 человек", "time": "00:00"},
            ],
            "decisions": [{"text": "Решили купить новый сервер", "time": "00:03"}],
            "action_items": [{"task": "Позвонить в банк", "owner": "", "due": "", "time": "00:00"}],
        }
    )
    transcript = common_pb2.Transcript(language="ru", segments=BRIGADE)
    k, _, warnings = Summarizer(engine, settings).summarize(transcript)
    assert [p.text for p in k.key_points] == ["Приедет бригада"]
    assert k.key_points[0].segment_index == 0
    assert not k.decisions and not k.action_items
    assert len([w for w in warnings if "dropped" in w]) == 3, warnings
    assert any("Она состоит из 5 человек" in w for w in warnings)


def test_salvage_json_keeps_the_complete_parts_of_a_cut_answer() -> None:
    whole = {
        "title": "Sync",
        "decisions": [
            {"text": "Ship on March 17", "time": "00:20"},
            {"text": "Invite 50 testers", "time": "00:41"},
        ],
        "summary": "We moved the release.",
    }
    text = json.dumps(whole)
    assert salvage_json(text) == whole
    cut = text[: text.index("Invite") + 3]  # inside the second decision's text
    assert salvage_json(cut) == {"title": "Sync", "decisions": [whole["decisions"][0]]}
    # a quote escaped inside a string does not end it; brackets inside strings do not count
    assert salvage_json('{"title": "a \\"[b\\" {", "key_points": [{"text": "x"}, {"te') == {
        "title": 'a "[b" {',
        "key_points": [{"text": "x"}],
    }
    assert salvage_json('{"tit') is None
    assert salvage_json("no json at all") is None


def test_a_cut_answer_without_summary_gets_one_from_its_checked_points() -> None:
    cut = (
        '{"title": "Sync", "decisions": [{"text": "Ship version 2.4 on March 17", "time": "00:20"}], '
        '"key_points": [{"text": "Payment screen crashes.", "time": "00:13"}, {"text": "Beta te'
    )
    out = salvage_answer(cut, KonspektOut)
    assert out is not None
    assert out.summary == "Payment screen crashes. Ship version 2.4 on March 17."
    assert [p.text for p in out.key_points] == ["Payment screen crashes."]
    assert salvage_answer('{"title": "Sync", "decisions": [', KonspektOut) is None  # nothing to say


class CutOffEngine:
    """Answers every call with the same text, cut off at the token limit (finish "length")."""

    name = "cut-off"
    context_size = 4096
    parallel = 1

    def __init__(self, text: str) -> None:
        self.text = text
        self.calls = 0

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def complete_json(
        self, messages: object, schema: object, max_tokens: int, on_token: object = None
    ) -> Completion:
        self.calls += 1
        return Completion(self.text, 100, max_tokens, 0.1, finish_reason="length")


def test_an_answer_cut_off_is_repaired_from_its_complete_items(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"x")
    settings = SummarizerSettings(model=str(model), n_ctx=4096, max_tokens=500)
    engine = CutOffEngine(
        '{"title": "Бригада", "decisions": [], "action_items": [], '
        '"key_points": [{"text": "Приедет бригада", "time": "00:00"}, {"text": "Приедет бригада, она сос'
    )
    transcript = common_pb2.Transcript(language="ru", segments=BRIGADE)
    k, usage, warnings = Summarizer(engine, settings).summarize(transcript)
    # each call repaired at once: a second try would cost as much and be cut off as well
    assert engine.calls == usage.calls == CALLS_PER_WINDOW[common_pb2.STYLE_MEETING]
    assert k.title == "Бригада" and k.summary == "Приедет бригада."
    assert [p.text for p in k.key_points] == ["Приедет бригада"]
    assert "summary: the answer was cut off at 500 tokens; its complete items were kept" in warnings
    assert sum("the answer was cut off at 500 tokens" in w for w in warnings) == engine.calls
    # cut off before anything complete: asked again once, then a clear failure, never an empty
    # konspekt
    nothing = CutOffEngine('{"title": "Брига')
    with pytest.raises(FailedPrecondition, match="cut off at 500 tokens"):
        Summarizer(nothing, settings).summarize(transcript)
    assert nothing.calls == 2  # the first call and its retry


def test_a_few_words_are_quoted_not_summarized(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"x")
    settings = SummarizerSettings(model=str(model), n_ctx=4096, max_tokens=500)
    engine = CutOffEngine("{}")
    for language, words, title, summary in (
        (
            "en",
            ["And", "so my fellow", "Americans"],
            "Too little speech to summarize",
            "“And so my fellow Americans”",
        ),
        (
            "ru",
            ["Ну,", "сейчас приедет бригада."],
            "Слишком мало речи для конспекта",
            "«Ну, сейчас приедет бригада.»",
        ),
    ):
        transcript = common_pb2.Transcript(
            language=language, segments=[seg(2.0 * i, 2.0 * i + 1, w) for i, w in enumerate(words)]
        )
        k, usage, warnings = Summarizer(engine, settings).summarize(transcript, common_pb2.STYLE_LECTURE)
        assert engine.calls == 0 and usage.calls == 0  # no model, so nothing invented
        assert (k.language, k.title, k.style) == (language, title, common_pb2.STYLE_LECTURE)
        assert k.summary.endswith(summary)
        assert not (k.key_points or k.decisions or k.action_items)
        assert len(warnings) == 1 and "too few to summarize" in warnings[0]
    # ten words are summarized
    ten = common_pb2.Transcript(language="en", segments=[seg(0.0, 5.0, " ".join(["word"] * 10))])
    with pytest.raises(FailedPrecondition):
        Summarizer(engine, settings).summarize(ten)
    # "{}" is a valid answer of no tasks or decisions; the last call needs a title: retried once
    assert engine.calls == CALLS_PER_WINDOW[common_pb2.STYLE_MEETING] + 1


class PromptedEngine:
    """Answers by what the last message asks for: the konspekt logic without a model."""

    name = "prompted"
    context_size = 8192
    parallel = 1

    def __init__(self, answers: dict[str, dict[str, object]]) -> None:
        self.answers = answers
        self.prompts: list[str] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def complete_json(
        self, messages: list[dict[str, str]], schema: object, max_tokens: int, on_token: object = None
    ) -> Completion:
        self.prompts.append(messages[-1]["content"])
        for cue, answer in self.answers.items():
            if cue in messages[-1]["content"]:
                return Completion(json.dumps(answer), 100, 50, 0.1)
        raise AssertionError(f"unexpected prompt: {messages[-1]['content'][:200]}")


@pytest.mark.parametrize("style", [common_pb2.STYLE_MEETING, common_pb2.STYLE_LECTURE])
def test_a_meeting_that_fits_one_window_is_read_in_one_pass(tmp_path: Path, style: int) -> None:
    """Nothing reads the transcript again: a 30-minute meeting whose answer cites only its start
    and end (what the 1.5B did to a 60-minute one) costs one pass, and the konspekt is what that
    answer says, checked. A meeting's pass is two calls over the same transcript (its tasks, then
    the rest), a lecture's one."""
    model = tmp_path / "m.gguf"
    model.write_bytes(b"x")
    settings = SummarizerSettings(model=str(model), n_ctx=8192, max_tokens=500)
    topics = ["the budget for next year", "the Dublin office lease", "hiring two engineers"]
    segments = [
        seg(30.0 * i, 30.0 * i + 25, f"We talk about {topics[i // 20]}, part {i}.") for i in range(60)
    ]
    transcript = common_pb2.Transcript(language="en", segments=segments, duration=1800.0)
    first = {"text": "The budget for next year", "time": "00:30"}
    last = {"text": "Hiring two engineers", "time": "25:00"}
    engine = PromptedEngine(
        {"Transcript": {"title": "Plans", "summary": "Budget and hiring.", "key_points": [first, last]}}
    )
    progress: list[float] = []
    k, usage, warnings = Summarizer(engine, settings).summarize(
        transcript, style, on_progress=lambda f, _m: progress.append(f)
    )
    calls = CALLS_PER_WINDOW[style]
    assert usage.calls == len(engine.prompts) == calls
    # every call reads all of it, the transcript first: only the instruction after it differs
    prompts = prompts_for("en")
    kind = "lecture" if style == common_pb2.STYLE_LECTURE else "meeting"
    asks = [ask.format(kind=kind) for ask in pass_asks(style, prompts)]
    assert all(p.endswith(ask) for p, ask in zip(engine.prompts, asks, strict=True))
    (read,) = {p.removesuffix(ask) for p, ask in zip(engine.prompts, asks, strict=True)}
    assert all(f"[{fmt_time(s.start)}] {s.text}" in read for s in segments)
    assert (usage.prompt_tokens, usage.completion_tokens) == (100 * calls, 50 * calls)
    # the transcript is read once (the first call; the others find it in the KV cache), the
    # konspekt written once
    assert (usage.read_tokens, usage.pass_completion_tokens) == (100, 50 * calls)
    assert [(p.text, p.segment_index) for p in k.key_points] == [
        ("The budget for next year", 1),
        ("Hiring two engineers", 50),
    ]
    assert (k.title, k.summary) == ("Plans", "Budget and hiring.")
    assert not warnings
    assert progress == sorted(progress) and progress[-1] == 1.0


def test_usage_prices_one_pass_over_the_transcript() -> None:
    """One pass: the transcript read once (a window's first call) and the konspekt written once
    (the first tries), at the rates of all the calls; later calls of a window, retries and merges
    are overhead over it."""
    usage = Usage("m")
    usage.add(Completion("{}", 1000, 100, 3.0, prompt_seconds=1.0), first_pass=True, reads=True)
    usage.add(Completion("{}", 1050, 50, 1.2, prompt_seconds=0.2), first_pass=True)  # cached transcript
    usage.add(Completion("{}", 1050, 50, 1.2, prompt_seconds=0.2))  # its retry
    usage.add(Completion("{}", 200, 50, 2.0, prompt_seconds=9.0))  # a merge: reading capped at 2 s
    assert usage.calls == 4 and (usage.prompt_tokens, usage.completion_tokens) == (3300, 250)
    assert usage.prompt_seconds == pytest.approx(3.4) and usage.seconds == pytest.approx(7.4)
    assert (usage.read_tokens, usage.read_seconds, usage.pass_completion_tokens) == (1000, 1.0, 150)
    # 250 tokens written in 7.4 - 3.4 s: 62.5 a second; the pass writes 150 of them
    assert usage.one_pass_seconds() == pytest.approx(1.0 + 150 / 62.5)
    proto = usage.to_proto()
    assert (proto.model, proto.calls, proto.prompt_tokens, proto.completion_tokens) == ("m", 4, 3300, 250)
    assert proto.prompt_seconds == pytest.approx(3.4)
    assert proto.one_pass_seconds == pytest.approx(usage.one_pass_seconds())
    # an engine that cannot tell the reading time: the time measured
    blind = Usage("m")
    blind.add(Completion("{}", 1000, 100, 3.0), first_pass=True, reads=True)
    assert blind.prompt_seconds == 0.0 and blind.one_pass_seconds() == 3.0


class BatchingEngine(PromptedEngine):
    """A server that batches (``parallel`` calls at once): calls overlap; each answers with the
    first line it was given."""

    context_size = 1024

    def __init__(self, parallel: int) -> None:
        super().__init__({})
        self.parallel = parallel
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0

    def complete_json(
        self, messages: list[dict[str, str]], schema: object, max_tokens: int, on_token: object = None
    ) -> Completion:
        with self.lock:
            self.prompts.append(messages[-1]["content"])
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.2)
        with self.lock:
            self.running -= 1
        first = re.search(r"\[(\d\d:\d\d)\] ([^\n]+)", messages[-1]["content"])
        points = [{"text": first.group(2), "time": first.group(1)}] if first else []  # not a merge
        return Completion(json.dumps({"title": "T", "summary": "S.", "key_points": points}), 100, 50, 0.2)


def test_windows_are_summarized_at_once_where_the_engine_batches(tmp_path: Path) -> None:
    """A 20-minute meeting in 4+ windows, on a server (3 calls at once) and on llama.cpp in
    process (one at a time): the same konspekt either way, one call per window and one merge."""
    model = tmp_path / "m.gguf"
    model.write_bytes(b"x")
    topics = ["budget", "office", "hiring", "travel", "security", "release"]
    segments = [
        seg(10.0 * i, 10.0 * i + 9, f"Line {i} is about the {topics[i // 20]} plans.") for i in range(120)
    ]
    transcript = common_pb2.Transcript(language="en", segments=segments, duration=1200.0)
    settings = SummarizerSettings(model=str(model), n_ctx=1024, max_tokens=200)
    konspekts = []
    for parallel in (3, 1):
        fake = BatchingEngine(parallel)
        summarizer = Summarizer(fake, settings)
        windows = summarizer.plan_windows(transcript)
        assert len(windows) >= 4
        progress: list[float] = []

        def report(fraction: float, _message: str, progress: list[float] = progress) -> None:
            progress.append(fraction)

        k, usage, _ = summarizer.summarize(transcript, on_progress=report)
        assert fake.most == parallel
        # each window's first line became its key point
        assert {w[0].index for w in windows} <= {p.segment_index for p in k.key_points}
        # one pass over each window (its own lines), one call to merge them; nothing read again
        per_window = CALLS_PER_WINDOW[common_pb2.STYLE_MEETING]
        merges = [p for p in fake.prompts if p.startswith("Summaries of the parts")]
        reads = [p for p in fake.prompts if p not in merges]
        assert usage.calls == len(fake.prompts) == per_window * len(windows) + 1 and len(merges) == 1
        for window in windows:
            assert sum(all(ln.render() in p for ln in window) for p in reads) == per_window
        passes = per_window * len(windows)
        assert (usage.read_tokens, usage.pass_completion_tokens) == (100 * len(windows), 50 * passes)
        assert progress == sorted(progress) and progress[-1] == 1.0
        konspekts.append(k)
    assert konspekts[0] == konspekts[1]


# -- title and summary: no names or numbers that were never said ---------------------------------

JFK_SAID = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)
JFK = [seg(0.0, 11.0, JFK_SAID)]


def test_summary_sentences_naming_what_was_never_said_are_dropped() -> None:
    """What the 1.5B wrote about the 11-second JFK clip, which names no one and no year."""
    free = check_free_text(
        "Jefferson's 1776 speech",
        "In this speech, Thomas Jefferson urges Americans to serve. It was given in 1776. "
        "The speaker asks what you can do for your country.",
        JFK,
    )
    assert free.summary == "The speaker asks what you can do for your country."
    assert free.title == ""
    assert len(free.warnings) == 3
    assert "Thomas, Jefferson not said" in free.warnings[0] and "1776 not said" in free.warnings[1]


def test_names_and_numbers_that_were_said_stay_in_any_form() -> None:
    segments = [
        seg(0.0, 6.0, "Третий вопрос — доступы. Договорились, что доступ к CRM получают продажи."),
        seg(6.0, 12.0, "Сергей настроит права доступа. Бюджет 1 500 000 рублей, Ольге согласовать."),
    ]
    summary = "Обсудили доступ к CRM. Права настроит Сергей, согласует Ольга. Бюджет — 1 500 000 рублей."
    free = check_free_text("Доступы к CRM: Weekly Sync 2026", summary, segments)
    assert free.summary == summary  # "Ольга" was said as "Ольге", the number with other spaces
    assert free.title == "" and "2026" in free.warnings[0]  # a year nobody said
    assert check_free_text("Weekly Sync Meeting", "Сергей настроит.", segments).title == "Weekly Sync Meeting"
    dropped = check_free_text("CRM", "Бюджет утвердил Иван Петрович.", segments)
    assert dropped.summary == "" and "Иван, Петрович not said" in dropped.warnings[0]


def test_a_konspekt_whose_summary_was_all_invented_falls_back_to_its_items(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"x")
    settings = SummarizerSettings(model=str(model), n_ctx=8192, max_tokens=500)
    engine = PromptedEngine(
        {
            "Transcript": {
                "title": "Boris and Jefferson",
                "summary": "Thomas Jefferson chaired the review.",
                "key_points": [{"text": "Marketing spent forty thousand on ads", "time": "00:05"}],
                "decisions": [{"text": "Cut the travel budget", "time": "00:20"}],
            },
        }
    )
    transcript = common_pb2.Transcript(language="en", segments=SEGMENTS, duration=101.0)
    k, _, warnings = Summarizer(engine, settings).summarize(transcript)
    assert k.title == "Konspekt of the meeting"
    assert k.summary == "Marketing spent forty thousand on ads."
    assert any("Jefferson not said" in w for w in warnings)


def test_a_short_recording_whose_konspekt_was_all_invented_is_quoted(tmp_path: Path) -> None:
    """What the small models made of JFK's 11 seconds: nothing of it survives the checks, so the
    summary is what was said, not an empty apology."""
    model = tmp_path / "m.gguf"
    model.write_bytes(b"x")
    settings = SummarizerSettings(model=str(model), n_ctx=8192, max_tokens=500)
    invented: dict[str, object] = {
        "title": "The Declaration of Independence",
        "summary": "Thomas Jefferson wrote the Declaration in 1776.",
        "key_points": [{"text": "It established the United States as a nation", "time": "00:02"}],
        "decisions": [{"text": "The declaration was written by Thomas Jefferson", "time": "00:01"}],
    }
    engine = PromptedEngine({"Transcript": invented})
    transcript = common_pb2.Transcript(language="en", segments=JFK, duration=11.0)
    k, _, warnings = Summarizer(engine, settings).summarize(transcript)
    assert not (k.key_points or k.decisions or k.action_items)
    assert k.summary == f"All that was said: “{JFK_SAID}”"
    assert any(w.startswith("summary sentence") and "Jefferson" in w for w in warnings)
    # a long transcript is not quoted whole: it gets the plain fallback
    many = [seg(float(i * 10), float(i * 10 + 10), JFK_SAID) for i in range(6)]  # 6 x 20 words
    long = common_pb2.Transcript(language="en", segments=many, duration=60.0)
    k, _, _ = Summarizer(engine, settings).summarize(long)
    assert k.summary == "No summary: the model's named people or numbers that were never said."


# -- engine selection ---------------------------------------------------------------------------


def test_vllm_without_vllm_installed_fails_fast_and_says_why() -> None:
    assert importlib.util.find_spec("vllm") is None, "vllm is installed: this test is for CPU machines"
    with pytest.raises(ValidationError, match="needs the vllm package, which is not installed"):
        SummarizerSettings(engine="vllm")
    with pytest.raises(FailedPrecondition, match="needs the vllm package") as info:
        VllmEngine("ErenBukov/llama_31_8b_7k_Dataset")
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert SummarizerSettings.model_fields["model"].default == ""  # each engine has its own default
    assert DEFAULT_MODELS["vllm"] == "ErenBukov/llama_31_8b_7k_Dataset"


def test_openai_settings() -> None:
    with pytest.raises(ValidationError, match="needs KONSPEKT_SUMMARIZER_BASE_URL"):
        SummarizerSettings(engine="openai")
    s = SummarizerSettings(engine="openai", base_url="http://vllm:8000/v1", api_key="sk-secret-42")
    assert (s.json_mode, s.api_model, s.request_timeout) == ("auto", "", 600.0)
    assert s.api_key is not None and "sk-secret-42" not in repr(s)  # a secret
    assert s.model == ""  # no model file needed: the server has it


def test_openai_request_shapes() -> None:
    schema = {"type": "object"}
    assert response_format("json_schema", schema) == {
        "type": "json_schema",
        "json_schema": {"name": "konspekt", "schema": schema, "strict": True},
    }
    assert response_format("json_object", schema) == {"type": "json_object", "schema": schema}
    assert api_root("http://vllm:8000/v1/") == "http://vllm:8000"
    assert api_root("http://llama:8080") == "http://llama:8080"
    # the fallback count overestimates (Qwen: ~4 chars/token in English, ~2.5 in Russian)
    assert estimate_tokens("The release moves to March 17th.") >= 8
    assert estimate_tokens("Релиз переносится на семнадцатое марта.") >= 16
