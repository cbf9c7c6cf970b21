"""Who is asking: every job belongs to an owner, and only its owner can see it.

- API clients send ``Authorization: Bearer <token>`` (any secret string of theirs, at least 16
  characters): the owner is ``t-`` + the first 32 hex digits of SHA-256 of the token. The token
  itself is never stored.
- Browsers (and clients without a token) get a random identity in a signed cookie
  ``konspekt_owner=<id>.<HMAC-SHA256(secret, id)>`` (HttpOnly, SameSite=Lax, a year long),
  issued on their first response; the owner is ``c-<id>``. A cookie whose signature does not
  match is replaced by a new identity.

The signing secret is ``KONSPEKT_GATEWAY_SECRET_KEY``; without it one is generated once and
kept in the object store (``gateway/secret-key``), so restarts and replicas keep identities.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from http.cookies import SimpleCookie

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from konspekt.errors import NotFound
from konspekt.storage import ObjectStore

log = logging.getLogger(__name__)

OWNER_COOKIE = "konspekt_owner"
COOKIE_MAX_AGE = 365 * 24 * 3600
SECRET_KEY_OBJECT = "gateway/secret-key"  # noqa: S105 - an object key, not a secret
MIN_TOKEN_LENGTH = 16


class BadToken(Exception):
    """An Authorization header that is not a usable bearer token."""


def token_owner(token: str) -> str:
    return "t-" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:32]


def load_secret(store: ObjectStore, configured: str) -> bytes:
    """The configured secret, else the one kept in the store (created on first start)."""
    if configured:
        return configured.encode("utf-8")
    try:
        return store.get_bytes(SECRET_KEY_OBJECT)
    except NotFound:
        pass
    secret = secrets.token_hex(32).encode("ascii")
    store.put_bytes(SECRET_KEY_OBJECT, secret, "text/plain")
    log.info("generated the cookie signing secret and kept it in the object store")
    # another replica may have raced us: everyone uses what the store holds now
    return store.get_bytes(SECRET_KEY_OBJECT)


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
