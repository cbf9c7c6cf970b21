"""konspekt.notices: a note is its English text, with its code and args, through the proto."""

from __future__ import annotations

import copy
import pickle
import string

import pytest

from konspekt.notices import TEMPLATES, Note, from_proto, notices, to_proto
from konspekt.v1 import common_pb2


def test_a_note_is_its_english_text_and_survives_the_wire() -> None:
    where = Note("placed_at", problem=Note("not_near", time="01:00"), at="02:00")
    note = Note("key_point_dropped", text="it's", note=where)
    assert note == (
        'key point "it\'s" dropped: nothing near 01:00 says it; placed at 02:00, where it was said'
    )
    sent = common_pb2.Notice.FromString(to_proto(note).SerializeToString())
    assert sent.code == "key_point_dropped" and dict(sent.args) == {"text": "it's"}
    assert sent.parts["note"].parts["problem"].args["time"] == "01:00"
    back = from_proto(sent)
    assert back == note and back.code == note.code and back.parts["note"].parts["problem"].code == "not_near"
    for copied in (pickle.loads(pickle.dumps(note)), copy.deepcopy(note)):
        assert copied == note and copied.code == "key_point_dropped"
        assert copied.parts["note"].code == "placed_at"


def test_plain_text_becomes_a_notice_without_a_code() -> None:
    assert notices(["free text"]) == [common_pb2.Notice(text="free text")]


def test_an_unknown_code_is_refused_and_every_template_is_well_formed() -> None:
    with pytest.raises(KeyError):
        Note("no_such_code")
    for code, template in TEMPLATES.items():
        assert code.isidentifier() and code == code.lower(), code
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
        assert all(f.isidentifier() for f in fields), (code, fields)
