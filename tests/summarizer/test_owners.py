"""Who does a task (``owners``): names found where they are said (sentence start, vocative, any
Russian case form), "I"/"я" as the person addressed, an owner never said kept and marked, a thing
taken for a person dropped. No model involved."""

from __future__ import annotations

import pytest

from konspekt.v1 import common_pb2
from konspekt_summarizer.konspekt import Summarizer
from konspekt_summarizer.owners import (
    NOT_SAID,
    Names,
    Owner,
    addressed,
    assigned,
    check_owner,
    same_name,
    vocatives,
)
from konspekt_summarizer.settings import SummarizerSettings

from .test_pure import ScriptedEngine, meeting_calls


def lines(*texts: str) -> list[common_pb2.Segment]:
    """One segment of 5 s per text."""
    return [
        common_pb2.Segment(index=i, start=5.0 * i, end=5.0 * i + 4.5, text=text)
        for i, text in enumerate(texts)
    ]


def owner(name: str, segments: list[common_pb2.Segment], index: int) -> Owner:
    return check_owner(name, segments, index, Names.of(segments))


# -- names as they are said -------------------------------------------------------------------


def test_a_name_that_opens_a_sentence_is_a_name() -> None:
    en = lines(
        "Okay, next topic: the release.",
        "Maria, please write the release notes by Monday evening.",
    )
    assert "maria" in Names.of(en).people
    assert owner("Maria", en, 1) == Owner("Maria")  # confirmed: no mark, no warning
    ru = lines("Хорошо, дальше.", "Наталья, а кто напишет доклад?")
    assert "наталья" in Names.of(ru).people
    assert owner("Наталья", ru, 1) == Owner("Наталья")


def test_a_name_addressed_is_found_at_the_start_and_at_the_end_of_a_sentence() -> None:
    end = lines("We still need the invoices checked.", "Can you do it, Laura?")
    assert addressed(end, 1, Names.of(end)) == "Laura"
    assert owner("Laura", end, 1) == Owner("Laura")
    start = lines("Наталья, а кто напишет доклад?")
    assert addressed(start, 0, Names.of(start)) == "Наталья"
    # after an interjection: "Okay, Laura, …", "Ну, Наталья, …"
    after = lines("Okay, Laura, can you check the invoices?", "Ну, Наталья, берёшь доклад?")
    assert addressed(after, 0, Names.of(after)) == "Laura"
    assert addressed(after, 1, Names.of(after)) == "Наталья"
    # a name said, not addressed
    said = lines("Laura sent the invoices yesterday.")
    assert addressed(said, 0, Names.of(said)) == ""
    # a name alone, closed with a full stop by ASR: "Елена. Найди пять блогеров…"
    alone = lines("Елена. Найди пять блогеров и пришли мне список до 20 марта.")
    assert addressed(alone, 0, Names.of(alone)) == "Елена"
    assert owner("", alone, 0) == Owner("Елена", note=owner("", alone, 0).note)
    assert vocatives("Хорошо. Договорились.") == ["Договорились", "Хорошо"]  # words, not yet names
    assert addressed(lines("Хорошо. Договорились."), 0, Names.of(lines("Хорошо. Договорились."))) == ""


@pytest.mark.parametrize(
    ("text", "person"),
    [
        ("Поручаем Виталию договориться о ремонте погрузчика, среда.", "Виталий"),
        ("Нет, поручим Натальи заказать 32 куба бетона на среду.", "Наталья"),  # ASR's genitive
        ("Кириллу подготовить новый план к первому апреля.", "Кирилл"),
        ("Then we'll ask Peter to call the lab tomorrow.", "Peter"),
        ("С Денисом договорились так: он замерит окна и найдёт мастера к среде.", "Денис"),
        ("Да, дарим карту книжного магазина, Сергей, купи её.", "Сергей"),  # addressed mid-line
        # a name given nothing to do
        ("У Натальи узнать, сколько стоит бетон.", ""),
        ("Наталье спасибо за отчёт.", ""),
        ("Peter said the lab is closed.", ""),
        # "По оплате…" opens a line elsewhere: "пожалуйста" between commas is no name
        ("И пришлите, пожалуйста, список пользователей до понедельника?", ""),
        ("Мы договорились с Ольгой, что релиз переносится.", ""),  # agreed with, nothing to do
    ],
)
def test_a_task_given_to_a_named_person_in_the_third_person(text: str, person: str) -> None:
    segments = lines(text, "По оплате: второй этап после обучения.")
    assert (assigned(text, Names.of(segments)) or addressed(segments, 0, Names.of(segments))) == person
    assert owner("", segments, 0).value == person


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("Наталья", "Доклад поручим Наталье, она в теме."),
        ("Наталья", "Доклад за Натальей, до пятницы."),
        ("Сергей", "Отчёт отдаём Сергею."),
        ("Павел", "Это сделаем вместе с Павлом."),
        ("Ольга", "Расписание согласовать с Ольгой."),
    ],
)
def test_a_russian_name_is_said_in_any_case_form(name: str, said: str) -> None:
    segments = lines("Коротко о планах на неделю.", said)
    assert owner(name, segments, 1) == Owner(name)  # confirmed, although never said as the model wrote it


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("Наталья", "Натальей", True),
        ("Наталья", "Наталье", True),
        ("Сергей", "Сергею", True),
        ("Сергей", "Сергеем", True),
        ("Павел", "Павлом", True),  # the vowel that drops in declension
        ("Павел", "Павлу", True),
        ("Ян", "Яна", True),
        ("Laura", "laura", True),
        ("Анна", "Антон", False),
        ("Игорь", "Ирина", False),
        ("Maria", "Mark", False),
        ("По", "пожалуйста", False),
        ("Boris", "", False),
    ],
)
def test_same_name(a: str, b: str, same: bool) -> None:
    assert same_name(a, b) is same and same_name(b, a) is same


# -- "I" / "я": the person just addressed -------------------------------------------------------


def test_i_is_the_person_addressed_in_the_line_or_just_before() -> None:
    en = lines("Laura, can you send the invoices to the client?", "Sure, I'll send them by Friday.")
    i = owner("I", en, 1)
    assert (i.value, i.unconfirmed, i.warning) == ("Laura", False, "")
    assert i.note.startswith("owner 'I' is 'Laura', addressed")
    assert owner("me", en, 1).value == "Laura"
    # no owner written at all: the same
    assert owner("", en, 1).value == "Laura"
    ru = lines("Наталья, а кто напишет доклад?", "Я напишу к пятнице.")
    assert owner("я", ru, 1).value == "Наталья"
    assert owner("Я", ru, 1).value == "Наталья"
    # in the same line
    same = lines("Can you do it, Laura? Yes, I will do it by Monday.")
    assert owner("I", same, 0).value == "Laura"


def test_i_is_the_nearest_person_addressed_up_to_two_lines_before() -> None:
    segments = lines(
        "Laura, can you check the invoices?",
        "Kate, can you send the report?",
        "Which report?",
        "The March one.",
        "Yes, I'll do it.",
    )
    names = Names.of(segments)
    assert check_owner("I", segments, 2, names).value == "Kate"  # Kate, not Laura: nearest first
    assert check_owner("I", segments, 3, names).value == "Kate"  # two lines before
    assert check_owner("I", segments, 4, names) == Owner("")  # three lines: too far, nobody


def test_interjections_are_not_names() -> None:
    segments = lines(
        "Okay, I will write the notes.",
        "Хорошо, я напишу отчёт.",
        "Sure, I'll do it.",
        "Да, я сделаю.",
        "Ладно, я возьму.",
        "Agreed, I think I'll need until Thursday.",  # "agreed" never said in lower case here
        "Absolutely, I'll send it.",
    )
    names = Names.of(segments)
    assert not names.people & {"okay", "хорошо", "sure", "да", "ладно", "agreed", "absolutely"}
    for index in range(len(segments)):
        assert check_owner("I", segments, index, names) == Owner(""), segments[index].text
        assert addressed(segments, index, names) == ""
    assert check_owner("Okay", segments, 0, names) == Owner("")
    assert check_owner("Хорошо", segments, 1, names) == Owner("")


def test_pronouns_and_placeholders_are_no_owner() -> None:
    segments = lines("We will ship it on Monday.", "Мы всё сделаем.")
    for name in ("we", "We", "everyone", "not specified", "n/a", "мы", "все", "не указан"):
        assert owner(name, segments, 0) == Owner(""), name


# -- what the transcript does not confirm --------------------------------------------------------


def test_an_owner_never_said_is_kept_and_marked_unconfirmed() -> None:
    en = lines("Okay, the invoices.", "Someone has to send them to the client by Friday.")
    alice = owner("Alice", en, 1)
    assert (alice.value, alice.unconfirmed) == ("Alice", True)
    assert alice.warning == f"owner 'Alice' {NOT_SAID}"
    ru = lines("Хорошо, по докладу.", "Доклад нужно написать к пятнице.")
    viktor = owner("Виктор", ru, 1)
    assert (viktor.value, viktor.unconfirmed) == ("Виктор", True) and "not said" in viktor.warning
    # a team is kept too (not one word the transcript says as a thing)
    team = owner("Отдел продаж", lines("Отдел продаж проведёт обучение."), 0)
    assert (team.value, team.unconfirmed) == ("Отдел продаж", True)


@pytest.mark.parametrize(
    "said",
    [
        # "магазин" never capitalized
        ("Сборку проверяет магазин приложений.", "Марина подготовит тексты для магазина к пятнице."),
        # "Магазин" opens a sentence, and is said as "магазина" elsewhere
        ("Магазин приложений проверяет сборку неделю.", "Марина подготовит тексты для магазина к пятнице."),
    ],
)
def test_a_thing_is_no_person(said: tuple[str, str]) -> None:
    """ "Магазин приложений проверяет сборку" does not make "Магазин" (the store) an owner."""
    segments = lines("Здесь Анна, Игорь и Марина.", *said)
    names = Names.of(segments)
    assert {"анна", "игорь", "марина"} <= names.people
    shop = check_owner("Магазин", segments, 1, names)
    assert (shop.value, shop.unconfirmed) == ("", False)
    assert "not a person named in the transcript; dropped" in shop.warning
    # a word form of a name, written in the nominative
    assert check_owner("Марине", segments, 2, names) == Owner("Марина")


def test_a_russian_word_opening_a_sentence_is_a_name_only_if_the_dictionary_says_so() -> None:
    """ "Согласен, инвентаризацию проведём в январе" does not make "Согласен" a person (it is
    never said in lower case either); a name ASR wrote in lower case ("поручаем виталию") is
    one, and an owner in another case is written in the nominative."""
    segments = lines(
        "Согласен, инвентаризацию проведём в январе.",
        "Поручаем виталию договориться о ремонте погрузчика.",
        "Среда.",
        "Кевин, а ты что скажешь?",
    )
    names = Names.of(segments)
    assert "согласен" not in names.people
    assert {"виталию", "кевин"} <= names.people  # a foreign name the dictionary knows
    agreed = check_owner("Согласен", segments, 0, names)
    assert agreed.unconfirmed  # not said as a name: kept, marked
    assert check_owner("Виталию", segments, 1, names) == Owner("Виталий")
    assert check_owner("Кевин", segments, 3, names) == Owner("Кевин")
    # an English capital still follows the old test (never said in lower case)
    en = lines("Agreed, we move the launch.", "Maria, please write the notes.", "We agreed on it.")
    assert "maria" in Names.of(en).people and "agreed" not in Names.of(en).people


# -- in the konspekt ----------------------------------------------------------------------------


def test_owners_and_repeated_key_points_in_the_konspekt() -> None:
    """An owner the transcript does not say is kept and marked; "I" is the person addressed; a
    key point that repeats a decision is left out, another key point from nearby stays."""
    segments = lines(
        "Okay, let's start with the release.",
        "We decided to move the release of version 2.4 to March 17th.",
        "Maria, please write the release notes by Monday evening.",
        "Laura, can you check the invoices from the printer?",
        "Sure, I'll check the invoices by Friday.",
        "Next topic: the new office.",
        "The new office has room for forty people.",
        "Someone has to book the movers before the end of the month.",
    )
    answer: dict[str, object] = {
        "title": "Release and office",
        "summary": "The release moves to March 17th. The new office has room for forty people.",
        "action_items": [
            {"task": "Write the release notes", "owner": "Maria", "due": "", "time": "00:10"},
            {"task": "Check the invoices", "owner": "I", "due": "by Friday", "time": "00:20"},
            {"task": "Book the movers", "owner": "Boris", "due": "", "time": "00:35"},
        ],
        "decisions": [{"text": "Move the release of version 2.4 to March 17th", "time": "00:05"}],
        "key_points": [
            {"text": "The release of version 2.4 moves to March 17th", "time": "00:05"},
            {"text": "The new office has room for forty people", "time": "00:30"},
        ],
    }
    transcript = common_pb2.Transcript(language="en", segments=segments, duration=40.0)
    settings = SummarizerSettings(engine="openai", base_url="http://model-server/v1")
    k, usage, warnings = Summarizer(ScriptedEngine(answer), settings).summarize(transcript)
    assert usage.calls == meeting_calls(transcript, answer)  # one pass (and a look at lines left)
    assert [(a.task, a.owner, a.owner_unconfirmed, a.segment_index) for a in k.action_items] == [
        ("Write the release notes", "Maria", False, 2),
        ("Check the invoices", "Laura", False, 4),  # "Laura, can you…?" — "Sure, I'll…"
        ("Book the movers", "Boris", True, 7),  # kept, not dropped
    ]
    assert [a.due for a in k.action_items] == [
        "by Monday evening",
        "by Friday",
        "before the end of the month",
    ]
    assert f"action item 'Book the movers': owner 'Boris' {NOT_SAID}" in warnings
    assert not any("Maria" in w or "Laura" in w for w in warnings)
    assert [(d.text, d.segment_index) for d in k.decisions] == [
        ("Move the release of version 2.4 to March 17th", 1)
    ]
    # the repetition of the decision is left out; the office is a key point of its own
    assert [(p.text, p.segment_index) for p in k.key_points] == [
        ("The new office has room for forty people", 6)
    ]


def test_an_english_capital_is_a_name_only_where_a_capital_says_so() -> None:
    """English has no dictionary here: a capitalized word is a name when it is said inside a
    sentence, or opens one before a comma or a verb said of a person; words that only ever open
    a sentence ("Because…", "Speaking of…"), contractions and days or months are not."""
    segments = lines(
        "Because nobody had a password on the weekend.",
        "Speaking of prices, did you see the parking rules?",
        "I'll do it by Thursday, and Let's see in March.",
        "Laura, can you rewrite the task?",
        "Walter will look for savings.",
        "Roger please write to the partners.",
        "We asked Nora about it.",
    )
    assert Names.of(segments).people == {"laura", "walter", "roger", "nora"}
