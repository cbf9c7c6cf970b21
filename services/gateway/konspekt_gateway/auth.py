"""Who is asking: every job belongs to an owner, and only its owner can see it.

- API clients send ``Authorization: Bearer <token>`` (any secret string of theirs, at least 16
  characters): the owner is ``t-`` + the first 32 hex digits of SHA-256 of the token. The token
  itself is never stored.
- Browsers (and clients without a token) get a random identity in a signed cookie
  ``konspekt_owner=<id>.<HMAC-SHA256(secret, id)>`` (HttpOnly, SameSite=Lax, a year long),
  issued on their first response; the owner is ``c-<id>``. A cookie whose signature does not
  match is replaced by a new identity.

The signing secret is ``KONSPEKT_GATEWAY_SECRET_KEY`` (Kubernetes: a Secret; compose: .env),
else the file ``KONSPEKT_GATEWAY_SECRET_KEY_FILE`` (``./dev run``: ``.run/gateway-secret``, made
with 0600 on first start). Every replica must use the same secret. It is never kept in the object
store: a copy an earlier version left there (``gateway/secret-key``) is deleted at start.
Without either setting a per-process secret is made (identities end with the process).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
from http.cookies import SimpleCookie
from pathlib import Path

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from konspekt.errors import StageError
from konspekt.storage import ObjectStore

log = logging.getLogger(__name__)

OWNER_COOKIE = "konspekt_owner"
COOKIE_MAX_AGE = 365 * 24 * 3600
#: Where versions before issue 16 kept a generated secret (readable by anyone who could reach
#: the store's internal ports): deleted at start, never read.
SECRET_KEY_OBJECT = "gateway/secret-key"  # noqa: S105 - an object key, not a secret
MIN_TOKEN_LENGTH = 16
MIN_SECRET_LENGTH = 16


class BadToken(Exception):
    """An Authorization header that is not a usable bearer token."""


def token_owner(token: str) -> str:
    return "t-" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:32]


class SecretError(ValueError):
    """The configured secret cannot be used (the gateway does not start)."""


def load_secret(configured: str, path: str = "") -> bytes:
    """The cookie signing secret: ``configured`` (KONSPEKT_GATEWAY_SECRET_KEY), else the one in
    the file ``path`` (made with a new random secret, owner-only, if missing), else a new one for
    this process alone (browser identities then end with the process; logged)."""
    if configured:
        if len(configured) < MIN_SECRET_LENGTH:
            raise SecretError(f"KONSPEKT_GATEWAY_SECRET_KEY is shorter than {MIN_SECRET_LENGTH} characters")
        return configured.encode("utf-8")
    if path:
        return _secret_file(Path(path).expanduser())
    log.warning(
        "no KONSPEKT_GATEWAY_SECRET_KEY or KONSPEKT_GATEWAY_SECRET_KEY_FILE: the owner cookies are "
        "signed with a secret of this process only (browsers lose their jobs at a restart)"
    )
    return secrets.token_hex(32).encode("ascii")


def _secret_file(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # the usual case: made at an earlier start (or by another replica)
        pass
    except OSError as exc:
        raise SecretError(f"cannot create the cookie secret file {path}: {exc.strerror}") from exc
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        log.info("made a new cookie signing secret in %s (readable by its owner only)", path)
    try:
        mode = path.stat().st_mode
        secret = path.read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretError(f"cannot read the cookie secret file {path}: {exc}") from exc
    if mode & 0o077:
        log.warning("the cookie secret file %s can be read by other users: chmod 600 it", path)
    if len(secret) < MIN_SECRET_LENGTH:
        raise SecretError(f"the cookie secret file {path} holds fewer than {MIN_SECRET_LENGTH} characters")
    return secret.encode("utf-8")


def forget_stored_secret(store: ObjectStore) -> bool:
    """Delete the copy of a generated secret that versions before issue 16 kept in the object
    store (anyone who read it could forge cookies; it is not used any more). True if one was
    there."""
    try:
        if not store.exists(SECRET_KEY_OBJECT):
            return False
        store.delete(SECRET_KEY_OBJECT)
    except StageError as exc:
        log.warning(
            "could not delete the old cookie secret %s from the store: %s", SECRET_KEY_OBJECT, exc.message
        )
        return False
    log.info("deleted the old cookie secret %s from the object store (no longer used)", SECRET_KEY_OBJECT)
    return True


class Signer:
    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def _mac(self, ident: str) -> str:
        digest = hmac.new(self.secret, ident.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def issue(self) -> tuple[str, str]:
        """A new (owner, cookie value)."""
        ident = secrets.token_urlsafe(16)
        return "c-" + ident, f"{ident}.{self._mac(ident)}"

    def verify(self, value: str) -> str | None:
        ident, dot, mac = value.partition(".")
        if not dot or not ident.isascii() or not 8 <= len(ident) <= 64:
            return None
        if not hmac.compare_digest(mac, self._mac(ident)):
            return None
        return "c-" + ident


class Keys:
    """Holds the signer; the lifespan fills it in once the secret is known."""

    signer: Signer | None = None


class OwnerMiddleware:
    """Puts ``scope["state"]["owner"]`` on every HTTP request, and sets the cookie on the first
    response to a client that has neither a valid cookie nor a token. A malformed bearer token
    leaves the owner empty (the endpoints answer 401)."""

    def __init__(self, app: ASGIApp, keys: Keys) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        signer = self.keys.signer
        if scope["type"] != "http" or signer is None:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        state = scope.setdefault("state", {})
        auth = headers.get("authorization", "")
        new_cookie = ""
        if auth:
            scheme, _, token = auth.partition(" ")
            token = token.strip()
            valid = scheme.lower() == "bearer" and len(token) >= MIN_TOKEN_LENGTH
            state["owner"] = token_owner(token) if valid else ""
        else:
            owner = None
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(headers.get("cookie", ""))
            except Exception:  # noqa: BLE001 - a garbled Cookie header is the same as none
                jar = SimpleCookie()
            if OWNER_COOKIE in jar:
                owner = signer.verify(jar[OWNER_COOKIE].value)
            if owner is None:
                owner, new_cookie = signer.issue()
            state["owner"] = owner
        if not new_cookie:
            await self.app(scope, receive, send)
            return
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        cookie = (
            f"{OWNER_COOKIE}={new_cookie}; Path=/; Max-Age={COOKIE_MAX_AGE}; HttpOnly; SameSite=Lax{secure}"
        )

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("set-cookie", cookie)
            await send(message)

        await self.app(scope, receive, send_with_cookie)
