"""Kinds by the form of a sentence (``cues``, ``morph``): the group saying what it does is a
decision, a request to a named person or a promise is a task; questions, facts and the meeting's
own course are neither. Lines no item covers are shown to the model once more; items the model
put under the wrong kind move. No model involved."""

from __future__ import annotations

import pytest

from konspekt.v1 import common_pb2
from konspekt_summarizer import morph
from konspekt_summarizer.checks import check_due, firm_decision, firm_left_out
from konspekt_summarizer.cues import acknowledges_only, covered, kind_of, named, repeats, uncovered
from konspekt_summarizer.evidence import WORD_RE
from konspekt_summarizer.konspekt import Summarizer
from konspekt_summarizer.settings import SummarizerSettings
from konspekt_summarizer.windows import Line, utterances

from .test_owners import lines
from .test_pure import ScriptedEngine


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        # the group says what it does, will do or decided
        ("Поэтому релиз переносим с 10 на 17 апреля.", "decision"),
        ("Машины принимаем только по записи.", "decision"),
        ("Согласен, инвентаризацию проведём в январе после праздников.", "decision"),
        ("Итак, решили: каждая семья сдаёт по две тысячи.", "decision"),
        ("So we agree to move the release. Everyone okay with that?", "decision"),
        ("We go with Zoom.", "decision"),
        ("From now on the take-home task is 90 minutes.", "decision"),
        # a request to a named person (a comma or not), or a promise
        ("Алина, составишь график ночной смены до пятницы?", "task"),
        ("Теперь задачи Павел исправь две критичные ошибки до среды.", "task"),
        ("Описание обновлю я, понедельник.", "task"),
        ("Sure, I'll have the new version by Wednesday.", "task"),
        ("Поручаем Виталию договориться о ремонте погрузчика.", "task"),
        ("Then we'll ask Maria to update the posting.", "task"),
        ("Can you send the invoices, Maria?", "task"),
        # neither: facts, questions without a name, the meeting's own course, greetings
        ("Пострадали около 1200 клиентов.", ""),
        ("Предлагаю сначала 10% пользователей, потом всех.", ""),  # a proposal is no promise
        ("А люди на ночную смену есть?", ""),
        ("Давайте вернёмся к празднику.", ""),
        ("Андрей, здравствуйте, давайте обсудим, как идёт внедрение.", ""),
        ("Okay, let's start.", ""),
        ("The dashboard went live on Monday.", ""),
    ],
)
def test_the_kind_of_a_line_is_read_from_its_form(text: str, kind: str) -> None:
    assert kind_of(text, frozenset({"maria", "alina", "виталий"})) == kind


def test_russian_names_and_verb_persons_come_from_the_dictionary() -> None:
    assert [morph.nominative(w) for w in ("Виталию", "Наталье", "Павлом", "Оксана")] == [
        "Виталий",
        "Наталья",
        "Павел",
        "Оксана",
    ]
    assert not morph.is_name("Согласен") and morph.is_name("виталию", only=True)
    assert not morph.is_name("роман", only=True) and morph.is_name("Роман")  # a novel, or Roman
    # a function word is no name even where the dictionary also has it as one ("По", Poe)
    assert not any(morph.is_name(w) for w in ("По", "Ли", "Так", "Он"))
    persons = {w: morph.person_of_verb(w) for w in ("вводим", "составлю", "исправь", "обновит", "решили")}
    assert persons == {"вводим": "we", "составлю": "i", "исправь": "you", "обновит": "", "решили": ""}
    assert named("Да, дарим карту, Сергею купить её", frozenset()) == "Сергей"


def test_only_lines_no_item_covers_are_shown_again() -> None:
    window = [
        Line(0, "00:00", "Релиз переносим на 17 апреля."),
        Line(1, "00:05", "Павел, исправь две ошибки до среды."),
        Line(2, "00:10", "Пострадали около 1200 клиентов."),
        Line(3, "00:15", "Машины принимаем только по записи."),
    ]
    items = [("Релиз переносится на 17 апреля", "00:00"), ("Исправить ошибки Павел до среды", "00:05")]
    assert covered(window[0], items) and covered(window[1], items)
    assert uncovered(window, items) == [window[3]]  # the fact at 00:10 is no candidate


def test_items_under_the_wrong_kind_move_by_their_form() -> None:
    """The 1.5B on a Russian release meeting: the group's decision as a key point, a request to
    Светлана as a decision. The first becomes a decision, the second Светлана's task."""
    segments = lines(
        "Доброе утро, обсуждаем релиз.",
        "Поэтому релиз переносим с 10 на 17 апреля.",
        "Светлана, перенеси рекламную кампанию и предупреди агентство до конца недели.",
        "Хорошо, до конца недели.",
    )
    answer: dict[str, object] = {
        "title": "Релиз",
        "summary": "Релиз перенесли на 17 апреля.",
        "key_points": [{"text": "Релиз переносим с 10 на 17 апреля", "time": "00:05"}],
        "decisions": [
            {"text": "Светлана, перенеси рекламную кампанию и предупреди агентство", "time": "00:10"}
        ],
        "action_items": [],
    }
    transcript = common_pb2.Transcript(language="ru", segments=segments, duration=20.0)
    settings = SummarizerSettings(engine="openai", base_url="http://model-server/v1")
    k, _usage, _warnings = Summarizer(ScriptedEngine(answer), settings).summarize(transcript)
    assert [d.text for d in k.decisions] == ["Релиз переносим с 10 на 17 апреля"]
    assert not k.key_points
    assert [(a.task, a.owner, a.due, a.owner_unconfirmed) for a in k.action_items] == [
        ("Светлана, перенеси рекламную кампанию и предупреди агентство", "Светлана", "до конца недели", False)
    ]


def test_a_decision_with_a_date_stays_a_decision_when_its_line_says_what_the_group_does() -> None:
    """ "So, Peter, from tomorrow we move the round to seven o'clock": a dated decision in a line
    that names someone was that person's task before; the line says what the group does, so it
    stays a decision. And a decision cited at the reply two lines later ("I'll email them before
    I go home this morning") is placed on the line that says it, not on the request between them."""
    segments = lines(
        "One more thing, the six o'clock round clashes with the blood draws.",
        "So, Peter, from tomorrow we move the morning medication round to seven o'clock.",
        "Peter, please let the lab team know about the new round time.",
        "Okay, I'll email them before I go home this morning.",
        "Then we move the falls training to Thursday afternoon.",
        "Daniel, please book the room for it.",
        "Sure.",
    )
    answer: dict[str, object] = {
        "title": "Handover",
        "summary": "The morning round moves to seven o'clock.",
        "key_points": [],
        "decisions": [
            {"text": "Move the morning medication round to seven o'clock from tomorrow", "time": "00:05"},
            {"text": "Move the falls training to Thursday afternoon", "time": "00:30"},
        ],
        "action_items": [
            {
                "task": "Let the lab team know about the new round time",
                "owner": "Peter",
                "due": "",
                "time": "00:10",
            }
        ],
    }
    transcript = common_pb2.Transcript(language="en", segments=segments, duration=35.0)
    settings = SummarizerSettings(engine="openai", base_url="http://model-server/v1")
    k, _usage, _warnings = Summarizer(ScriptedEngine(answer), settings).summarize(transcript)
    assert [(d.text, d.segment_index) for d in k.decisions] == [
        ("Move the morning medication round to seven o'clock from tomorrow", 1),
        ("Move the falls training to Thursday afternoon", 4),
    ]
    assert [(a.task, a.owner) for a in k.action_items] == [
        ("Let the lab team know about the new round time", "Peter")
    ]


def test_what_the_second_look_repeats_is_left_out() -> None:
    items = [("Daniel will order four additional bed alarms by Wednesday", "01:06")]
    assert repeats("Daniel, can you order four additional bed alarms by Wednesday?", items)
    assert not repeats("Peter, please let the lab team know about the new round time", items)


def test_a_deadline_said_in_the_reply_is_the_task_s_due() -> None:
    """A task asked in one line gets its deadline in the answer ("Серги, соберёшь деньги." —
    "Соберу до конца месяца"); a line that is no reply gives none."""
    segments = lines(
        "Серги соберёшь деньги.",
        "Соберу до конца месяца, буду принимать переводом на карту.",
        "Оксана, напишешь сценарий?",
        "Кстати, оценки будут к 10 декабря.",
        "Maria, can you write the release notes?",
        "Sure, by Monday evening.",
    )
    assert check_due("Собрать деньги", "", segments, 0).value == "до конца месяца"
    assert check_due("Написать сценарий", "", segments, 2).value == ""
    assert check_due("Write the release notes", "", segments, 4).value == "by Monday evening"

    # the item taken from the reply, the deadline said in between ("Оксана, договоришься с
    # автобусной компанией?" — "Да, к пятнице успею." — "Да, конечно.")
    exchange = lines(
        "Едем в воскресенье.",
        "Оксана, договоришься с автобусной компанией?",
        "Да, к пятнице успею.",
        "Да, конечно.",
        "А сколько стоит автобус? В прошлом году до среды платили.",
    )
    assert check_due("Договориться с автобусом", "", exchange, 3, "Оксана").value == "к пятнице"
    assert check_due("Договориться с автобусом", "", exchange, 1, "Оксана").value == "к пятнице"
    # another person's request, or no owner: only the reply to the item's own line
    assert check_due("Договориться с автобусом", "", exchange, 3, "Сергей").value == ""
    assert check_due("Узнать цену", "", exchange, 3).value == ""


def test_a_refusal_to_decide_is_no_decision() -> None:
    """ "We are not deciding on dark mode today. We postpone it until we have the mockups." is a
    deferral: no candidate for a second look, and no decision if the model writes it as one."""
    assert kind_of("We are not deciding on dark mode today. We postpone it until we have the mockups.") == ""
    assert kind_of("Пока не решили, переносим обсуждение.") == ""
    segments = lines(
        "Dark mode?", "We are not deciding on dark mode today. We postpone it until we have the mockups."
    )
    answer: dict[str, object] = {
        "title": "Sync",
        "summary": "Dark mode was discussed.",
        "key_points": [],
        "decisions": [{"text": "We are not deciding on dark mode today, we postpone it", "time": "00:05"}],
        "action_items": [],
    }
    transcript = common_pb2.Transcript(language="en", segments=segments, duration=10.0)
    settings = SummarizerSettings(engine="openai", base_url="http://model-server/v1")
    k, _usage, warnings = Summarizer(ScriptedEngine(answer), settings).summarize(transcript)
    assert not k.decisions
    assert any("it says the matter is not decided" in w for w in warnings)


def test_an_action_item_no_one_is_to_do_is_listed_under_its_kind() -> None:
    """The 1.5B lists lines as tasks with no owner and no due ("В 800 тысяч переводим в
    контекстную рекламу", owner "Коллеги"): an item whose line asks no one and promises nothing
    is kept as what was said — a decision when the group says what it does, else a key point —
    and not listed twice; a task with a due date stays a task."""
    segments = lines(
        "В первом квартале потратили на выставки почти миллион.",
        "Тогда решаем так: в этом квартале в выставках не участвуем.",
        "Освободившиеся 800 тысяч переводим в контекстную рекламу.",
        "Нужно заказать бетон до среды.",
    )
    answer: dict[str, object] = {
        "title": "Бюджет",
        "summary": "Обсудили бюджет.",
        "key_points": [],
        "decisions": [{"text": "В этом квартале в выставках не участвуем", "time": "00:05"}],
        "action_items": [
            {
                "task": "В первом квартале потратили на выставки почти миллион",
                "owner": "Коллеги",
                "due": "",
                "time": "00:00",
            },
            {"task": "В этом квартале в выставках не участвуем", "owner": "", "due": "", "time": "00:05"},
            {
                "task": "800 тысяч переводим в контекстную рекламу",
                "owner": "Коллеги",
                "due": "",
                "time": "00:10",
            },
            {"task": "Заказать бетон", "owner": "", "due": "до среды", "time": "00:15"},
        ],
    }
    transcript = common_pb2.Transcript(language="ru", segments=segments, duration=20.0)
    settings = SummarizerSettings(engine="openai", base_url="http://model-server/v1")
    k, _usage, warnings = Summarizer(ScriptedEngine(answer), settings).summarize(transcript)
    assert [a.task for a in k.action_items] == ["Заказать бетон"]
    assert [d.text for d in k.decisions] == [
        "В этом квартале в выставках не участвуем",
        "800 тысяч переводим в контекстную рекламу",
    ]
    assert [p.text for p in k.key_points] == ["В первом квартале потратили на выставки почти миллион"]
    moved = [w for w in warnings if "no due date and no one asked or promising" in w]
    assert len(moved) == 1  # the repeat of the decision is not listed again
    # what the first quarter cost is told in the past: a key point for that reason
    moved += [w for w in warnings if "it tells what was already done; listed as a key point" in w]
    assert len(moved) == 2
    from konspekt_gateway import i18n

    assert all(i18n.reason(w, "ru") != w for w in moved)


def test_the_person_a_task_s_own_line_gives_it_to_is_its_owner() -> None:
    """ "Ben, can you fix the refund bug by Thursday?" with the owner "Olivia": Ben; "Roger
    please write…" (no comma from ASR) is addressed too; "Walter will look for savings" gives it
    to Walter. Each change is a warning the Russian page shows in Russian."""
    from konspekt_gateway import i18n

    segments = lines(
        "Olivia, you own the runbook.",
        "Ben, can you fix the refund bug by Thursday?",
        "Roger please write to the three partners, do it by Monday.",
        "Walter will look for savings in the pool budget by the 14th.",
    )
    answer: dict[str, object] = {
        "title": "Sprint",
        "summary": "The sprint was planned.",
        "key_points": [],
        "decisions": [],
        "action_items": [
            {"task": "Fix the refund bug", "owner": "Olivia", "due": "Thursday", "time": "00:05"},
            {"task": "Write to the three partners", "owner": "", "due": "Monday", "time": "00:10"},
            {"task": "Look for savings in the pool budget", "owner": "Helen", "due": "", "time": "00:15"},
        ],
    }
    transcript = common_pb2.Transcript(language="en", segments=segments, duration=20.0)
    settings = SummarizerSettings(engine="openai", base_url="http://model-server/v1")
    k, _usage, warnings = Summarizer(ScriptedEngine(answer), settings).summarize(transcript)
    assert [(a.owner, a.owner_unconfirmed) for a in k.action_items] == [
        ("Ben", False),
        ("Roger", False),
        ("Walter", False),
    ]
    replaced = [w for w in warnings if "replaced by" in w and "owner" in w]
    assert len(replaced) == 2  # Olivia and the unconfirmed Helen; Roger filled an empty owner
    for warning in warnings:
        assert i18n.reason(warning, "ru") != warning, warning


@pytest.mark.parametrize(
    ("text", "only"),
    [
        ("Это решение.", True),
        ("Договорились.", True),
        ("Okay, agreed.", True),
        ("Sure.", True),
        ("Спасибо всем!", True),
        ("Отлично, до связи.", True),
        ("Thank you all, that's everything.", True),
        ("Thanks, everyone.", True),
        ("We go with Zoom.", False),
        ("Решено: переносим на среду.", False),
        ("Да, это третье решение. Пробная кампания с блогерами.", False),
    ],
)
def test_an_agreement_alone_is_no_decision(text: str, only: bool) -> None:
    """ "Это решение." says that something was decided, not what: as a decision it is dropped
    (with a warning); a decision that names anything is kept."""
    assert acknowledges_only(text) is only


def test_a_rule_written_as_a_thing_s_task_is_a_decision() -> None:
    """ "From now on the shop checks every build" as a task owned by "Shop" (said as a common
    noun): no one is to do it, and its line says what the group does — a decision; a fact
    stays a key point."""
    segments = lines(
        "From now on the shop checks every build before the release.",
        "The shop tested forty phones last month.",
    )
    answer: dict[str, object] = {
        "title": "Release",
        "summary": "Builds were discussed.",
        "key_points": [],
        "decisions": [],
        "action_items": [
            {"task": "Check every build before the release", "owner": "Shop", "due": "", "time": "00:00"},
            {"task": "Test forty phones", "owner": "Shop", "due": "", "time": "00:05"},
        ],
    }
    transcript = common_pb2.Transcript(language="en", segments=segments, duration=10.0)
    settings = SummarizerSettings(engine="openai", base_url="http://model-server/v1")
    k, _usage, _warnings = Summarizer(ScriptedEngine(answer), settings).summarize(transcript)
    assert not k.action_items
    assert [d.text for d in k.decisions] == ["Check every build before the release"]
    assert [p.text for p in k.key_points] == ["Test forty phones"]


@pytest.mark.parametrize(
    ("text", "firm"),
    [
        ("Согласна, выкатываем постепенно, сначала 10% пользователей.", True),
        ("Тогда решаем так: в этом квартале в выставках не участвуем.", True),
        ("We keep the old API running until June, that is decided.", True),
        ("Then we move the morning round to seven o'clock.", True),
        # "we decide", a motion carried, a rule from a date on, "значит, решаем"
        ("So we decide, the on-call engineer may roll back a release without asking anyone.", True),
        ("Aye, carried: road repair gets 1.1 million dollars.", True),
        ("So from tonight, every patient over 75 gets a bed alarm at night.", True),
        ("Значит, решаем: праздник проводим в классе, а не в кафе.", True),
        # agreement, then what the group does
        ("Хорошо, про субботу забудьте, едем в воскресенье, 13-го.", True),
        # says after it that this was a decision ("that's a decision", "второе решение")
        ("From now on, the on-call engineer updates the status page, that's a decision.", True),
        ("Второе решение: пробная кампания с блогерами, не больше 200 тысяч.", True),
        ("Okay, let's start with the budget.", False),
        # the group's plan without saying it was agreed, a bare agreement, a deferral
        ("Выкатываем постепенно.", False),
        ("Договорились.", False),
        ("We are not deciding on dark mode today. We postpone it.", False),
        ("Agreed, I'll need until Thursday for the refund bug.", False),
    ],
)
def test_a_line_that_says_plainly_it_was_decided_is_firm(text: str, firm: bool) -> None:
    """Only such a line is kept word for word when the model passes it over twice."""
    assert firm_decision(text) is firm


def test_a_firm_decision_takes_the_decision_line_after_it() -> None:
    """ "Решаем так: без шлема на площадку." — "Никого не пускаем, даже на пять минут.": what
    is decided is said over two lines; a line about something else is not joined."""
    said = [
        Line(11, "00:50", "Решаем так, без шлема на площадку."),
        Line(12, "00:54", "Никого не пускаем, даже на пять минут."),
        Line(14, "01:05", "Ну, шлемы у нас старые."),
    ]
    assert [(ln.index, ln.text) for ln in firm_left_out(said, [])] == [
        (11, "Решаем так, без шлема на площадку. Никого не пускаем, даже на пять минут.")
    ]


def test_a_firm_decision_cut_over_two_lines_is_kept_whole() -> None:
    """ASR cuts lines by time: the sentence goes on in the next line, which starts in lower
    case; it is kept whole, at the time of its start. A line that opens a new sentence is not
    joined."""
    said = [
        Line(
            41,
            "03:14",
            "Then from now on, the on-call engineer updates the status page within 15 minutes of any",
        ),
        Line(42, "03:19", "outage, that's a decision."),
        Line(43, "03:22", "We'll need a template, so people don't have to write it from scratch."),
    ]
    assert [(ln.index, ln.label, ln.text) for ln in firm_left_out(said, [])] == [
        (41, "03:14", f"{said[0].text} {said[1].text}")
    ]
    assert utterances(said)[1] == (said[2], 43)


def test_a_task_given_to_no_one_its_decision_line_names_is_a_decision() -> None:
    """The model gave the group's decision to a person its line does not name ("Решили:
    покупаем шторы из фонда класса" with the owner "Денис"): it is the decision."""
    segments = lines(
        "Денис узнавал цены, выходит около 15 тысяч.",
        "Решили: покупаем шторы из фонда класса, но не дороже 15 тысяч.",
    )
    answer: dict[str, object] = {
        "title": "Шторы",
        "summary": "Обсудили шторы.",
        "key_points": [],
        "decisions": [],
        "action_items": [
            {"task": "Покупаем шторы из фонда класса", "owner": "Денис", "due": "", "time": "00:05"}
        ],
    }
    transcript = common_pb2.Transcript(language="ru", segments=segments, duration=10.0)
    settings = SummarizerSettings(engine="openai", base_url="http://model-server/v1")
    k, _usage, warnings = Summarizer(ScriptedEngine(answer), settings).summarize(transcript)
    assert not k.action_items
    assert [d.text for d in k.decisions] == ["Покупаем шторы из фонда класса"]
    assert any("does not name Денис; listed as a decision" in w for w in warnings)


def test_a_promise_written_as_a_named_person_s_decision_is_their_task() -> None:
    """ "Ольга обновит описание в магазине приложения" as a decision, from the line "Описание
    обновлю я, понедельник." (a promise): Ольга's task, due as said there."""
    segments = lines(
        "Ольга, а кто обновит описание в магазине приложения?",
        "Описание обновлю я, понедельник.",
        "Спасибо всем!",
    )
    answer: dict[str, object] = {
        "title": "Релиз",
        "summary": "Обсудили релиз.",
        "key_points": [],
        "decisions": [{"text": "Ольга обновит описание в магазине приложения", "time": "00:05"}],
        "action_items": [],
    }
    transcript = common_pb2.Transcript(language="ru", segments=segments, duration=15.0)
    settings = SummarizerSettings(engine="openai", base_url="http://model-server/v1")
    k, _usage, _warnings = Summarizer(ScriptedEngine(answer), settings).summarize(transcript)
    assert not k.decisions
    assert [(a.owner, a.due) for a in k.action_items] == [("Ольга", "понедельник")]


@pytest.mark.parametrize(
    ("text", "past"),
    [
        ("В прошлом месяце мы купили краску и моющие средства.", True),
        ("В первом квартале мы потратили на выставки почти миллион, а пришло всего 40.", True),
        ("Погрузчик номер три опять сломался.", True),
        # a verb in the present or future, an imperative, an infinitive, or no verb at all
        ("Решили: покупаем шторы из фонда класса.", False),
        ("Релиз переносим с 10 на 17 апреля.", False),
        ("Мы купили краску, теперь нужно покрасить стены.", False),
        ("Пробная кампания с блогерами, не больше 200 тысяч.", False),
        ("We bought the paint last month.", False),  # English: not told apart here
    ],
)
def test_an_item_that_only_tells_the_past(text: str, past: bool) -> None:
    assert morph.narrates_past(WORD_RE.findall(text)) is past


def test_a_decision_told_in_the_past_is_a_key_point() -> None:
    """ "Мы купили краску" as a decision tells what was done: a key point (with a note); a
    decision said with "решили" stays one."""
    segments = lines("В прошлом месяце мы купили краску.", "Решили: покупаем шторы из фонда класса.")
    answer: dict[str, object] = {
        "title": "Комитет",
        "summary": "Комитет.",
        "key_points": [],
        "decisions": [
            {"text": "Мы купили краску", "time": "00:00"},
            {"text": "Решили: покупаем шторы из фонда класса", "time": "00:05"},
        ],
        "action_items": [],
    }
    transcript = common_pb2.Transcript(language="ru", segments=segments, duration=10.0)
    settings = SummarizerSettings(engine="openai", base_url="http://model-server/v1")
    k, _usage, warnings = Summarizer(ScriptedEngine(answer), settings).summarize(transcript)
    assert [d.text for d in k.decisions] == ["Решили: покупаем шторы из фонда класса"]
    assert [p.text for p in k.key_points] == ["Мы купили краску"]
    assert "decision 'Мы купили краску': it tells what was already done; listed as a key point" in warnings


def test_a_decision_from_a_line_that_announces_it_takes_what_the_next_line_decides() -> None:
    """m3: the model kept "Решаем так, без шлема на площадку." without "Никого
    не пускаем, даже на пять минут.", which says what is decided; a long decision line stands
    alone."""
    segments = lines(
        "Решаем так: без защитного шлема на площадку.",
        "Никого не пускаем, даже на пять минут.",
        "Итак, решили: каждая семья сдаёт в фонд класса по две тысячи рублей на полугодие.",
        "Пиццу закажем в пятницу.",
    )
    answer: dict[str, object] = {
        "title": "Планёрка",
        "summary": "Планёрка.",
        "key_points": [],
        "decisions": [
            {"text": "Решаем так: без защитного шлема на площадку", "time": "00:00"},
            {"text": "Каждая семья сдаёт в фонд класса по две тысячи рублей на полугодие", "time": "00:10"},
        ],
        "action_items": [],
    }
    transcript = common_pb2.Transcript(language="ru", segments=segments, duration=20.0)
    settings = SummarizerSettings(engine="openai", base_url="http://model-server/v1")
    k, _usage, _warnings = Summarizer(ScriptedEngine(answer), settings).summarize(transcript)
    assert [d.text for d in k.decisions] == [
        "Решаем так: без защитного шлема на площадку Никого не пускаем, даже на пять минут.",
        "Каждая семья сдаёт в фонд класса по две тысячи рублей на полугодие",
    ]
