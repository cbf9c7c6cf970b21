"""Notes for people as data (konspekt.v1.Notice): a stable code, the values it is made of, and
the English sentence. The one registry of codes is ``TEMPLATES``: every note a stage or the
gateway writes (warnings, progress phases, failure reasons) is made here from its code, so the
English text comes from one template and a client translates the code with its own table (the
gateway: ``konspekt_gateway.i18n``; its test checks that every code here has en and ru text).

A ``Note`` is a ``str`` (its English text), so code that joins, compares or logs warnings keeps
working; its ``code``, ``args`` and ``parts`` (arguments that are notes themselves, e.g. why an
item was dropped) travel as ``common_pb2.Notice`` (``to_proto``/``from_proto``).

Templates use ``str.format`` fields with the argument names; ``{x!r}`` quotes a value as Python
does (the English sentences always did). Arguments are text: numbers come formatted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from konspekt.v1 import common_pb2

#: Every code with its English template, by who writes it.
TEMPLATES: dict[str, str] = {
    # -- audio stage: progress, warnings, errors ---------------------------------------------
    "audio_reading": "reading the file",
    "audio_decoding": "decoding",
    "audio_storing": "storing the audio",
    "audio_far_more_than_size": (
        "the file holds far more audio than a file of its size can; only the first {decoded} s were decoded"
    ),
    "audio_more_than_claimed": (
        "the file holds more audio than the {claimed} s it claims; only the first {decoded} s were decoded"
    ),
    "audio_longer_than_claimed": "the file holds {decoded} s of audio, more than the {claimed} s it claims",
    "audio_truncated": (
        "the file seems truncated: only {decoded} s of the {claimed} s it claims could be decoded"
    ),
    "file_empty": "the file is empty",
    "not_media": "this is not a video or audio file that can be read ({detail})",
    "format_not_accepted": (
        "this is not a video or audio file that can be read (format {format} is not accepted)"
    ),
    "no_audio_track": "the file has no audio track",
    "audio_not_decoded": "the audio could not be decoded ({detail})",
    "no_audio_decoded": "no audio could be decoded from the file",
    "too_long": "the recording is {length} ({seconds} s) long, over the limit of {limit} ({limit_seconds} s)",
    "too_long_at_least": (
        "the recording is at least {length} ({seconds} s) long, over the limit of {limit} ({limit_seconds} s)"
    ),
    "playlist": (
        "playlists and files that point at other files or URLs are not accepted ({detail}); "
        "upload the recording itself"
    ),
    "store_read_failed": "could not read the file from the object store ({detail})",
    # -- ASR stage ---------------------------------------------------------------------------
    "asr_recognising": "recognising",
    "asr_position": "{done} s of {total} s",
    "done": "done",
    "no_speech": "no speech was found in the recording",
    "audio_empty_bytes": "the audio file is empty (0 bytes)",
    "audio_no_samples": "the file has no audio samples (empty or truncated audio track)",
    "audio_empty_samples": "the audio is empty (no samples)",
    "cannot_decode": "cannot decode the audio: not a media file ffmpeg can read, or it is corrupt ({detail})",
    # -- summarizer: progress (a label names one model call) ---------------------------------
    "label_window": "window {i}/{n}",
    "label_summary": "summary",
    "label_tasks": "{label}: tasks",
    "label_decisions": "{label}: decisions",
    "label_more_lines": "{label}: {count} more lines",
    "label_merging": "merging windows",
    "label_merging_round": "merging windows (round {round}, group {group}/{groups})",
    "call_reading": "{label}: reading the transcript",
    "call_reading_retry": "{label}: reading the transcript (retry)",
    "call_writing": "{label}: writing",
    "call_writing_retry": "{label}: writing (retry)",
    # -- summarizer: warnings on the konspekt ------------------------------------------------
    "transcript_too_short": "the transcript has only {words} word(s), too few to summarize: quoted instead",
    "answer_cut_off": "{label}: the answer was cut off at {tokens} tokens; its complete items were kept",
    "windows_joined": "window summaries too long to merge with the model; joined instead",
    "summary_sentence_dropped": "summary sentence {text!r} dropped: {names} not said",
    "title_dropped": "title {text!r} dropped: {names} not said",
    # an item and what was done to it: {note} is a note of its own (the codes below)
    "key_point_dropped": "key point {text!r} dropped: {note}",
    "key_point_note": "key point {text!r}: {note}",
    "decision_dropped": "decision {text!r} dropped: {note}",
    "decision_note": "decision {text!r}: {note}",
    "action_item_dropped": "action item {text!r} dropped: {note}",
    "action_item_note": "action item {text!r}: {note}",
    # where the item's words are (evidence)
    "transcript_empty": "the transcript is empty",
    "not_near": "nothing near {time} says it",
    "not_a_time": "{time} is not a time in the transcript",
    "no_usable_time": "no usable time ({time!r})",
    "placed_at": "{problem}; placed at {at}, where it was said",
    "words_nowhere": "{problem}, and its words are nowhere in the transcript",
    # decisions
    "question_not_decision": "a question is not a decision",
    "agrees_only": "it only agrees and says nothing of what",
    "not_decided": "it says the matter is not decided",
    "left_out_at": "the model left it out; taken word for word at {at}",
    # owners and dues of action items
    "owner_not_person": "owner {owner!r} is not a person named in the transcript; dropped",
    "owner_unconfirmed": "owner {owner!r} is not said in the transcript as a name; kept, unconfirmed",
    "owner_replaced_named": "owner {owner!r} replaced by {person!r}, named in its line",
    "owner_replaced_asked": "owner {owner!r} replaced by {person!r}, who was asked at {at}",
    "due_replaced": "due {due!r} replaced by {said!r}, said at {at}",
    "due_not_near_said": "due {due!r} is not said near the item; {said!r} is (at {at})",
    "due_not_near_dropped": "due {due!r} is not said near the item; dropped",
    # an action item no one is to do: listed as another kind, and why
    "task_to_decision": "no one is to do it; {reason}; listed as a decision",
    "task_to_key_point": "no one is to do it; {reason}; listed as a key point",
    "past_to_key_point": "it tells what was already done; listed as a key point",
    "line_states_decision": "its line states a decision",
    "line_states_decision_unnamed": "its line states a decision and does not name {owner}",
    "agrees_to_proposal": "it only agrees to the proposal before it, which is listed as a decision",
    "proposal_taken_up": "a proposal the next line agrees to: the group's decision",
    "proposal_taken_up_unnamed": "a proposal the next line agrees to, without {owner}: a decision",
    "no_due_no_one": "no due date and no one asked or promising",
    # items the checks add from the transcript
    "exchange_left_out": "the model left it out; taken word for word from {at}",
    "exchange_for": "replaced by the request and answer at {at}, which say its deadline {due!r}",
    "figure_left_out": "a figure said at {at} that no item has; taken word for word",
    # -- gateway: a job's progress, failure reasons and notes ({stage}: a stage's reason name,
    #    e.g. "speech recognition") ---------------------------------------------------------
    "job_reading_media": "reading the media",
    "job_recognising": "recognising speech",
    "job_writing": "writing the konspekt",
    "job_rendering": "rendering the documents",
    "job_resuming": "waiting to resume after a restart",
    "waiting_slot": "waiting for a free {stage} slot",
    "waiting_start": "waiting for the {stage} service to start",
    "waiting_store": "waiting for the object store",
    "retrying": "{reason}; retrying (try {attempt} of {attempts})",
    "stage_timeout": "the {stage} stage did not finish within {seconds} s",
    "stage_unavailable": "the {stage} service is unavailable",
    "stage_unavailable_detail": "the {stage} service is unavailable: {detail}",
    "stage_overloaded": "the {stage} service is overloaded",
    "stage_overloaded_detail": "the {stage} service is overloaded: {detail}",
    "stage_failed": "the {stage} service failed",
    "stage_failed_detail": "the {stage} service failed: {detail}",
    "stage_rejected": "the {stage} stage rejected the file",
    "tried_times": "{reason} (tried {tries} times)",
    "renderer_stored_nothing": "the renderer stored no files",
    "konspekt_not_stored": "the konspekt could not be stored: {detail}",
    "gateway_internal": "internal error in the gateway; see its log",
    "callback_not_sent": "the callback was not sent: {reason}",
    "callback_blocked": "{host} resolves to {address}, a {kind} address",
    "callback_unresolved": "{host} could not be resolved ({detail})",
    "callback_bad_url": "the callback was not sent: its URL is not a plain http(s) URL",
    "callback_redirect": (
        "the callback was not delivered: the receiver answered HTTP {status}, a redirect, "
        "which is not followed"
    ),
    "callback_failed": "the callback was not delivered: {detail} (tried {tries} times)",
}


class Note(str):
    """A note: its English text (the ``str``), its ``code``, ``args`` (text) and ``parts``
    (arguments that are notes). ``Note("owner_unconfirmed", owner="Ann")``; an unknown code
    is a KeyError (every code is in ``TEMPLATES``)."""

    code: str
    args: dict[str, str]
    parts: dict[str, Note]

    def __new__(cls, code: str, /, **values: str) -> Note:
        text = TEMPLATES[code].format(**values)
        return cls.made(code, text, values)

    @classmethod
    def made(cls, code: str, text: str, values: Mapping[str, str]) -> Note:
        """A note with the text given (``from_proto``: a code this side may not know)."""
        note = str.__new__(cls, text)
        note.code = code
        note.args = {k: str(v) for k, v in values.items() if not isinstance(v, Note)}
        note.parts = {k: v for k, v in values.items() if isinstance(v, Note)}
        return note

    def __reduce__(self) -> Any:  # pickles and copies keep the code
        return (_rebuild, (self.code, str(self), {**self.args, **self.parts}))


def _rebuild(code: str, text: str, values: Mapping[str, str]) -> Note:
    return Note.made(code, text, values)


def note(code: str, /, **values: str) -> Note:
    """The note ``code`` with ``values`` (``str`` or ``Note``)."""
    return Note(code, **values)


def to_proto(text: str) -> common_pb2.Notice:
    """A note as a Notice; a plain string (no code) as a Notice with only its text."""
    if not isinstance(text, Note):
        return common_pb2.Notice(text=str(text))
    return common_pb2.Notice(
        code=text.code,
        args=text.args,
        text=str(text),
        parts={k: to_proto(v) for k, v in text.parts.items()},
    )


def from_proto(notice: common_pb2.Notice) -> Note:
    """A Notice as a Note (its text as sent, even for a code this side does not know)."""
    values: dict[str, str] = dict(notice.args)
    values.update({k: from_proto(v) for k, v in notice.parts.items()})
    return Note.made(notice.code, notice.text, values)


def notices(texts: list[str] | tuple[str, ...]) -> list[common_pb2.Notice]:
    """The Notices of warnings (one each, in order)."""
    return [to_proto(t) for t in texts]
