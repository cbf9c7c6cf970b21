"""Errors a stage raises; the servicer translates them to gRPC status codes in one place."""

from __future__ import annotations

import grpc


class StageError(Exception):
    """An error with a gRPC status code and a message meant for people."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(StageError):
    """The caller's data cannot be processed (empty, corrupt, no audio track...)."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(StageError):
    code = grpc.StatusCode.NOT_FOUND


class Unavailable(StageError):
    """A dependency (object store, model server) is down; retrying later may work."""

    code = grpc.StatusCode.UNAVAILABLE


class FailedPrecondition(StageError):
    """The work ran but could not produce a valid result (e.g. the model's answer)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Conflict(StageError):
    """A conditional write lost to another writer (the object changed since it was read)."""

    code = grpc.StatusCode.ABORTED


class ResourceExhausted(StageError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Cancelled(StageError):
    """The caller cancelled the RPC (or its deadline passed) and the work was stopped."""

    code = grpc.StatusCode.CANCELLED
