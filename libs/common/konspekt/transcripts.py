"""Transcript and konspekt JSON: the proto messages with their field names, as stored."""

from __future__ import annotations

from typing import TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from konspekt.errors import InvalidInput
from konspekt.v1 import common_pb2

M = TypeVar("M", bound=Message)


def to_json(message: Message) -> bytes:
    return json_format.MessageToJson(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
        ensure_ascii=False,
        indent=1,
    ).encode("utf-8")


def from_json(data: bytes | str, message: M) -> M:
    try:
        json_format.Parse(data, message, ignore_unknown_fields=True)
    except (json_format.ParseError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"not a valid {message.DESCRIPTOR.name} JSON document: {exc}") from exc
    return message


def transcript_from_json(data: bytes | str) -> common_pb2.Transcript:
    return from_json(data, common_pb2.Transcript())


def konspekt_from_json(data: bytes | str) -> common_pb2.Konspekt:
    return from_json(data, common_pb2.Konspekt())
