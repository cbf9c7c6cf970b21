"""The summarizer flow: transcript → one pass per window → checked konspekt.

A transcript that fits a window is read in **one** pass (the normal case): for a meeting, three
calls over the same cached transcript (tasks, decisions, the rest; ``Summarizer._read``), and a
fourth, short one when lines that look like a decision or a task are covered by no item
(``Summarizer._review``, ``cues``); a longer
one is cut into overlapping windows, one pass each (sent at once to an engine that batches), and
the window titles and summaries are merged by short calls. Nothing re-reads the transcript: what the model
wrote is checked against what was said (``assemble``), not asked for again. A call whose answer is
not valid JSON is retried once with the error appended after the transcript (the prompt's start,
the transcript, stays in the KV cache).

Where to change what: prompts in ``prompts.py``, the answer's schema in ``answer.py``, windows in
``windows.py``, placing items in ``evidence.py``, owners in ``owners.py``, the other checks in
``checks.py``, kinds by the form of a line in ``cues.py``, how they are applied in ``assemble.py``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from konspekt.errors import FailedPrecondition
from konspekt.notices import Note
from konspekt.v1 import common_pb2, summarizer_pb2
from konspekt_summarizer.answer import (
    MERGE_MAX_TOKENS,
    RETRY_RESERVE,
    ItemsOut,
    KonspektOut,
    M,
    PointOut,
    TitleSummaryOut,
    konspekt_schema,
    parse_answer,
    salvage_answer,
    title_summary_schema,
)
from konspekt_summarizer.assemble import assemble
from konspekt_summarizer.checks import firm_left_out
from konspekt_summarizer.cues import MAX_CANDIDATES, repeats, uncovered
from konspekt_summarizer.engine import TEMPLATE_OVERHEAD, Completion, LLMEngine
from konspekt_summarizer.evidence import item_note
from konspekt_summarizer.owners import Names
from konspekt_summarizer.prompts import Prompts, prompts_for, with_wish
from konspekt_summarizer.settings import SummarizerSettings
from konspekt_summarizer.windows import OVERLAP_MAX, OVERLAP_SHARE, Line, split_windows, transcript_lines

log = logging.getLogger(__name__)

#: (fraction 0..1, short message); may raise to cancel the work.
ProgressFn = Callable[[float, str], None]
#: Fewer words than this are quoted, not summarized.
TOO_SHORT_WORDS = 10


def too_short_warning(words: int) -> str:
    return Note("transcript_too_short", words=str(words))


def cut_off_warning(label: str, max_tokens: int) -> str:
    return Note("answer_cut_off", label=label, tokens=str(max_tokens))


@dataclass
class Usage:
    """Model calls of one konspekt. A call's time to its first answer token is reading its
    prompt, the rest writing. One pass over the transcript is what reading it once (the first
    call of each window: later calls of a window find the transcript in the KV cache) and writing
    the konspekt once (the answers of the first tries) cost at the rates measured in these calls
    (``one_pass_seconds``); the rest — merges, retries, the instructions read after the cached
    transcript — is the summarizer's overhead over it."""

    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    calls: int = 0
    prompt_seconds: float = 0.0
    #: the transcript read once: prompt tokens and reading time of each window's first call
    read_tokens: int = 0
    read_seconds: float = 0.0
    #: the konspekt written once: answer tokens of the first tries
    pass_completion_tokens: int = 0

    def add(self, done: Completion, first_pass: bool = False, reads: bool = False) -> None:
        self.prompt_tokens += done.prompt_tokens
        self.completion_tokens += done.completion_tokens
        self.seconds += done.seconds
        reading = min(done.prompt_seconds, done.seconds)
        self.prompt_seconds += reading
        self.calls += 1
        if first_pass:
            self.pass_completion_tokens += done.completion_tokens
        if reads:
            self.read_tokens += done.prompt_tokens
            self.read_seconds += reading

    def one_pass_seconds(self) -> float:
        """What one pass over the transcript costs at the rates measured in these calls."""
        writing = self.seconds - self.prompt_seconds
        if not self.read_seconds or writing <= 0 or not self.completion_tokens:
            return self.seconds
        return self.read_seconds + self.pass_completion_tokens / (self.completion_tokens / writing)

    def to_proto(self) -> summarizer_pb2.Usage:
        return summarizer_pb2.Usage(
            model=self.model,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            seconds=self.seconds,
            calls=self.calls,
            prompt_seconds=self.prompt_seconds,
            one_pass_seconds=self.one_pass_seconds(),
        )


@dataclass
class Job:
    """Everything one summarize() call needs, resolved once: language, prompts, style."""

    language: str
    style: int
    prompts: Prompts
    progress: ProgressFn
    usage: Usage
    warnings: list[str] = field(default_factory=list)
    #: the names said in the transcript (``owners.Names``), lower case
    people: frozenset[str] = frozenset()
    last: tuple[float, str] = (-1.0, "")
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: the person's wish (SummarizeRequest.instruction), "" for none
    instruction: str = ""

    @property
    def lecture(self) -> bool:
        return self.style == common_pb2.STYLE_LECTURE

    @property
    def system(self) -> str:
        return self.prompts.system_lecture if self.lecture else self.prompts.system_meeting

    @property
    def kind(self) -> str:
        return self.prompts.kind_lecture if self.lecture else self.prompts.kind_meeting

    def report(self, fraction: float, message: str) -> None:
        # Never backwards (a retried call starts its share again, calls run in parallel on a
        # batching engine); throttled: a message per token would flood the stream.
        with self.lock:
            fraction = max(0.0, self.last[0], min(fraction, 1.0))
            if message != self.last[1] or fraction - self.last[0] >= 0.02 or fraction >= 1.0:
                self.last = (fraction, message)
                self.progress(fraction, message)

    def add(self, done: Completion, first_pass: bool = False, reads: bool = False) -> None:
        with self.lock:
            self.usage.add(done, first_pass, reads)


@dataclass(frozen=True)
class Call:
    """One model call: what is asked, how the answer is checked, its share of the progress."""

    user: str
    schema: dict[str, Any]
    max_tokens: int
    span: tuple[float, float]
    label: str
    system: str = ""
    #: part of the one pass (a window's calls), and the call that reads the transcript first
    first_pass: bool = False
    reads: bool = False


class Summarizer:
    """Transcript -> Konspekt with any LLMEngine."""

    def __init__(self, engine: LLMEngine, settings: SummarizerSettings) -> None:
        self.engine = engine
        self.max_tokens = settings.max_tokens
        self.window_tokens = settings.window_tokens
        # the engine says how many calls it runs at once (a server batches them; llama.cpp in
        # process runs one at a time)
        self.parallel = max(1, int(getattr(engine, "parallel", 1)))

    def _all(self, calls: Sequence[Callable[[], M]]) -> list[M]:
        """The answers of independent model calls, in order: at once (up to ``parallel``) where
        the engine batches them, else one after another."""
        if self.parallel <= 1 or len(calls) <= 1:
            return [call() for call in calls]
        with ThreadPoolExecutor(min(self.parallel, len(calls)), thread_name_prefix="konspekt-call") as pool:
            return list(pool.map(lambda call: call(), calls))

    def alive(self) -> bool:
        """The engine's own liveness check if it has one (a model server over HTTP), else True:
        the stage's health follows it (``konspekt.server.Probed``)."""
        probe = getattr(self.engine, "alive", None)
        return bool(probe()) if callable(probe) else True

    def summarize(
        self,
        transcript: common_pb2.Transcript,
        style: int = common_pb2.STYLE_MEETING,
        language: str = "",
        on_progress: ProgressFn | None = None,
        *,
        instruction: str = "",
    ) -> tuple[common_pb2.Konspekt, Usage, list[str]]:
        """``instruction``: a person's wish, put after the instructions of the user turns (the
        transcript's calls and the merge), never in the system prompt; "" changes nothing."""
        if style == common_pb2.STYLE_UNSPECIFIED:
            style = common_pb2.STYLE_MEETING
        language = (language or transcript.language or "en").strip().lower()
        job = Job(
            language,
            style,
            prompts_for(language),
            on_progress or (lambda _f, _m: None),
            Usage(self.engine.name),
            instruction=instruction,
        )
        lines = transcript_lines(transcript)
        if not lines:
            return self._fixed(job, job.prompts.no_speech_title, job.prompts.no_speech_summary), job.usage, []
        said = " ".join(ln.text for ln in lines)
        if len(said.split()) < TOO_SHORT_WORDS:
            # A model given three words writes a whole invented meeting (the 0.5B made "And..."
            # into a login-system review): quote them instead.
            konspekt = self._fixed(
                job, job.prompts.too_short_title, job.prompts.too_short_summary.format(text=said)
            )
            return konspekt, job.usage, [too_short_warning(len(said.split()))]

        job.people = Names.of(transcript.segments).people
        windows = self._windows(lines, job)
        n = len(windows)
        shares = n + (1 if n > 1 else 0)  # one share per window, one for the merge

        def window_call(i: int, window: list[Line]) -> Callable[[], KonspektOut]:
            part = job.prompts.part.format(i=i + 1, n=n) if n > 1 else ""
            text = job.prompts.user.format(
                kind=job.kind, part=part, lines="\n".join(ln.render() for ln in window)
            )
            label = Note("label_window", i=str(i + 1), n=str(n)) if n > 1 else Note("label_summary")
            return lambda: self._read(text, window, label, (i / shares, (i + 1) / shares), job)

        answers = self._all([window_call(i, window) for i, window in enumerate(windows)])
        if n == 1:
            title, summary = answers[0].title, answers[0].summary
        else:
            title, summary = self._merge(answers, job, (n / shares, 1.0))
        konspekt, warnings = assemble(
            list(transcript.segments), answers, title, summary, language, style, job.prompts
        )
        job.warnings += warnings
        job.report(1.0, Note("done"))
        return konspekt, job.usage, job.warnings

    def _read(
        self, text: str, window: list[Line], label: str, span: tuple[float, float], job: Job
    ) -> KonspektOut:
        """One window. A lecture: one call for everything. A meeting: its action items, then its
        decisions, then title, key points and summary, each in a call of its own; the calls
        start with the same system prompt and transcript, so each after the first reads only its
        instruction (the engine's KV/prefix cache), and the model attends to one kind of item at
        a time (the 1.5B asked for the whole konspekt at once wrote few tasks and turned them
        into decisions; asked for decisions with key points, it wrote them as key points)."""
        if job.lecture:
            whole = Call(
                text + with_wish(job.prompts.ask_all.format(kind=job.kind), job.prompts, job.instruction),
                konspekt_schema(job.style),
                self.max_tokens,
                span,
                label,
                first_pass=True,
                reads=True,
            )
            return self._ask(whole, KonspektOut, job)
        lo, hi = span
        step = (hi - lo) / 4
        asks = (
            ("tasks", job.prompts.ask_tasks, ("action_items",)),
            ("decisions", job.prompts.ask_decisions, ("decisions",)),
            ("", job.prompts.ask_rest, ("title", "key_points", "summary")),
        )
        parts: dict[str, Any] = {}
        for n, (what, ask, fields) in enumerate(asks):
            if n == 2:
                self._review(text, window, parts, label, (lo + step * 2, lo + step * 3), job)
                n = 3
            call = Call(
                text + with_wish(ask.format(kind=job.kind), job.prompts, job.instruction),
                konspekt_schema(job.style, only=fields),
                self.max_tokens,
                (lo + step * n, lo + step * (n + 1)),
                Note(f"label_{what}", label=label) if what else label,
                first_pass=True,
                reads=n == 0,
            )
            answer = self._ask(call, KonspektOut if "title" in fields else ItemsOut, job)
            parts.update({name: getattr(answer, name) for name in fields})
        # the lists as they are: each call's answer was held to its limits, and what the second
        # look and the checks added comes after them (validating again would cut it off)
        return KonspektOut.model_construct(**parts)

    def _review(
        self,
        text: str,
        window: list[Line],
        parts: dict[str, Any],
        label: str,
        span: tuple[float, float],
        job: Job,
    ) -> None:
        """The lines that look like a decision or a task (``cues``) and that no item of the
        tasks and decisions calls covers, shown to the model once more after the cached
        transcript; what it finds among them joins those lists. No call when none is left."""
        items = [(p.text, p.time) for p in parts["decisions"]]
        items += [(f"{x.task} {x.owner} {x.due}", x.time) for x in parts["action_items"]]
        left = uncovered(window, items, job.people)
        if not left:
            return
        # the model sees the first lines only (its answer stays short); a plain decision among
        # the others is still kept below (firm_left_out costs no call)
        shown = left[:MAX_CANDIDATES]
        call = Call(
            text + job.prompts.ask_review.format(kind=job.kind, lines="\n".join(ln.render() for ln in shown)),
            konspekt_schema(job.style, only=("decisions", "action_items")),
            self.max_tokens,
            span,
            Note("label_more_lines", label=label, count=str(len(shown))),
        )
        found = self._ask(call, ItemsOut, job)
        # what the answer repeats of the lists is left out here: items of one window are not
        # compared later (two tasks said in one line are two items)
        found.decisions = [d for d in found.decisions if not repeats(d.text, items)]
        found.action_items = [x for x in found.action_items if not repeats(x.task, items)]
        log.info(
            "%s: %d decision(s), %d task(s) among %d more lines",
            label,
            len(found.decisions),
            len(found.action_items),
            len(shown),
        )
        found_items = [(d.text, d.time) for d in found.decisions]
        found_items += [(f"{x.task} {x.owner} {x.due}", x.time) for x in found.action_items]
        for line in firm_left_out(window, [*items, *found_items], job.people):
            found.decisions.append(PointOut(text=line.text, time=line.label))
            job.warnings.append(item_note("decision", line.text, Note("left_out_at", at=line.label)))
        parts["decisions"] = [*parts["decisions"], *found.decisions]
        parts["action_items"] = [*parts["action_items"], *found.action_items]

    def plan_windows(
        self, transcript: common_pb2.Transcript, style: int = common_pb2.STYLE_MEETING, language: str = ""
    ) -> list[list[Line]]:
        """The transcript lines in windows that each fit the context with the prompt and answer."""
        language = (language or transcript.language or "en").strip().lower()
        job = Job(language, style, prompts_for(language), lambda _f, _m: None, Usage(self.engine.name))
        return self._windows(transcript_lines(transcript), job)

    def _windows(self, lines: list[Line], job: Job) -> list[list[Line]]:
        budget = self._window_budget(job)
        overlap = min(budget // OVERLAP_SHARE, OVERLAP_MAX)
        windows = split_windows(lines, self.engine.count_tokens, budget, overlap)
        if len(windows) > 1:
            log.info("transcript split into %d windows of <= %d tokens", len(windows), budget)
        return windows

    def _window_budget(self, job: Job) -> int:
        prompts = job.prompts
        frame = self.engine.count_tokens(job.system) + self.engine.count_tokens(
            prompts.user.format(kind=job.kind, part=prompts.part.format(i=99, n=99), lines="")
            + with_wish("", prompts, job.instruction)
            + prompts.retry.format(error="x" * 200)
        )
        budget = self.engine.context_size - self.max_tokens - frame - TEMPLATE_OVERHEAD - RETRY_RESERVE
        if budget < 64:
            raise FailedPrecondition(
                f"the model's context ({self.engine.context_size} tokens) leaves no room for the "
                f"transcript with max_tokens {self.max_tokens}"
            )
        return min(budget, self.window_tokens) if self.window_tokens else budget

    def _ask(self, call: Call, model: type[M], job: Job) -> M:
        """One model call, validated; retried once with the error appended to the prompt."""
        lo, hi = call.span
        error = ""
        for attempt in range(2):
            note = "_retry" if attempt else ""
            job.report(lo, Note(f"call_reading{note}", label=call.label))
            retry = job.prompts.retry.format(error=error) if attempt else ""
            messages = [
                {"role": "system", "content": call.system or job.system},
                {"role": "user", "content": call.user + retry},
            ]

            def on_token(n: int, note: str = note) -> None:
                at = lo + (hi - lo) * min(n / call.max_tokens, 0.99)
                job.report(at, Note(f"call_writing{note}", label=call.label))

            done = self.engine.complete_json(messages, call.schema, call.max_tokens, on_token)
            job.add(done, call.first_pass and not attempt, call.reads and not attempt)
            log.info(
                "%s: %d prompt + %d answer tokens in %.1f s (%s)",
                call.label,
                done.prompt_tokens,
                done.completion_tokens,
                done.seconds,
                done.finish_reason,
            )
            log.debug("%s: answer %s", call.label, done.text)
            try:
                return parse_answer(done.text, model)
            except ValueError as exc:
                error = str(exc)
                if done.finish_reason == "length":
                    error = (
                        f"the answer was cut off at {call.max_tokens} tokens: write fewer and shorter items"
                    )
                log.warning("%s: answer rejected (attempt %d): %s", call.label, attempt + 1, error)
                if done.finish_reason == "length":
                    # complete items of a cut-off answer are kept (a second try costs as much)
                    salvaged = salvage_answer(done.text, model)
                    if salvaged is not None:
                        job.warnings.append(cut_off_warning(call.label, call.max_tokens))
                        return salvaged
        raise FailedPrecondition(f"the model's answer could not be turned into a konspekt: {error}")

    def _merge(self, answers: list[KonspektOut], job: Job, span: tuple[float, float]) -> tuple[str, str]:
        """Title and summary of the whole from the window answers: one call if they all fit the
        context; otherwise consecutive groups that fit are merged first and their results merged
        again (recursively), so every window's summary reaches the final one."""
        prompts = job.prompts
        system = prompts.merge_system.format(kind=job.kind)
        parts = [(a.title, a.summary) for a in answers]
        lo, hi = span
        level = 1
        while True:
            groups = self._merge_groups(parts, system, prompts, with_wish("", prompts, job.instruction))
            if groups is None:
                job.warnings.append(Note("windows_joined"))
                return parts[0][0], " ".join(summary for _, summary in parts)
            last = len(groups) == 1
            # this round gets half of what is left of the span, the last round all of it
            top = hi if last else lo + (hi - lo) / 2
            calls = sum(1 for g in groups if len(g) > 1)
            step = (top - lo) / calls
            merged: list[tuple[str, str]] = []
            n = 0  # merge calls made in this round
            for group in groups:
                if len(group) == 1:
                    merged.append(group[0])
                    continue
                label = (
                    Note("label_merging")
                    if last
                    else Note("label_merging_round", round=str(level), group=str(n + 1), groups=str(calls))
                )
                call = Call(
                    with_wish(
                        prompts.merge_user.format(parts=self._render_parts(group, prompts)),
                        prompts,
                        job.instruction,
                    ),
                    title_summary_schema(),
                    MERGE_MAX_TOKENS,
                    (lo + step * n, lo + step * (n + 1)),
                    label,
                    system=system,
                )
                out = self._ask(call, TitleSummaryOut, job)
                merged.append((out.title, out.summary))
                n += 1
            if last:
                return merged[0]
            log.info("merge round %d: %d parts -> %d", level, len(parts), len(merged))
            parts, lo, level = merged, top, level + 1

    @staticmethod
    def _render_parts(parts: Sequence[tuple[str, str]], prompts: Prompts) -> str:
        return "\n".join(
            prompts.merge_part.format(i=i + 1, title=title.rstrip("."), summary=summary)
            for i, (title, summary) in enumerate(parts)
        )

    def _merge_groups(
        self, parts: list[tuple[str, str]], system: str, prompts: Prompts, wish: str = ""
    ) -> list[list[tuple[str, str]]] | None:
        """Consecutive parts in groups whose merge call fits the context; None if no two parts
        fit together (the model cannot merge them)."""
        frame = (
            self.engine.count_tokens(system)
            + self.engine.count_tokens(
                prompts.merge_user.format(parts="") + wish + prompts.retry.format(error="x" * 200)
            )
            + TEMPLATE_OVERHEAD
            + MERGE_MAX_TOKENS
        )
        budget = self.engine.context_size - frame
        groups: list[list[tuple[str, str]]] = []
        used = 0
        for part in parts:
            cost = self.engine.count_tokens(self._render_parts([part], prompts).replace("1", "99", 1)) + 1
            if groups and used + cost <= budget:
                groups[-1].append(part)
                used += cost
            else:
                groups.append([part])
                used = cost
        if len(groups) > 1 and all(len(g) == 1 for g in groups):
            return None
        return groups

    @staticmethod
    def _fixed(job: Job, title: str, summary: str) -> common_pb2.Konspekt:
        """A konspekt the model is not asked for (no speech, a few words)."""
        return common_pb2.Konspekt(
            language=job.language if job.language == "ru" else "en",
            title=title,
            summary=summary,
            style=job.style,  # type: ignore[arg-type]
        )
