"""Due dates checked against what was said where an action item comes from (owners: test_owners)."""

from __future__ import annotations

from typing import Any

import pytest

from konspekt.v1 import common_pb2
from konspekt_summarizer.checks import assignee, check_due, said_in
from konspekt_summarizer.dates import find_dates, is_date_word, number_of, pick_due
from konspekt_summarizer.engine import Completion
from konspekt_summarizer.konspekt import Summarizer
from konspekt_summarizer.settings import SummarizerSettings

from .conftest import load_transcript
from .test_pure import CALLS_PER_WINDOW, ScriptedEngine, meeting_calls


@pytest.mark.parametrize(
    ("text", "dates"),
    [
        ("Boris will fix the crashes by Wednesday, right?", ["by Wednesday"]),
        ("Anna will update the page before the release, by March 14th.", ["by March 14th"]),
        ("Please send it by the 14th.", ["by the 14th"]),
        ("We ship on 3 March 2025 or next Tuesday morning.", ["on 3 March 2025", "next Tuesday morning"]),
        (
            "Done by end of the month, or in two weeks, or tomorrow.",
            ["by end of the month", "in two weeks", "tomorrow"],
        ),
        ("Let's meet next week.", ["next week"]),
        ("Дмитрий подготовит выгрузку клиентов до пятницы.", ["до пятницы"]),
        ("Сергей настроит права доступа к двенадцатому ноября.", ["к двенадцатому ноября"]),
        ("Перенести на пятнадцатое ноября, отчёт к 15 марта.", ["на пятнадцатое ноября", "к 15 марта"]),
        (
            "Сделать до двадцать пятого декабря или до конца недели.",
            ["до двадцать пятого декабря", "до конца недели"],
        ),
        (
            "Пришлю завтра, встреча в среду, обсудим на следующей неделе.",
            ["завтра", "в среду", "на следующей неделе"],
        ),
        ("Срок — к 15.03.2025, черновик до 01.03.", ["к 15.03.2025", "до 01.03"]),
        # a weekday or "сегодня" said alone, as in a reply ("Описание обновлю я, понедельник")
        ("Описание обновлю я, понедельник.", ["понедельник"]),
        ("Разошлю приглашения сегодня, список пришлю к пятнице.", ["сегодня", "к пятнице"]),
        ("Хорошо, куплюда четверга.", ["четверга"]),  # ASR glued "куплю до"
        # not dates
        ("We may need version 2.4 soon. We march on. Today we talk.", []),
        ("Настроим всё в среде разработки, сходим в магазин.", []),
        ("Встречаемся по пятницам, среда разработки готова.", []),
    ],
)
def test_find_dates(text: str, dates: list[str]) -> None:
    assert [d.text for d in find_dates(text)] == dates


def test_pick_due_takes_only_a_clear_deadline() -> None:
    assert pick_due(["Kate will send the invitations by Friday."]) == "by Friday"
    assert pick_due(["Boris will fix it by Wednesday. Yes, by Wednesday."]) == "by Wednesday"
    assert pick_due(["Nothing about time here."]) == ""
    # two dates: the one with a deadline word wins; the other was the old plan
    assert pick_due(["We had planned March 10th; Boris will do it by March 17th."]) == "by March 17th"
    # two deadlines: the item text decides, else nothing (no guess)
    two = ["Kate sends the invitations by Friday and the report by Monday."]
    assert pick_due(two, hint="Send the report") == ""
    assert pick_due(two, hint="Send the report by Monday") == "by Monday"
    assert pick_due(two) == ""


def test_date_words() -> None:
    assert all(
        is_date_word(w) for w in ["Friday", "March", "14th", "пятницы", "двенадцатому", "ноября", "12"]
    )
    assert not any(is_date_word(w) for w in ["the", "release", "до", "Boris"])
    said = {"march", "14", "friday"}
    assert said_in("March 14", said) and said_in("by Friday", said)
    assert not said_in("Friday, March 3", said)  # "3" was never said
    assert not said_in("next Monday", said)


SEGMENTS = [
    common_pb2.Segment(start=0.0, end=6.0, text="We had planned to ship on March 10th."),
    common_pb2.Segment(start=6.0, end=12.0, text="Boris will fix the crash by Wednesday."),
    common_pb2.Segment(start=12.0, end=18.0, text="Kate will send the invitations."),
    common_pb2.Segment(start=18.0, end=24.0, text="Next topic: the office plants."),
    common_pb2.Segment(start=24.0, end=30.0, text="They need more light."),
    common_pb2.Segment(start=60.0, end=66.0, text="Anna, the report is due Friday."),
]


def test_check_due_keeps_fills_replaces_and_drops() -> None:
    # said near the item: kept as the model wrote it
    assert check_due("Fix the crash", "Wednesday", SEGMENTS, 1).value == "Wednesday"
    # empty, or a line label instead of a date: taken from the item's own segment
    filled = check_due("Fix the crash", "", SEGMENTS, 1)
    assert (filled.value, filled.warning) == ("by Wednesday", "") and "00:06" in filled.note
    label = check_due("Fix the crash", "00:06", SEGMENTS, 1)
    assert label.value == "by Wednesday" and "not said near" in label.warning
    # said near, but not what the item's own line says
    replaced = check_due("Fix the crash", "March 10th", SEGMENTS, 1)
    assert replaced.value == "by Wednesday" and "replaced" in replaced.warning
    # nothing said for this item: the model's date goes, nothing is made up
    dropped = check_due("Send the invitations", "Friday", SEGMENTS, 2)
    assert (dropped.value, dropped.note) == ("", "") and "dropped" in dropped.warning
    assert check_due("Send the invitations", "", SEGMENTS, 2) == check_due("x", "not specified", SEGMENTS, 2)
    assert check_due("Send the invitations", "", SEGMENTS, 2).value == ""


def test_a_due_date_said_in_full_in_the_line_is_kept_in_full() -> None:
    """The 1.5B wrote "двенадцатый" for "к двенадцатому ноября"; "Wednesday" for "by Wednesday"
    stays (no date word more)."""
    segments = [
        common_pb2.Segment(start=0.0, end=5.0, text="Сергей настроит права доступа к двенадцатому ноября.")
    ]
    full = check_due("Настроить права", "двенадцатый", segments, 0)
    assert full.value == "к двенадцатому ноября" and full.note and not full.warning
    assert check_due("Fix the crash", "Wednesday", SEGMENTS, 1).value == "Wednesday"


def test_scripted_meetings_say_every_due_date(facts: dict[str, object]) -> None:
    """The facts' due dates are found in the lines that assign the tasks (what the fill relies on)."""
    for name in sorted(facts):
        fact = facts[name]
        assert isinstance(fact, dict)
        transcript = load_transcript(name)
        for item in fact["action_items"]:
            lines = [
                s.text
                for s in transcript.segments
                if item["owner"] in s.text and item["keywords"][0] in s.text.lower()
            ]
            assert lines, item
            due = pick_due(lines)
            said = item["due"] if isinstance(item["due"], str) else item["due"][0]
            assert number_of(due.lower().split()[-1]) == said.lower().split()[-1], (item, due)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Boris will fix the two payment crashes by Wednesday", "Boris"),
        ("Kate, you will send the invitations", "Kate"),
        ("Сергей настроит права доступа к двенадцатому ноября", "Сергей"),
        ("Ольга составит расписание обучения и разошлёт его до среды", "Ольга"),
        ("We will ship on Monday", ""),
        ("We decided that Boris will present it on Friday", ""),
        ("The decision is to stay with Mixpanel", ""),
        ("Решили провести обучение в два этапа", ""),
        ("Дмитрий говорит, что выгрузка не готова", ""),
    ],
)
def test_assignee(text: str, name: str) -> None:
    assert assignee(text) == name


def test_a_task_written_as_a_decision_becomes_an_action_item() -> None:
    transcript = load_transcript("meeting_en.json")
    answer: dict[str, object] = {
        "title": "Release sync",
        "summary": "The release moves to March 17th.",
        "decisions": [
            {"text": "Move the release of version 2.4 to March 17th", "time": "00:20"},
            {"text": "Boris will fix the two payment crashes by Wednesday", "time": "00:27"},
            {"text": "Anna will update the privacy policy page", "time": "00:57"},
            {"text": "Mixpanel will stay our vendor", "time": "00:51"},  # nobody said Mixpanel will
        ],
        # the model also listed Boris's task; once is enough
        "action_items": [
            {"task": "Fix the two payment crashes", "owner": "Boris", "due": "", "time": "00:27"},
            {"task": "Send the invitations", "owner": "Kate", "due": "", "time": "00:41"},
        ],
        "key_points": [],
    }
    settings = SummarizerSettings(engine="openai", base_url="http://model-server/v1")
    k, usage, warnings = Summarizer(ScriptedEngine(answer), settings).summarize(transcript)
    assert usage.calls == meeting_calls(transcript, answer)
    # the fifty beta testers (00:35), left out by the model even when shown again: the line
    # says plainly "we decided", so its deciding sentence is kept word for word
    assert [d.text for d in k.decisions] == [
        "Move the release of version 2.4 to March 17th",
        "We decided to invite fifty external beta testers instead of twenty.",
        "Mixpanel will stay our vendor",
    ]
    assert [(a.task, a.owner, a.due, a.segment_index, a.owner_unconfirmed) for a in k.action_items] == [
        ("Fix the two payment crashes", "Boris", "by Wednesday", 4, False),
        ("Send the invitations", "Kate", "by Friday", 6, False),
        ("Anna will update the privacy policy page", "Anna", "by March 14th", 9, False),
    ]
    assert [w for w in warnings if "word for word" in w] == [
        "decision 'We decided to invite fifty external beta testers instead of twenty.': "
        "the model left it out; taken word for word at 00:35"
    ]


class CountingScriptedEngine(ScriptedEngine):
    """The same answer to every call, counting the calls and keeping their prompts."""

    def __init__(self, answer: dict[str, object]) -> None:
        super().__init__(answer)
        self.prompts: list[str] = []

    def complete_json(
        self, messages: Any, schema: object, max_tokens: int, on_token: object = None
    ) -> Completion:
        self.prompts.append(messages[-1]["content"])
        return super().complete_json(messages, schema, max_tokens, on_token)


@pytest.mark.parametrize("style", [common_pb2.STYLE_MEETING, common_pb2.STYLE_LECTURE])
def test_lines_left_out_are_shown_once_more_after_the_cached_transcript(style: int) -> None:
    """A meeting that fits one window costs one pass (``CALLS_PER_WINDOW``) plus, when lines that
    look like a decision or a task (``cues``: "we agree to move…", "Boris, you will fix…",
    "Kate will send…") are covered by no item, one short call that shows just those lines after
    the same transcript (the prefix stays in the KV cache); never a second reading of the whole.
    A lecture is one call. What any answer says is checked like any answer ("Book a party boat"
    was never said)."""
    transcript = load_transcript("meeting_en.json")
    answer: dict[str, object] = {
        "title": "Sync",
        "summary": "We stay with Mixpanel.",
        "decisions": [{"text": "Stay with Mixpanel this year", "time": "00:51"}],
        "action_items": [{"task": "Book a party boat", "owner": "Kate", "due": "Sunday", "time": "00:41"}],
        "key_points": [],
    }
    engine = CountingScriptedEngine(answer)
    settings = SummarizerSettings(engine="openai", base_url="http://model-server/v1")
    progress: list[str] = []
    k, usage, warnings = Summarizer(engine, settings).summarize(
        transcript, style, on_progress=lambda _f, m: progress.append(m)
    )
    lecture = style == common_pb2.STYLE_LECTURE
    assert usage.calls == len(engine.prompts) == CALLS_PER_WINDOW[style] + (0 if lecture else 1)
    assert all(s.text.strip() in p for p in engine.prompts for s in transcript.segments)
    if not lecture:
        review = engine.prompts[2]
        shown = review[review.index("Now look again") :]
        # the lines no item covers, and not the one the decision came from
        assert "[00:20] So we agree to move the release" in shown
        assert "[00:27] Boris, you will fix the two payment crashes" in shown
        assert "[01:08] We are not deciding" not in shown  # a refusal to decide is no candidate
        assert "[00:51]" not in shown
    assert {m.split(":")[0] for m in progress} == {"summary", "done"}
    # a line the model passed over twice that says plainly it was decided is kept as said, its
    # deciding sentences only ("Everyone okay with that? Good, decided." left out)
    copied = (
        []
        if lecture
        else [
            "So we agree to move the release of version 2.4 to March 17th.",
            "We decided to invite fifty external beta testers instead of twenty.",
        ]
    )
    assert [d.text for d in k.decisions] == [*copied, "Stay with Mixpanel this year"]
    # the tasks the model left out are kept as said (``exchanges``): a request with its answer
    # in one line, and work given in the third person with a deadline
    tasks = [
        (
            "Boris, you will fix the two payment crashes by Wednesday, right?"
            " — Yes, Boris will do it by Wednesday.",
            "Boris",
            "by Wednesday",
            4,
        ),
        ("Kate will send the invitations to the beta testers by Friday.", "Kate", "by Friday", 6),
        (
            "Anna will update the privacy policy page before the release, by March 14th.",
            "Anna",
            "by March 14th",
            9,
        ),
    ]
    assert [(a.task, a.owner, a.due, a.segment_index) for a in k.action_items] == tasks
    assert [w for w in warnings if "taken word for word from" in w] == [
        f"action item {task!r}: the model left it out; taken word for word from {at}"
        for (task, *_), at in zip(tasks, ["00:27", "00:41", "00:57"], strict=True)
    ]
    assert any("Book a party boat" in w and "dropped" in w for w in warnings)
