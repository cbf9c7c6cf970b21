"""Client channels to the stages: retry policy and limits set once, in the service config."""

from __future__ import annotations

import collections
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio

from konspekt.access import AUTHORIZATION
from konspekt.logs import JOB_ID_METADATA


# gRPC retries a call transparently while the server is unreachable or restarting
# (UNAVAILABLE) and no response message has arrived yet; deadlines bound the whole call.
def service_config(wait_for_ready: bool = False) -> str:
    """The stages' method config. ``wait_for_ready``: a call made while the stage is down (being
    restarted) waits, within its deadline, until the stage accepts connections again, instead of
    failing at once; the gateway wants that, a CLI wants to be told at once."""
    method: dict[str, Any] = {
        "name": [
            {"service": "konspekt.v1.AudioService"},
            {"service": "konspekt.v1.AsrService"},
            {"service": "konspekt.v1.SummarizerService"},
            {"service": "konspekt.v1.RendererService"},
        ],
        "retryPolicy": {
            "maxAttempts": 5,
            "initialBackoff": "0.5s",
            "maxBackoff": "8s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE"],
        },
    }
    if wait_for_ready:
        method["waitForReady"] = True
    return json.dumps({"methodConfig": [method]})


SERVICE_CONFIG = service_config()


def channel_options(max_message_mb: int = 4, wait_for_ready: bool = False) -> list[tuple[str, Any]]:
    limit = max_message_mb * 1024 * 1024
    return [
        ("grpc.service_config", service_config(wait_for_ready)),
        ("grpc.enable_retries", 1),
        ("grpc.max_receive_message_length", limit),
        ("grpc.max_send_message_length", limit),
        # Balance over every address a headless Service name resolves to (one per replica).
        ("grpc.lb_policy_name", "round_robin"),
    ]


def open_channel(target: str, max_message_mb: int = 4, token: str = "") -> grpc.Channel:
    """A channel to a stage; with ``token``, every call on it carries that client token."""
    channel = grpc.insecure_channel(target, options=channel_options(max_message_mb))
    return grpc.intercept_channel(channel, _TokenInterceptor(token)) if token else channel


def open_aio_channel(target: str, max_message_mb: int = 4, wait_for_ready: bool = False) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(target, options=channel_options(max_message_mb, wait_for_ready))


def token_metadata(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata that carries a client's token (``authorization: Bearer <token>``), which
    every stage call needs (konspekt.access); empty token: none (a stage that allows calls
    without one)."""
    return ((AUTHORIZATION, f"Bearer {token}"),) if token else ()


class _CallDetails(
    collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
    ),
    grpc.ClientCallDetails,
):
    pass


if TYPE_CHECKING:  # generic only in grpc-stubs
    _Unary = grpc.UnaryUnaryClientInterceptor[Any, Any]
    _Stream = grpc.UnaryStreamClientInterceptor[Any, Any]
else:
    _Unary = grpc.UnaryUnaryClientInterceptor
    _Stream = grpc.UnaryStreamClientInterceptor


class _TokenInterceptor(_Unary, _Stream):
    """Adds ``authorization: Bearer <token>`` to every call of a (synchronous) channel."""

    def __init__(self, token: str) -> None:
        self.metadata = token_metadata(token)

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        return _CallDetails(
            details.method,
            details.timeout,
            (*(details.metadata or ()), *self.metadata),
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(
        self, continuation: Callable[..., Any], client_call_details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        return continuation(self._details(client_call_details), request)


def job_metadata(job_id: str, token: str = "") -> tuple[tuple[str, str], ...]:
    """Call metadata that carries the job id, so every service logs it, and the caller's token."""
    return (((JOB_ID_METADATA, job_id),) if job_id else ()) + token_metadata(token)
