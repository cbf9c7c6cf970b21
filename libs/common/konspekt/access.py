"""Who may call a stage, and which objects a call may touch.

Every stage call must carry ``authorization: Bearer <token>`` metadata with the token of a
client the stage knows (``KONSPEKT_<STAGE>_CLIENTS``); a call without one, or with a token no
client has, ends UNAUTHENTICATED before it takes a worker. Each client has an object prefix
(the gateway: ``jobs/``): every ObjectRef in the request (inputs, outputs, the renderer's output
prefix) must name the stage's own bucket and a key under that prefix, written plainly (no ``.``
or ``..`` segments, no empty segment, no backslash or control character), else the call ends
PERMISSION_DENIED. Both checks run in :class:`AccessInterceptor`, before the servicer runs, so
nothing of a refused call reaches the object store.

Health and reflection are not stage services: they stay open (probes, grpcurl).

A stage with no clients refuses to start unless ``KONSPEKT_<STAGE>_ALLOW_UNAUTHENTICATED`` is
true (a stage run alone on a developer's machine); then a call without a token is served as the
client ``anonymous`` with ``KONSPEKT_<STAGE>_UNAUTHENTICATED_PREFIX`` (default ``jobs/``), and a
call with a wrong token is still refused.
"""

from __future__ import annotations

import contextvars
import hmac
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from pydantic import BaseModel, ConfigDict, SecretStr, field_validator, model_validator

from konspekt.errors import abort
from konspekt.interceptors import wrap_handler
from konspekt.v1 import common_pb2

log = logging.getLogger(__name__)

#: The metadata key a client's token travels in (``Bearer <token>``).
AUTHORIZATION = "authorization"
#: Shortest token a client may have (``secrets.token_urlsafe(32)`` gives 43 characters).
MIN_TOKEN_LENGTH = 24
#: The client a call without a token is served as, where a stage allows that.
ANONYMOUS = "anonymous"
#: Prefix the gateway's objects live under (and the expiry rule covers).
GATEWAY_PREFIX = "jobs/"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")
_OBJECT_REF = common_pb2.ObjectRef.DESCRIPTOR.full_name

#: The client of the call being served (for logs and for code that wants to know).
caller_var: contextvars.ContextVar[str] = contextvars.ContextVar("konspekt_caller", default="")


def plain_key_problem(key: str) -> str | None:
    """Why ``key`` is not a plain object key (None: it is). Some S3 servers (SeaweedFS) resolve
    ``a/../b`` like a file path, so such keys could leave a prefix they seem to be under."""
    if key.startswith("/"):
        return "starts with '/'"
    if _CONTROL.search(key):
        return "holds a backslash or a control character"
    parts = key.split("/")
    if any(part in {".", ".."} for part in parts):
        return "has a '.' or '..' segment"
    if any(part == "" for part in parts[:-1]):
        return "has an empty segment ('//')"
    return None


def check_token(token: str) -> str:
    """A client token: long, printable ASCII without spaces, not the examples' placeholder."""
    if len(token) < MIN_TOKEN_LENGTH or not token.isascii() or not token.isprintable() or " " in token:
        raise ValueError(
            f"the token must be at least {MIN_TOKEN_LENGTH} printable ASCII characters without spaces "
            "(e.g. openssl rand -hex 32)"
        )
    if token.startswith("change-me"):
        raise ValueError("the token is still the example's placeholder (openssl rand -hex 32)")
    return token


def check_prefix(prefix: str) -> str:
    """A client's object prefix: a plain key ending with '/', e.g. ``jobs/`` or ``team-a/``."""
    if not prefix.endswith("/"):
        raise ValueError(f"prefix {prefix!r} must end with '/' (e.g. 'jobs/')")
    problem = plain_key_problem(prefix)
    if problem is not None:
        raise ValueError(f"prefix {prefix!r} {problem}")
    return prefix


class StageClient(BaseModel):
    """One client of a stage: its token (inline or in a file, e.g. a mounted Secret) and the
    object prefix it may read and write under."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    token: SecretStr | None = None
    token_file: Path | None = None
    prefix: str

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return check_prefix(value)

    @model_validator(mode="after")
    def _one_token(self) -> StageClient:
        if (self.token is None) == (self.token_file is None):
            raise ValueError("set exactly one of token and token_file")
        if self.token_file is not None:
            try:
                text = self.token_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"cannot read token_file {self.token_file}: {exc.strerror or exc}") from exc
            object.__setattr__(self, "token", SecretStr(text))
        check_token(self.secret)
        return self

    @property
    def secret(self) -> str:
        return self.token.get_secret_value() if self.token is not None else ""


def check_clients(clients: Mapping[str, StageClient]) -> Mapping[str, StageClient]:
    """Names are plain words and no two clients share a token."""
    for name in clients:
        if not _NAME.match(name) or name == ANONYMOUS:
            raise ValueError(
                f"client name {name!r} must be a plain word (letters, digits, '_.-'), not {ANONYMOUS}"
            )
    seen: dict[str, str] = {}
    for name, client in clients.items():
        if client.secret in seen:
            raise ValueError(f"clients {seen[client.secret]} and {name} have the same token")
        seen[client.secret] = name
    return clients


def require_clients(
    clients: Mapping[str, StageClient], allow_unauthenticated: bool, env_prefix: str = "KONSPEKT_<STAGE>_"
) -> None:
    """A stage server needs clients, or to be told that it serves calls without a token
    (checked when a server is built, not in the settings, which engines use alone too)."""
    if not clients and not allow_unauthenticated:
        raise ValueError(
            f"{env_prefix}CLIENTS: no clients configured: set {env_prefix}CLIENTS to a JSON object such "
            'as {"gateway": {"token_file": "/run/secrets/stage-token", "prefix": "jobs/"}}, or '
            f"{env_prefix}ALLOW_UNAUTHENTICATED=true for a stage used alone on a trusted machine"
        )


@dataclass(frozen=True)
class Caller:
    """The client a call is served for."""

    name: str
    prefix: str


class Unauthenticated(Exception):
    pass


class PermissionDenied(Exception):
    pass


@dataclass(frozen=True)
class AccessPolicy:
    """The clients a stage knows and the bucket it serves. ``bucket`` None: the stage has no
    object store (a ref can touch nothing; only its key is checked)."""

    clients: Mapping[str, StageClient]
    allow_unauthenticated: bool = False
    unauthenticated_prefix: str = GATEWAY_PREFIX
    bucket: str | None = None

    def caller(self, metadata: Any) -> Caller:
        """The client whose token the call carries; Unauthenticated if none does."""
        values = [str(value) for key, value in metadata or () if key == AUTHORIZATION]
        if not values:
            if self.allow_unauthenticated:
                return Caller(ANONYMOUS, self.unauthenticated_prefix)
            raise Unauthenticated(
                "this stage needs a client token: send metadata 'authorization: Bearer <token>'"
            )
        scheme, _, token = values[0].strip().partition(" ")
        token = token.strip()
        if len(values) > 1 or scheme.lower() != "bearer" or not token:
            raise Unauthenticated("malformed authorization metadata: expected one 'Bearer <token>'")
        found: Caller | None = None
        for name, client in self.clients.items():  # compare with every one: no timing hint
            if hmac.compare_digest(client.secret.encode(), token.encode()):
                found = Caller(name, client.prefix)
        if found is None:
            raise Unauthenticated("the client token is not valid for this stage")
        return found

    def check_request(self, caller: Caller, request: Message) -> None:
        """PermissionDenied unless every ObjectRef in ``request`` is in this stage's bucket and
        under the caller's prefix (refs with neither bucket nor key are unset: skipped)."""
        for path, ref in object_refs(request):
            if not ref.bucket and not ref.key:
                continue
            if ref.bucket and self.bucket is not None and ref.bucket != self.bucket:
                raise PermissionDenied(f"{path}: bucket {ref.bucket!r} is not this stage's bucket")
            if not ref.key:
                continue  # the servicer refuses it (INVALID_ARGUMENT); nothing is touched
            problem = plain_key_problem(ref.key)
            if problem is not None:
                raise PermissionDenied(f"{path}: key {ref.key!r} {problem}")
            if not ref.key.startswith(caller.prefix):
                raise PermissionDenied(
                    f"{path}: key {ref.key!r} is outside the prefix {caller.prefix!r} of client {caller.name}"
                )


def object_refs(message: Message, path: str = "") -> Iterator[tuple[str, common_pb2.ObjectRef]]:
    """Every ObjectRef set anywhere in ``message``, with its field path."""
    if message.DESCRIPTOR.full_name == _OBJECT_REF:
        yield path.rstrip(".") or "ref", message  # type: ignore[misc]
        return
    if not _has_refs(message.DESCRIPTOR):
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        name = path + field.name
        if field.is_repeated and field.message_type.GetOptions().map_entry:
            for key, item in value.items():
                if isinstance(item, Message):
                    yield from object_refs(item, f"{name}[{key!r}].")
        elif field.is_repeated:
            for i, item in enumerate(value):
                yield from object_refs(item, f"{name}[{i}].")
        else:
            yield from object_refs(value, name + ".")


_REF_CACHE: dict[str, bool] = {}


def _has_refs(descriptor: Descriptor | Any) -> bool:
    """Whether a message of this type can hold an ObjectRef anywhere (so big messages without
    one, e.g. an inline Transcript, are not walked)."""
    cached = _REF_CACHE.get(descriptor.full_name)
    if cached is not None:
        return cached
    seen: set[str] = set()
    pending = [descriptor]
    found = False
    while pending and not found:
        current = pending.pop()
        if current.full_name in seen:
            continue
        seen.add(current.full_name)
        for field in current.fields:
            if field.message_type is not None:
                if field.message_type.full_name == _OBJECT_REF:
                    found = True
                    break
                pending.append(field.message_type)
    _REF_CACHE[descriptor.full_name] = found
    return found


if TYPE_CHECKING:  # generic only in grpc-stubs
    _Interceptor = grpc.ServerInterceptor[Any, Any]
else:
    _Interceptor = grpc.ServerInterceptor


class AccessInterceptor(_Interceptor):
    """Checks the caller's token and the request's ObjectRefs on every call of the stage's own
    services (health and reflection pass untouched). Put it first: a refused call takes no
    worker and no queue place."""

    def __init__(self, service_names: list[str], policy: AccessPolicy) -> None:
        self.prefixes = tuple(f"/{name}/" for name in service_names)
        self.policy = policy

    def intercept_service(self, continuation: Callable[[Any], Any], details: grpc.HandlerCallDetails) -> Any:
        return wrap_handler(continuation, details, self.prefixes, self._unary, self._stream)

    def _check(self, method: str, request: Any, context: grpc.ServicerContext) -> None:
        try:
            caller = self.policy.caller(context.invocation_metadata())
        except Unauthenticated as exc:
            log.warning("UNAUTHENTICATED %s from %s: %s", method, context.peer(), exc)
            abort(context, grpc.StatusCode.UNAUTHENTICATED, str(exc), "UNAUTHENTICATED")
        try:
            self.policy.check_request(caller, request)
        except PermissionDenied as exc:
            log.warning("PERMISSION_DENIED %s for client %s: %s", method, caller.name, exc)
            abort(context, grpc.StatusCode.PERMISSION_DENIED, str(exc), "PERMISSION_DENIED")
        caller_var.set(caller.name)

    def _stream(
        self, method: str, behavior: Callable[[Any, Any], Iterator[Any]]
    ) -> Callable[[Any, Any], Iterator[Any]]:
        def wrapped(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            self._check(method, request, context)
            yield from behavior(request, context)

        return wrapped

    def _unary(self, method: str, behavior: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
            self._check(method, request, context)
            return behavior(request, context)

        return wrapped
