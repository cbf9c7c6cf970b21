"""A proposal the group takes up is a decision (``cues.proposal_sentences``, ``cues.agrees``):
"Тогда предлагаю импортировать базу ночью, частями" — "Давайте так и сделаем." Kept as said when
the model passes it over, and a task the model made of it becomes the decision. A proposal that
is questioned or refused, or the meeting's own course ("давайте обсудим"), is not. No model."""

from __future__ import annotations

import pytest

from konspekt.v1 import common_pb2
from konspekt_summarizer.checks import firm_left_out
from konspekt_summarizer.cues import agrees, proposal_sentences, taken_up
from konspekt_summarizer.konspekt import Summarizer
from konspekt_summarizer.settings import SummarizerSettings
from konspekt_summarizer.windows import Line

from .test_owners import lines
from .test_pure import ScriptedEngine


@pytest.mark.parametrize(
    ("text", "proposes"),
    [
        ("Тогда предлагаю импортировать базу ночью, частями по пять тысяч записей.", True),
        ("Перенесём обучение на следующую среду?", True),
        ("Давайте попробуем, но не больше 200 тысяч рублей на пробу.", True),
        ("Может, цветы и подарочную карту в книжный магазин?", True),
        ("How about solar lamps for the whole park?", True),
        ("I suggest we cut the menu to sixteen dishes.", True),
        # the meeting's own course, a request to a named person, a question for information
        ("Давайте обсудим, как идёт внедрение.", False),
        ("Давайте вернёмся к празднику.", False),
        ("Okay, let's start with the budget.", False),
        ("Андрей, предлагаю тебе позвонить поставщику?", False),
        ("Сколько записей в базе?", False),
    ],
)
def test_a_proposal_is_found_by_its_form(text: str, proposes: bool) -> None:
    assert bool(proposal_sentences(text)) is proposes


@pytest.mark.parametrize(
    ("reply", "agreed"),
    [
        ("Давайте так и сделаем.", True),
        ("Да, обучение переносим на среду.", True),
        ("Agreed.", True),
        ("Fine, Friday works for me.", True),
        # a doubt, an objection, a question
        ("Не много ли?", False),
        ("Да, но это дорого.", False),
        ("Можно, но это не наш вопрос сегодня.", False),
        ("Not this sprint.", False),
        ("Okay, and who pays for it?", False),
    ],
)
def test_a_reply_takes_a_proposal_up_only_when_it_agrees_and_does_not_object(
    reply: str, agreed: bool
) -> None:
    assert agrees(reply) is agreed
    assert taken_up("Предлагаю импортировать базу ночью.", reply) is agreed


def test_a_proposal_taken_up_and_left_out_is_kept_as_said() -> None:
    said = [
        Line(5, "00:27", "Тогда предлагаю импортировать базу ночью, частями по пять тысяч записей."),
        Line(6, "00:34", "Давайте так и сделаем."),
        Line(7, "00:37", "Предлагаю, чтобы каждая семья сдала по две тысячи."),
        Line(8, "00:41", "Не много ли?"),
    ]
    assert [(ln.index, ln.text) for ln in firm_left_out(said, [])] == [
        (5, "Тогда предлагаю импортировать базу ночью, частями по пять тысяч записей.")
    ]
    # said by an item already: nothing added
    assert firm_left_out(said, [("Импортировать базу ночью частями по пять тысяч записей", "00:27")]) == []


def test_a_task_the_model_made_of_a_proposal_taken_up_is_the_decision() -> None:
    """d6 of eval-dev: the 1.5B wrote the accepted proposal as Андрей's task ("Предложить
    импортировать…"), an owner its line does not name. It is the group's decision."""
    segments = lines(
        "Андрей, здравствуйте, импорт базы идёт очень медленно.",
        "Тогда предлагаю импортировать базу ночью, частями по пять тысяч записей.",
        "Давайте так и сделаем.",
    )
    answer: dict[str, object] = {
        "title": "Внедрение CRM",
        "summary": "Обсудили импорт базы.",
        "key_points": [],
        "decisions": [],
        "action_items": [
            {
                "task": "Предложить импортировать базу ночью частями",
                "owner": "Андрей",
                "due": "",
                "time": "00:05",
            }
        ],
    }
    transcript = common_pb2.Transcript(language="ru", segments=segments, duration=15.0)
    settings = SummarizerSettings(engine="openai", base_url="http://model-server/v1")
    k, _usage, warnings = Summarizer(ScriptedEngine(answer), settings).summarize(transcript)
    assert not k.action_items
    assert [(d.text, d.segment_index) for d in k.decisions] == [
        ("Предложить импортировать базу ночью частями", 1)
    ]
    assert any("a proposal the next line agrees to" in w for w in warnings)


@pytest.mark.parametrize("kind", ["decisions", "action_items"])
def test_an_item_that_only_agrees_to_a_proposal_gives_way_to_the_proposal(kind: str) -> None:
    """d6 through the service: the 1.5B listed "Давайте так сделаем." (as a task of Андрей, or as a
    decision) and the proposal it agrees to nowhere. The proposal is the decision; an agreement
    with nothing proposed before it is dropped."""
    segments = lines(
        "Сколько записей в базе?",
        "Тогда предлагаю импортировать базу ночью, частями по пять тысяч записей.",
        "Давайте так сделаем.",
        "Отлично, до связи.",
    )
    item: dict[str, str] = {"text": "Давайте так сделаем.", "time": "00:10"}
    if kind == "action_items":
        item = {"task": "Давайте так сделаем.", "owner": "Андрей", "due": "до пятницы", "time": "00:10"}
    answer: dict[str, object] = {
        "title": "Внедрение CRM",
        "summary": "Обсудили импорт базы.",
        "key_points": [],
        "decisions": [],
        "action_items": [],
        kind: [item, {"text": "Отлично, до связи.", "task": "Отлично, до связи.", "time": "00:15"}],
    }
    transcript = common_pb2.Transcript(language="ru", segments=segments, duration=20.0)
    settings = SummarizerSettings(engine="openai", base_url="http://model-server/v1")
    k, _usage, warnings = Summarizer(ScriptedEngine(answer), settings).summarize(transcript)
    assert [(d.text, d.segment_index) for d in k.decisions] == [
        ("Тогда предлагаю импортировать базу ночью, частями по пять тысяч записей.", 1)
    ]
    assert not k.action_items
    assert any("it only agrees to the proposal before it" in w for w in warnings)
    assert any("'Отлично, до связи.' dropped" in w for w in warnings)


def test_a_proposal_whose_agreement_is_listed_already_is_not_added_again() -> None:
    """d4 through the service: "Предлагаю сначала 10%, потом всех." — "Согласна, выкатываем
    постепенно, сначала 10% пользователей." with the reply already a decision: not listed twice."""
    said = [
        Line(7, "00:38", "Предлагаю сначала 10% потом всех."),
        Line(8, "00:42", "Согласна, выкатываем постепенно сначала 10% пользователей."),
    ]
    assert firm_left_out(said, [("Выкатываем постепенно сначала 10% пользователей", "00:42")]) == []
    assert [ln.index for ln in firm_left_out(said, [])] == [7]
