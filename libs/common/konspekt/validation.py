"""Checks every stage applies to every request before its servicer sees it (``konspekt.server.rpc``).

proto3 enums are open: a client may send any number in an enum field (``style=7``), and the
message keeps it. Code that then asks the enum for its name fails with ValueError, which would be
an INTERNAL error (and a retry by the gateway). ``check_enums`` refuses such a request up front
with INVALID_ARGUMENT naming the field, the number and the values allowed.
"""

from __future__ import annotations

import functools

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from konspekt.errors import InvalidInput


def check_enums(message: Message) -> None:
    """InvalidInput if an enum field anywhere in ``message`` (nested messages, repeated fields and
    map values included) holds a number its enum does not define."""
    _check(message, "")


def _check(message: Message, prefix: str) -> None:
    if not _has_enums(message.DESCRIPTOR):
        return
    for field, value in message.ListFields():
        path = prefix + field.name
        entry = field.message_type
        if field.is_repeated and entry is not None and entry.GetOptions().map_entry:
            value_field = entry.fields_by_name["value"]
            for key, item in value.items():
                _check_value(value_field, item, f"{path}[{key!r}]")
        elif field.is_repeated:
            for i, item in enumerate(value):
                _check_value(field, item, f"{path}[{i}]")
        else:
            _check_value(field, value, path)


def _check_value(field: FieldDescriptor, value: object, path: str) -> None:
    enum = field.enum_type
    if enum is not None:
        if value not in enum.values_by_number:
            message = f"{path}: {value} is not a {enum.full_name} value; {_allowed(enum)}"
            raise InvalidInput(message, reason="ENUM_OUT_OF_RANGE")
    elif isinstance(value, Message):
        _check(value, path + ".")


def _allowed(enum: EnumDescriptor) -> str:
    values = ", ".join(f"{v.name} ({v.number})" for v in enum.values)
    return f"expected one of {values}"


@functools.cache
def _has_enums(descriptor: Descriptor) -> bool:
    """Whether a message of this type can hold an enum anywhere (so big messages without any,
    e.g. a Transcript of thousands of segments, are not walked)."""
    seen: set[str] = set()
    pending = [descriptor]
    while pending:
        current = pending.pop()
        if current.full_name in seen:
            continue
        seen.add(current.full_name)
        for field in current.fields:
            if field.enum_type is not None:
                return True
            if field.message_type is not None:
                pending.append(field.message_type)
    return False
