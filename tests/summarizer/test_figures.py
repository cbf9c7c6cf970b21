"""Figures said that the konspekt would otherwise lose (``figures``): what is added, and what is
not (numbers the konspekt has, agenda counters, questions)."""

from __future__ import annotations

from konspekt.v1 import common_pb2
from konspekt_summarizer.figures import MIN_FIGURES, figures_left_out, numbers


def segments(*lines: str) -> list[common_pb2.Segment]:
    return [common_pb2.Segment(start=5.0 * i, end=5.0 * i + 4, text=t) for i, t in enumerate(lines)]


def test_numbers_as_digits() -> None:
    assert numbers("Наибольшая глубина Байкала 1,642 метра, длина 636 км.") == {"1642", "636"}
    assert numbers("Item 1 roads: the engineers asked for 1.1 million dollars") == {"11"}
    assert numbers("Пункт 2, часть 3: около 20% воды") == {"20"}
    assert numbers("No numbers here, part two.") == set()


def test_the_figures_the_konspekt_does_not_have_are_added_as_said() -> None:
    said = segments(
        "Item 2, the library.",
        "Sunday opening needs two more staff, that's around 60 thousand dollars a year.",
        "How much is 60 thousand per month?",  # a question: never a figure
        "Last week we shipped 4200 orders, 30% more than a month ago. We have 8 volunteers.",
        "The road repair gets 1.1 million dollars.",
    )
    have = ["Road repair gets the full 1.1 million dollars"]
    added = figures_left_out(said, have)
    assert [(f.index, f.text) for f in added] == [
        (1, "Sunday opening needs two more staff, that's around 60 thousand dollars a year."),
        (3, "Last week we shipped 4200 orders, 30% more than a month ago."),
        (3, "We have 8 volunteers."),
    ]


def test_at_most_a_few_figures_per_segment_count() -> None:
    said = segments(*(f"We sold {100 + i} tickets on day {i}." for i in range(40)))
    assert len(figures_left_out(said, [])) == MIN_FIGURES
