"""The konspekt from the model's answers: every item placed on the segment it comes from and
checked (``evidence``, ``owners``, ``checks``), duplicates folded, kinds kept apart. What each
check changes is written to ``warnings`` (the user sees them) so what a check removes can be
counted, not only what it catches."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from konspekt.cli import fmt_time
from konspekt.notices import Note
from konspekt.v1 import common_pb2
from konspekt_summarizer import morph
from konspekt_summarizer.answer import ActionOut, ItemsOut, PointOut
from konspekt_summarizer.checks import (
    SENTENCE,
    Checked,
    announced,
    assignee,
    check_due,
    check_free_text,
    said_in,
    said_words,
    states_decision,
)
from konspekt_summarizer.cues import (
    NOT_DECIDED,
    acknowledges_only,
    kind_of,
    named,
    proposal_sentences,
    taken_up,
)
from konspekt_summarizer.dates import find_dates
from konspekt_summarizer.evidence import (
    WORD_RE,
    dedupe,
    find_evidence,
    found_by_another_window,
    item_note,
    says_mostly_the_same,
    stems,
)
from konspekt_summarizer.exchanges import Exchange, find_exchanges, half_of
from konspekt_summarizer.exchanges import at as exchange_at
from konspekt_summarizer.figures import figures_left_out
from konspekt_summarizer.owners import Names, Owner, addressed, assigned, check_owner, same_name
from konspekt_summarizer.prompts import Prompts

log = logging.getLogger(__name__)

#: A transcript of at most this many words is quoted as the summary when the checks left no
#: summary sentence and no item (the small models "summarize" JFK's 11 seconds with Jefferson).
QUOTE_WORDS = 80

#: (window number, text, segment index) of the items kept, per kind
Placed = dict[str, list[tuple[int, str, int]]]


@dataclass
class Assembly:
    """What is being built, with the notes for the user."""

    segments: Sequence[common_pb2.Segment]
    konspekt: common_pb2.Konspekt
    exchanges: Sequence[Exchange] = ()
    warnings: list[str] = field(default_factory=list)
    placed: Placed = field(default_factory=lambda: {"key point": [], "decision": [], "action item": []})

    def evidence(self, time: str, text: str, what: str) -> int:
        found = find_evidence(time, text, self.segments)
        if found.index < 0:
            self.warnings.append(item_note(what, text, found.note, dropped=True))
        elif found.note:
            self.warnings.append(item_note(what, text, found.note))
        return found.index

    def add_point(self, what: str, window: int, text: str, index: int) -> None:
        self.placed[what].append((window, text, index))
        target = self.konspekt.decisions if what == "decision" else self.konspekt.key_points
        target.append(common_pb2.Point(text=text, at=self.segments[index].start, segment_index=index))


def assemble(
    segments: Sequence[common_pb2.Segment],
    answers: Sequence[ItemsOut],
    title: str,
    summary: str,
    language: str,
    style: int,
    prompts: Prompts,
) -> tuple[common_pb2.Konspekt, list[str]]:
    """The checked konspekt and the notes on what the checks changed."""
    konspekt = common_pb2.Konspekt(language=language, title=title, summary=summary, style=style)  # type: ignore[arg-type]
    names = Names.of(segments)
    out = Assembly(segments, konspekt, find_exchanges(segments, names))
    # (window number, item): an item found again at the same place by the next window (they
    # overlap) is the same item, even in other words
    key_points = dedupe([(w, p) for w, a in enumerate(answers) for p in a.key_points], lambda t: t[1].text)
    decisions = dedupe([(w, p) for w, a in enumerate(answers) for p in a.decisions], lambda t: t[1].text)
    actions = dedupe([(w, x) for w, a in enumerate(answers) for x in a.action_items], lambda t: t[1].task)
    _tasks_written_as_decisions(segments, decisions, actions, names, len(answers))
    for window, p in decisions:
        if "?" in p.text:
            out.warnings.append(item_note("decision", p.text, Note("question_not_decision"), dropped=True))
            continue
        if acknowledges_only(p.text):
            if not _proposal_taken_up(out, window, p.text, p.time, "decision", names):
                out.warnings.append(item_note("decision", p.text, Note("agrees_only"), dropped=True))
            continue
        if NOT_DECIDED.search(p.text):
            out.warnings.append(item_note("decision", p.text, Note("not_decided"), dropped=True))
            continue
        if _tells_past(p.text):
            # "В первом квартале мы потратили на выставки почти миллион": what happened
            index = out.evidence(p.time, p.text, "decision")
            if index >= 0 and not found_by_another_window(-1, p.text, index, out.placed["key point"]):
                # as a window of its own: the model's key point of the same line is then a repeat
                out.add_point("key point", len(answers) + window, p.text, index)
                out.warnings.append(item_note("decision", p.text, Note("past_to_key_point")))
            continue
        if kind_of(p.text, names.people) == "task":
            # "Светлана, перенеси кампанию…", "Описание обновлю я": a request or a promise
            log.info("decision %r asks a person or promises: an action item", p.text)
            actions.append(
                (
                    len(answers) + window,
                    ActionOut(task=p.text, owner=named(p.text, names.people), time=p.time),
                )
            )
            continue
        index = out.evidence(p.time, p.text, "decision")
        if index < 0:
            continue
        said_as = kind_of(segments[index].text, names.people)
        name = assignee(p.text)
        if said_as == "task" and name and names.said(name):
            # "Ольга обновит описание" from "Описание обновлю я, понедельник": a promise
            log.info("decision %r is %s's promise: an action item", p.text, name)
            actions.append((len(answers) + window, ActionOut(task=p.text, owner=name, time=p.time)))
            continue
        # (not when its line says what the group does: "Then we move the round to seven, starting
        # tomorrow" followed by "Peter, please tell the lab" stays a decision)
        person = (
            addressed(segments, index, names, lines=1) if find_dates(p.text) and said_as != "decision" else ""
        )
        if person:
            # "Run the load test on Wednesday" from "Raj, can you run it on Wednesday?": a
            # deadline put to a named person is that person's task
            log.info("decision %r has a deadline and was put to %s: an action item", p.text, person)
            actions.append((len(answers) + window, ActionOut(task=p.text, owner=person, time=p.time)))
        elif not found_by_another_window(window, p.text, index, out.placed["decision"]):
            out.add_point("decision", window, _with_announced(p.text, segments, index, names), index)
    for window, x in actions:
        _action(out, window, x, names)
    _exchanges_left_out(out)
    said = [*out.placed["decision"], *out.placed["action item"]]
    for window, p in key_points:
        index = out.evidence(p.time, p.text, "key point")
        if index < 0 or found_by_another_window(window, p.text, index, out.placed["key point"]):
            continue
        if found_by_another_window(-1, p.text, index, said):  # compared with every decision and task
            log.info("key point %r repeats a decision or task: left out", p.text)
            continue
        if kind_of(p.text, names.people) == "decision":
            # "Релиз переносим на 17 апреля" as a key point: the group says what it does
            log.info("key point %r says what the group does: a decision", p.text)
            out.add_point("decision", window, _with_announced(p.text, segments, index, names), index)
            said.append((window, p.text, index))
            continue
        out.add_point("key point", window, p.text, index)
    _figures_left_out(out, summary)
    # in the order they were said (windows come in any order)
    for items in (konspekt.key_points, konspekt.decisions, konspekt.action_items):
        items.sort(key=lambda item: item.at)
    _free_text(out, title, summary, style, prompts)
    return konspekt, out.warnings


def _tasks_written_as_decisions(
    segments: Sequence[common_pb2.Segment],
    decisions: list[tuple[int, PointOut]],
    actions: list[tuple[int, ActionOut]],
    names: Names,
    windows: int,
) -> None:
    """ "Boris will fix the crash by Wednesday" written as a decision is an action item when Boris
    is a person said in the meeting who owns a task (the model's, or "X will …" in the transcript),
    or the item gives a deadline. Moved as a
    "window" of its own, so it is compared with the model's action items from the same place
    (the model often writes the task as both)."""
    promised = {a for s in segments for sentence in SENTENCE.findall(s.text) if (a := assignee(sentence))}
    promised |= {x.owner.strip() for _, x in actions if x.owner.strip()}  # the model's own owners
    for window, p in list(decisions):
        name = assignee(p.text)
        if name and names.said(name) and (any(same_name(name, a) for a in promised) or find_dates(p.text)):
            decisions.remove((window, p))
            actions.append((windows + window, ActionOut(task=p.text, owner=name, time=p.time)))
            log.info("decision %r says who does it: an action item", p.text)


def _action(out: Assembly, window: int, x: ActionOut, names: Names) -> None:
    if acknowledges_only(x.task):  # "Давайте так сделаем." as a task
        if not _proposal_taken_up(out, window, x.task, x.time, "action item", names):
            out.warnings.append(item_note("action item", x.task, Note("agrees_only"), dropped=True))
        return
    index = out.evidence(x.time, x.task, "action item")
    if index < 0 or found_by_another_window(window, x.task, index, out.placed["action item"]):
        return
    owner = _owner(x.owner, out.segments, index, names)
    exchange = exchange_at(out.exchanges, index)
    task = x.task
    if exchange is not None:
        owner = _exchange_owner(owner, exchange, index, out.segments)
        if half_of(task, exchange, index):
            # "Да, пятница успеешь" says when, not what: the request says what
            log.info(
                "action item %r: the whole exchange at %s taken", task, fmt_time(out.segments[index].start)
            )
            task = exchange.text
            if any(exchange.holds(i) for _, _, i in out.placed["action item"]):
                log.info("action item %r: its exchange is listed already", x.task)
                return
    due = check_due(task, x.due, out.segments, index, owner.value)
    if exchange is not None and exchange.due and not said_in(due.value, said_words(exchange.text)):
        # the deadline of the exchange the item comes from, not one said nearby for another task
        was = f"due {due.value!r} replaced by" if due.value else "due"
        due = Checked(exchange.due, note=f"{was} {exchange.due!r}, said in the request or its answer")
    if _tells_past(x.task):  # "Погрузчик номер три опять сломался", "Сергей купил краску"
        moved, reason = "key point", ""
    else:
        reply = out.segments[index + 1].text if index + 1 < len(out.segments) else ""
        moved, reason = _not_a_task(out.segments[index].text, reply, x.task, owner, due.value, names)
    if moved:
        # what it repeats is already listed (with a decision the 1.5B often writes each line as a
        # task too); anything else is kept under its kind
        earlier = [*out.placed[moved], *(out.placed["decision"] if moved == "key point" else [])]
        if not found_by_another_window(-1, x.task, index, earlier):
            out.add_point(moved, window, x.task, index)
            listed = Note(f"task_to_{moved.replace(' ', '_')}", reason=reason)
            if not reason:
                listed = Note("past_to_key_point")
            out.warnings.append(item_note("action item", x.task, listed))
        return
    _add_action(out, window, task, owner, due, index)


def _add_action(out: Assembly, window: int, task: str, owner: Owner, due: Checked, index: int) -> None:
    out.placed["action item"].append((window, task, index))
    for warning in (owner.warning, due.warning):
        if warning:
            out.warnings.append(item_note("action item", task, warning))
    for note in (owner.note, due.note):
        if note:
            log.info("action item %r: %s", task, note)
    out.konspekt.action_items.append(
        common_pb2.ActionItem(
            task=task,
            owner=owner.value,
            due=due.value,
            at=out.segments[index].start,
            segment_index=index,
            owner_unconfirmed=owner.unconfirmed,
        )
    )


def _exchange_owner(
    owner: Owner, exchange: Exchange, index: int, segments: Sequence[common_pb2.Segment]
) -> Owner:
    """An item on the answer to a request belongs to the person asked: "I'll do it" / "сделаю"
    is said by them, whoever the model named."""
    if index == exchange.request or same_name(owner.value, exchange.owner):
        return owner
    asked = fmt_time(segments[exchange.request].start)
    if not owner.value:
        return Owner(exchange.owner, note=f"owner is {exchange.owner!r}, asked at {asked}")
    return Owner(
        exchange.owner,
        warning=Note("owner_replaced_asked", owner=owner.value, person=exchange.owner, at=asked),
    )


#: The "window" of the items the checks add (``_exchanges_left_out``, ``_figures_left_out``).
LEFT_OUT_WINDOW = 1_000_000


def _exchanges_left_out(out: Assembly) -> None:
    """The requests taken on (``exchanges``) that no action item covers: kept as said, with the
    person asked and the deadline of the exchange. An item of the same person that says the
    same elsewhere without that deadline ("Может, цветы и подарочную карту?" before "Сергей,
    купи её" — "Хорошо, куплю до четверга") becomes the exchange."""
    items = out.konspekt.action_items
    for exchange in out.exchanges:
        if any(exchange.holds(x.segment_index) for x in items):
            continue
        index = exchange.request
        at = fmt_time(out.segments[index].start)
        mine = stems(exchange.text)
        same = [x for x in items if same_name(x.owner, exchange.owner) and says_mostly_the_same(mine, x.task)]
        if same and (not exchange.due or said_in(same[0].due, said_words(exchange.text))):
            continue
        if same:
            x = same[0]
            said = Note("exchange_for", at=at, due=exchange.due)
            out.warnings.append(item_note("action item", x.task, said))
            x.task, x.due, x.at, x.segment_index = (
                exchange.text,
                exchange.due,
                out.segments[index].start,
                index,
            )
            continue
        _add_action(out, LEFT_OUT_WINDOW, exchange.text, Owner(exchange.owner), Checked(exchange.due), index)
        out.warnings.append(item_note("action item", exchange.text, Note("exchange_left_out", at=at)))


def _figures_left_out(out: Assembly, summary: str) -> None:
    """The sentences with numbers no item or the summary has, as key points (``figures``)."""
    k = out.konspekt
    texts = [summary, *(p.text for p in [*k.key_points, *k.decisions])]
    texts += [f"{x.task} {x.due}" for x in k.action_items]
    for figure in figures_left_out(out.segments, texts):
        out.add_point("key point", LEFT_OUT_WINDOW, figure.text, figure.index)
        at = fmt_time(out.segments[figure.index].start)
        out.warnings.append(item_note("key point", figure.text, Note("figure_left_out", at=at)))


def _owner(said: str, segments: Sequence[common_pb2.Segment], index: int, names: Names) -> Owner:
    """The model's owner, checked; the person the item's own line gives the task to wins over
    another name ("Ben, can you fix the refund bug by Thursday?" with the owner "Olivia")."""
    owner = check_owner(said, segments, index, names)
    line = segments[index].text
    person = addressed(segments, index, names, lines=0) or assigned(line, names)
    if not person and (name := assignee(line)) and names.said(name):
        person = name  # "Walter will look for savings…"
    if not person or same_name(person, owner.value):
        return owner
    if not owner.value:
        return Owner(person, note=f"owner is {person!r}, named in its line")
    return Owner(person, warning=Note("owner_replaced_named", owner=owner.value, person=person))


def _with_announced(text: str, segments: Sequence[common_pb2.Segment], index: int, names: Names) -> str:
    """A decision from a short line that announces it ("Решаем так: без шлема на площадку.")
    with what the next line decides ("Никого не пускаем, даже на пять минут.")."""
    more = announced(segments, index, names.people)
    return text if not more or says_mostly_the_same(stems(more), text) else f"{text} {more}"


def _proposal_taken_up(out: Assembly, window: int, text: str, time: str, what: str, names: Names) -> bool:
    """An item that only agrees ("Давайте так сделаем.") on a line that takes up the proposal
    just before it ("Тогда предлагаю импортировать базу ночью…"): that proposal is the decision.
    False when its line takes up no proposal."""
    index = out.evidence(time, text, what)
    if index < 1 or not taken_up(out.segments[index - 1].text, out.segments[index].text, names.people):
        return False
    proposed = proposal_sentences(out.segments[index - 1].text, names.people)
    if not found_by_another_window(-1, proposed, index - 1, out.placed["decision"]):
        out.add_point("decision", window, proposed, index - 1)
        out.warnings.append(item_note(what, text, Note("agrees_to_proposal")))
    return True


def _tells_past(text: str) -> bool:
    """Whether ``text`` only tells what already happened (Russian verbs all in the past tense,
    and no decision said): a key point, not a decision or a task. English past tense is not told
    apart from participles here, so English items stay as they are."""
    return morph.narrates_past(WORD_RE.findall(text)) and not states_decision(text)


def _not_a_task(line: str, reply: str, task: str, owner: Owner, due: str, names: Names) -> tuple[str, str]:
    """The kind an action item with no one to do it really is, and why ("", "" for a task).

    "Решить отказаться от подписки" from a line that says "решили": the model's decision written
    as a task. "Магазин приложений проверяет сборку" with "Магазин" as the owner: a fact. "В 800
    тысяч переводим в контекстную рекламу" with no owner, no due and no one asked or promising in
    its line: what was said, not a task. "Предложить импортировать базу ночью" from "Предлагаю
    импортировать базу ночью…" — "Давайте так и сделаем.": a proposal the group took up."""
    proposal = taken_up(line, reply, names.people)
    if owner.value:
        named_here = any(same_name(owner.value, w) for w in WORD_RE.findall(line))
        if not named_here and kind_of(line, names.people) != "task":
            if states_decision(line):
                # "Решили: покупаем шторы из фонда класса" given by the model to someone it does not name
                return "decision", Note("line_states_decision_unnamed", owner=owner.value)
            if proposal:
                return "decision", Note("proposal_taken_up_unnamed", owner=owner.value)
        return "", ""
    promise = kind_of(line, names.people) == "task"  # "Agreed, I'll need until Thursday": whoever speaks
    if states_decision(line) and not promise:
        return "decision", Note("line_states_decision")
    if proposal and not promise:
        return "decision", Note("proposal_taken_up")
    kinds = (kind_of(line, names.people), kind_of(task, names.people))
    kind = "decision" if "decision" in kinds and "task" not in kinds else "key point"
    if owner.warning:  # "From now on the shop checks every build" with the owner "Shop"
        return kind, owner.warning
    if not due and "task" not in kinds:
        return kind, Note("no_due_no_one")
    return "", ""


def _free_text(out: Assembly, title: str, summary: str, style: int, prompts: Prompts) -> None:
    """Title and summary without names or numbers never said; what is left, else the first
    checked items, else a short transcript quoted, else a plain fallback."""
    konspekt, segments = out.konspekt, out.segments
    free = check_free_text(title, summary, segments)
    out.warnings.extend(free.warnings)
    kind = prompts.kind_lecture if style == common_pb2.STYLE_LECTURE else prompts.kind_meeting
    konspekt.title = free.title or prompts.fallback_title.format(kind=kind)
    items = [p.text for p in konspekt.key_points] or [p.text for p in konspekt.decisions]
    spoken = " ".join(s.text.strip() for s in segments if s.text.strip())
    konspekt.summary = (
        free.summary
        or " ".join(t if t.endswith((".", "!", "?")) else f"{t}." for t in items[:3])
        or (prompts.too_short_summary.format(text=spoken) if len(spoken.split()) <= QUOTE_WORDS else "")
        or prompts.fallback_summary
    )
