"""Errors a stage raises; the servicer translates them to gRPC status codes in one place
(``konspekt.server.rpc``), with a google.rpc ``ErrorInfo`` detail (domain ``konspekt.v1``)
that carries a machine-readable ``reason`` (``REASONS``) next to the message for people, and,
when the message is a ``konspekt.notices.Note``, its code and args in the metadata (``code``
plus one entry per arg), so a client can say it in its own language. Clients read the reason
with ``reason_of`` and decide on it, never on the message text."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from konspekt.notices import Note

#: ErrorInfo.domain of every konspekt error.
DOMAIN = "konspekt.v1"
#: Trailing metadata key of the google.rpc.Status (gRPC's "rich error model").
STATUS_DETAILS_KEY = "grpc-status-details-bin"

#: Every ErrorInfo.reason a stage sends, with its status code and meaning.
REASONS: dict[str, str] = {
    "BUSY": "UNAVAILABLE: every worker and queue place of the stage is taken; retry later (not a failure)",
    "LOADING": "UNAVAILABLE: the stage is still loading its model; retry shortly (not a failure)",
    "DRAINING": "UNAVAILABLE: the stage is shutting down; retry shortly, perhaps on another replica",
    "UNAVAILABLE": "UNAVAILABLE: a dependency (object store, model server) failed; retry with backoff",
    "INVALID_REQUEST": "INVALID_ARGUMENT: the request is malformed (unset input, empty key, bad JSON, ...)",
    "ENUM_OUT_OF_RANGE": "INVALID_ARGUMENT: an enum field holds a number the enum does not define",
    "NO_AUDIO_TRACK": "INVALID_ARGUMENT: the media file has no audio track",
    "INVALID_MEDIA": "INVALID_ARGUMENT: the file is empty, not readable media, or its audio cannot be read",
    "MEDIA_TOO_LONG": "INVALID_ARGUMENT: the recording is longer than the stage's limit",
    "REFERENCES_OTHER_FILES": "INVALID_ARGUMENT: a playlist or a file that points at other files or URLs",
    "UNSUPPORTED_LANGUAGE": "INVALID_ARGUMENT: the language is not one the model knows",
    "NOT_FOUND": "NOT_FOUND: an object (or, to write, a bucket) does not exist",
    "NO_OBJECT_STORE": "FAILED_PRECONDITION: an ObjectRef was given but the stage has no object store",
    "FAILED_PRECONDITION": "FAILED_PRECONDITION: the work ran but gave no valid result (the model's answer)",
    "TOO_LARGE": "RESOURCE_EXHAUSTED: the answer would not fit in one message",
    "CONFLICT": "ABORTED: a conditional write lost to another writer",
    "CANCELLED": "CANCELLED: the caller cancelled or its deadline passed; the work stopped",
    "UNAUTHENTICATED": "UNAUTHENTICATED: no valid client token",
    "PERMISSION_DENIED": "PERMISSION_DENIED: an ObjectRef outside the client's bucket or prefix",
    "INTERNAL": "INTERNAL: a bug in the stage; see its log",
}


class StageError(Exception):
    """An error with a gRPC status code, a message meant for people (a Note or plain text) and
    a ``reason`` for programs (``REASONS``; each class has its default)."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: str = "INTERNAL"

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason

    def error_info(self) -> error_details_pb2.ErrorInfo:
        return error_info(self.reason, self.message)


def error_info(reason: str, message: str) -> error_details_pb2.ErrorInfo:
    """The ErrorInfo of an error: ``reason``, and the note's code and args if ``message`` is one."""
    metadata = {"code": message.code, **message.args} if isinstance(message, Note) else {}
    return error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata)


def abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str, reason: str) -> None:
    """End the call with ``code`` and ``message``, and an ErrorInfo with ``reason`` (raises)."""
    detail = any_pb2.Any()
    detail.Pack(error_info(reason, message))
    status = status_pb2.Status(code=code.value[0], message=str(message), details=[detail])
    context.abort_with_status(rpc_status.to_status(status))


def details_of(exc: Any) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo of a failed call (a grpc.RpcError / AioRpcError), None if it has none."""
    try:
        metadata: Iterable[tuple[str, Any]] = exc.trailing_metadata() or ()
    except Exception:  # noqa: BLE001 - not a call, or no metadata
        return None
    for key, value in metadata:
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                return info
    return None


def reason_of(exc: Any) -> str:
    """The ErrorInfo reason of a failed call ("" when it has none: not a konspekt stage)."""
    info = details_of(exc)
    return info.reason if info is not None and info.domain == DOMAIN else ""


class InvalidInput(StageError):
    """The caller's data cannot be processed (empty, corrupt, no audio track...)."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_REQUEST"


class NotFound(StageError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"


class Unavailable(StageError):
    """A dependency (object store, model server) is down; retrying later may work."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = "UNAVAILABLE"


class FailedPrecondition(StageError):
    """The work ran but could not produce a valid result (e.g. the model's answer)."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class Conflict(StageError):
    """A conditional write lost to another writer (the object changed since it was read)."""

    code = grpc.StatusCode.ABORTED
    reason = "CONFLICT"


class ResourceExhausted(StageError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "TOO_LARGE"


class Cancelled(StageError):
    """The caller cancelled the RPC (or its deadline passed) and the work was stopped."""

    code = grpc.StatusCode.CANCELLED
    reason = "CANCELLED"
