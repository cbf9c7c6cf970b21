"""One way for a server interceptor to wrap the handlers of konspekt's own services (the
admission control in ``server`` and the caller check in ``access``): health and reflection
pass untouched, unary-unary and unary-stream methods get the interceptor's wrappers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

Wrap = Callable[[str, Any], Any]


def wrap_handler(
    continuation: Callable[[Any], Any],
    details: grpc.HandlerCallDetails,
    prefixes: tuple[str, ...],
    unary: Wrap,
    stream: Wrap,
) -> Any:
    """The handler of ``details``, its behaviour wrapped by ``unary(method, behaviour)`` or
    ``stream(method, behaviour)`` when the method belongs to one of ``prefixes``."""
    handler = continuation(details)
    if handler is None or not str(details.method).startswith(prefixes):
        return handler
    method = str(details.method)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            stream(method, handler.unary_stream),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            unary(method, handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return handler  # no client-streaming methods: nothing else to wrap
