"""The model's answer: the JSON schema it is constrained to (every string and array bounded),
the pydantic models it is validated with, and the salvage of an answer cut off at the token
limit."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from konspekt.v1 import common_pb2
from konspekt_summarizer.prompts import LECTURE_ORDER, MEETING_ORDER

TITLE_MAX = 120
SUMMARY_MAX = 1200
TEXT_MAX = 300
NAME_MAX = 80
KEY_POINTS_MAX = 8
DECISIONS_MAX = 8
ACTION_ITEMS_MAX = 10
TIME_PATTERN = r"^[0-9]{1,2}:[0-9]{2}(:[0-9]{2})?$"
#: Tokens kept free for the retry note appended to the prompt.
RETRY_RESERVE = 96
MERGE_MAX_TOKENS = 500

# -- schema and validation ----------------------------------------------------------------------


def _string(max_length: int, min_length: int = 0) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": "string", "maxLength": max_length}
    if min_length:
        spec["minLength"] = min_length
    return spec


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


_TIME = {"type": "string", "pattern": TIME_PATTERN}
#: No colon: the 1.5B wrote the line label ("01:02") into "due" instead of the deadline it had
#: just read; with a colon impossible it writes the deadline. (No quote or backslash either: a
#: pattern replaces the grammar's own string rule.)
DUE_PATTERN = r'^[^:"\\\n\r\t]{0,' + str(NAME_MAX) + "}$"
_DUE = {"type": "string", "maxLength": NAME_MAX, "pattern": DUE_PATTERN}


def konspekt_schema(style: int = common_pb2.STYLE_MEETING, only: Sequence[str] = ()) -> dict[str, Any]:
    """Every string and array is bounded: small models otherwise repeat an item until max_tokens.

    Field order is style-dependent: what matters most comes first (action items and decisions
    for a meeting, key points for a lecture); the model writes the fields in schema order.
    ``only``: just these fields (a meeting's tasks are asked for in a call of their own).
    """
    # "time" last: with "time" first the 1.5B wrote the owner into the task and mixed action
    # items into decisions. (Last, it sometimes writes a line label into "due": clean_field drops it.)
    point = _object({"text": _string(TEXT_MAX, 1), "time": _TIME})
    action = _object({"task": _string(TEXT_MAX, 1), "owner": _string(NAME_MAX), "due": _DUE, "time": _TIME})
    fields = {
        "title": _string(TITLE_MAX, 1),
        "summary": _string(SUMMARY_MAX, 1),
        "key_points": {"type": "array", "items": point, "maxItems": KEY_POINTS_MAX},
        "decisions": {"type": "array", "items": point, "maxItems": DECISIONS_MAX},
        "action_items": {"type": "array", "items": action, "maxItems": ACTION_ITEMS_MAX},
    }
    order = LECTURE_ORDER if style == common_pb2.STYLE_LECTURE else MEETING_ORDER
    return _object({name: fields[name] for name in order if not only or name in only})


def title_summary_schema() -> dict[str, Any]:
    return _object({"title": _string(TITLE_MAX, 1), "summary": _string(SUMMARY_MAX, 1)})


def _clip(value: Any, limit: int) -> Any:
    return value.strip()[:limit] if isinstance(value, str) else value


class _Out(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class PointOut(_Out):
    text: str
    time: str = ""

    @field_validator("text", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        return _clip(v, TEXT_MAX)


class ActionOut(_Out):
    task: str
    owner: str = ""
    due: str = ""
    time: str = ""

    @field_validator("task", mode="before")
    @classmethod
    def _task(cls, v: Any) -> Any:
        return _clip(v, TEXT_MAX)

    @field_validator("owner", "due", mode="before")
    @classmethod
    def _names(cls, v: Any) -> Any:
        return "" if v is None else _clip(v, NAME_MAX)


class TitleSummaryOut(_Out):
    title: str
    summary: str

    @field_validator("title", mode="before")
    @classmethod
    def _title(cls, v: Any) -> Any:
        return _clip(v, TITLE_MAX)

    @field_validator("summary", mode="before")
    @classmethod
    def _summary(cls, v: Any) -> Any:
        return _clip(v, SUMMARY_MAX)

    @field_validator("title", "summary")
    @classmethod
    def _not_empty(cls, v: str) -> str:
        if not v:
            raise ValueError("must not be empty")
        return v


class ItemsOut(_Out):
    key_points: list[PointOut] = []
    decisions: list[PointOut] = []
    action_items: list[ActionOut] = []

    @field_validator("key_points", "decisions", "action_items", mode="before")
    @classmethod
    def _lists(cls, v: Any, info: Any) -> Any:
        limits = {"key_points": KEY_POINTS_MAX, "decisions": DECISIONS_MAX, "action_items": ACTION_ITEMS_MAX}
        return v[: limits[info.field_name]] if isinstance(v, list) else v


class KonspektOut(TitleSummaryOut, ItemsOut):
    pass


M = TypeVar("M", bound=BaseModel)


def parse_answer(text: str, model: type[M]) -> M:
    """JSON text -> validated model; ValueError with a short reason otherwise."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at character {exc.pos})") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'answer'}: {err['msg']}" for err in exc.errors()[:5]
        )
        raise ValueError(f"does not match the schema ({errors})") from exc


def salvage_json(text: str) -> Any:
    """A JSON object cut off mid-way (the token limit) -> its complete parts, closed; None if
    nothing complete is in it. Cuts at the last place (after a value or before a comma) where
    closing the open brackets gives valid JSON."""
    closers: list[str] = []
    in_string = escaped = False
    cuts: list[tuple[int, str]] = []
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            closers.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if not closers:
                return None
            closers.pop()
            cuts.append((i + 1, "".join(reversed(closers))))
        elif ch == ",":
            cuts.append((i, "".join(reversed(closers))))
    for end, close in reversed(cuts):
        try:
            return json.loads(text[:end] + close)
        except json.JSONDecodeError:
            continue
    return None


def salvage_answer(text: str, model: type[M]) -> M | None:
    """The complete items of an answer cut off at the token limit. A missing summary (it is
    written last in a meeting) is made of the first key points and decisions, which are checked
    against the transcript like every item."""
    data = salvage_json(text)
    if not isinstance(data, dict):
        return None
    if issubclass(model, TitleSummaryOut) and not str(data.get("summary") or "").strip():
        said = [
            str(p.get("text", "")).strip().rstrip(".")
            for name in ("key_points", "decisions")
            for p in data.get(name) or []
            if isinstance(p, dict)
        ]
        data["summary"] = ". ".join(t for t in said[:3] if t) + "." if any(said) else ""
    try:
        return model.model_validate(data)
    except ValidationError:
        return None
