"""Tasks asked and answered over two or three lines (``exchanges``), en and ru, and what is no
task: a question for information, an answer that neither agrees nor promises."""

from __future__ import annotations

import pytest

from konspekt.v1 import common_pb2
from konspekt_summarizer.exchanges import Exchange, find_exchanges, half_of
from konspekt_summarizer.owners import Names


def found(*lines: str) -> list[tuple[str, int, int, str, str]]:
    segments = [common_pb2.Segment(start=5.0 * i, end=5.0 * i + 4, text=t) for i, t in enumerate(lines)]
    return [(x.owner, x.request, x.last, x.text, x.due) for x in find_exchanges(segments, Names.of(segments))]


@pytest.mark.parametrize(
    ("lines", "owner", "due"),
    [
        # a request by name, the deadline in the answer
        (["Оксана, ты договоришься с автобусной компанией?", "Да, к пятнице успею."], "Оксана", "к пятнице"),
        (
            ["Samuel, you know the checklist best, please add that step.", "Okay, by Thursday."],
            "Samuel",
            "by Thursday",
        ),
        # "who will…?" asks for a volunteer; "I'll" is the person asked
        (
            ["Людмила, а кто напишет объявление в чат?", "Я напишу сама сегодня вечером."],
            "Людмила",
            "сегодня вечером",
        ),
        (
            ["Helen, will the public see these numbers?", "Yes, I'll publish a summary on Monday."],
            "Helen",
            "on Monday",
        ),
        # any sentence addressed to a person, when the answer promises
        (
            ["It goes into the vault, Frank, that's a small one for you.", "No problem, I'll do it today."],
            "Frank",
            "today",
        ),
        # a name said alone before the request; a name before a verb said to them (no comma)
        (
            ["Елена. Найди пять блогеров и пришли список до 20 марта.", "Договорились."],
            "Елена",
            "до 20 марта",
        ),
        (["Теперь задачи. Павел исправь две ошибки до среды.", "Сделаю до среды."], "Павел", "до среды"),
        # work given in the third person, with an answer or a deadline
        (["Нет, поручим Наталье заказать бетон.", "Хорошо, закажу сегодня до обеда."], "Наталья", "сегодня"),
        (
            ["С Константином договорились. Он привезёт 40 шлемов в понедельник."],
            "Константин",
            "в понедельник",
        ),
    ],
)
def test_a_task_given_and_taken(lines: list[str], owner: str, due: str) -> None:
    [(who, first, last, text, when)] = found(*lines)
    assert (who, when) == (owner, due)
    assert (first, last) == (0, len(lines) - 1)
    assert text.split(" — ")[-1] == lines[-1]


@pytest.mark.parametrize(
    "lines",
    [
        # a question for information, answered with information
        ["Samuel, can you walk us through the timeline?", "On Saturday at 9:40 the disk was full."],
        ["Walter, what is the total for next year?", "4.2 million dollars, about 3% more."],
        # asked, but not taken on (no agreement, no promise)
        ["Марина, расскажите, что получается.", "Импорт идёт медленно, база большая."],
        # a group decision and a bare statement
        ["So we agree to move the release to March 17th.", "Okay."],
        ["Маркетинг готов подождать до пятницы."],
    ],
)
def test_no_task(lines: list[str]) -> None:
    assert found(*lines) == []


def test_a_task_spoken_over_two_segments_and_answered() -> None:
    [(who, first, last, text, _due)] = found(
        "When the price stays at 5 dollars, Walter will look for savings in the",
        "pool budget and bring it to the next meeting on the 14th.",
        "Fine, I'll have it ready for the 14th.",
    )
    assert (who, first, last) == ("Walter", 0, 2)
    assert "pool budget" in text and text.endswith("Fine, I'll have it ready for the 14th.")


def test_half_of_an_exchange() -> None:
    asked = Exchange(
        "Оксана", 3, 4, "Оксана, ты договоришься с автобусной компанией?", ("Да, к пятнице.",), "к пятнице"
    )
    assert half_of("Да, к пятнице", asked, 4)  # the answer alone says no work
    assert not half_of("Договориться с автобусной компанией", asked, 4)
    question = Exchange(
        "Helen", 7, 8, "Helen, will the public see it?", ("Yes, I'll publish a summary on the website.",), ""
    )
    assert half_of("Helen, will the public see it?", question, 7)  # the answer says the work
    assert not half_of("Publish a summary on the website", question, 7)
    given = Exchange(
        "Kate", 6, 6, "Kate will send the invitations to the beta testers by Friday.", (), "by Friday"
    )
    assert not half_of("Send the invitations", given, 6)  # the model's shorter words are kept
