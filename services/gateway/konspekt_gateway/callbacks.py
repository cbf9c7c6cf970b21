"""A job's ``callback_url``: checked when the job is submitted, then delivered only outward.

At submission (``check_submitted``): only ``http``/``https``, no user name or password, a host
that is a well-formed name or IP literal, and a literal IP (in any spelling ``inet_aton``
accepts: ``0x7f000001``, ``2130706433``, ``017700000001``, ``127.1``) or a ``localhost`` name
outside the blocked ranges; otherwise 400 in the request's language.

At delivery (``deliver``): the host is resolved (IP literals in every spelling are normalised
the same way), and *every* address it resolves to must be public: loopback, private,
link-local, multicast, reserved, unspecified, documentation, shared/CGNAT (100.64/10),
IPv6 unique-local and site-local addresses, and IPv4 addresses embedded in IPv4-mapped,
IPv4-compatible, NAT64, 6to4 and Teredo addresses are refused, unless the host name or the
address is on the ``KONSPEKT_GATEWAY_CALLBACK_ALLOW`` list. The request then goes to the exact
address that was checked (the URL's host replaced by it; the ``Host`` header and the TLS SNI
and certificate check keep the name), with no proxy from the environment and no redirects
followed, so a name that resolves differently a moment later (DNS rebinding) changes nothing.

Each POST is signed: ``X-Konspekt-Timestamp: <unix seconds>`` and
``X-Konspekt-Signature: sha256=<hex HMAC-SHA256(key, "<timestamp>.<body>")>``; the key is
``KONSPEKT_GATEWAY_CALLBACK_SECRET``, or, unset, derived from the cookie-signing secret
(``signing_key``). A callback that is refused or not delivered is logged with the reason and
leaves a note on the job (``deliver`` returns it).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import re
import socket
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from konspekt.notices import Note
from konspekt_gateway.i18n import ADDRESS_KINDS, LocalizedError

if TYPE_CHECKING:
    from konspekt_gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

TIMESTAMP_HEADER = "X-Konspekt-Timestamp"
SIGNATURE_HEADER = "X-Konspekt-Signature"
USER_AGENT = "konspekt-gateway (callback)"
ATTEMPTS = 3
MAX_URL_LENGTH = 2000
#: What the key derived from the cookie secret is an HMAC of (see ``signing_key``).
DERIVATION_LABEL = b"konspekt callback signing key v1"

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
#: Blocked IPv4 ranges and what they are (first match wins).
_BLOCKED_V4: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_V4("0.0.0.0/8"), "unspecified"),
    (_V4("10.0.0.0/8"), "private"),
    (_V4("100.64.0.0/10"), "shared (CGNAT)"),
    (_V4("127.0.0.0/8"), "loopback"),
    (_V4("169.254.0.0/16"), "link-local"),
    (_V4("172.16.0.0/12"), "private"),
    (_V4("192.0.0.0/24"), "reserved"),
    (_V4("192.0.2.0/24"), "documentation"),
    (_V4("192.88.99.0/24"), "reserved"),
    (_V4("192.168.0.0/16"), "private"),
    (_V4("198.18.0.0/15"), "reserved"),
    (_V4("198.51.100.0/24"), "documentation"),
    (_V4("203.0.113.0/24"), "documentation"),
    (_V4("224.0.0.0/4"), "multicast"),
    (_V4("240.0.0.0/4"), "reserved"),  # 255.255.255.255 (broadcast) included
)
#: Blocked IPv6 ranges (after the IPv4-embedding forms are looked through; first match wins).
_BLOCKED_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("::/128"), "unspecified"),
    (_V6("::1/128"), "loopback"),
    (_V6("64:ff9b:1::/48"), "private"),  # local-use NAT64
    (_V6("100::/64"), "reserved"),  # discard-only
    (_V6("2001::/23"), "reserved"),  # IETF protocol assignments (Teredo's 2001::/32 too)
    (_V6("2001:db8::/32"), "documentation"),
    (_V6("3fff::/20"), "documentation"),
    (_V6("5f00::/16"), "reserved"),  # SRv6 SIDs
    (_V6("fc00::/7"), "private"),  # unique local
    (_V6("fe80::/10"), "link-local"),
    (_V6("fec0::/10"), "private"),  # site-local (deprecated)
    (_V6("ff00::/8"), "multicast"),
)
_IPV4_COMPATIBLE = _V6("::/96")
_NAT64 = _V6("64:ff9b::/96")

_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
#: A last label that makes a host an IPv4 address in some spelling (WHATWG URL's rule).
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x20\x7f\\]")


class BadCallback(LocalizedError):
    """A callback_url refused at submission: 400 with a message in the request's language."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(400, "invalid_request", key, **params)


class Refused(Exception):
    """A callback that must not be sent; ``exc.args[0]``, a Note, says why (shown on the job)."""


# -- the allow-list -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Allow:
    """Internal receivers an administrator allows: networks (CIDR or single addresses) and host
    names (exact, or ``*.domain`` for every name under it)."""

    networks: tuple[IPNetwork, ...] = ()
    names: tuple[str, ...] = ()

    @staticmethod
    @functools.lru_cache(maxsize=16)
    def parse(text: str) -> Allow:
        """``"10.1.2.0/24, hooks.internal *.svc.cluster.local"`` (commas or spaces); raises
        ValueError on an entry that is neither a network nor a host name."""
        networks: list[IPNetwork] = []
        names: list[str] = []
        for entry in re.split(r"[\s,]+", text.strip()):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=True))
                continue
            except ValueError as exc:
                if "/" in entry or re.match(r"^[0-9.:]+$", entry):
                    raise ValueError(f"{entry!r} is not a network like 10.0.0.0/8 ({exc})") from None
            name = entry.lower().rstrip(".")
            bare = name[2:] if name.startswith("*.") else name
            if not _NAME.match(bare):
                raise ValueError(f"{entry!r} is neither a network (CIDR) nor a host name")
            names.append(name)
        return Allow(tuple(networks), tuple(names))

    def allows_name(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        for name in self.names:
            if name.startswith("*.") and host.endswith(name[1:]):
                return True
            if host == name:
                return True
        return False

    def allows_address(self, address: IPAddress) -> bool:
        forms = {address, *_embedded(address)}
        return any(form in network for form in forms for network in self.networks)


def allow_list(settings: GatewaySettings) -> Allow:
    return Allow.parse(settings.callback_allow)


# -- addresses ------------------------------------------------------------------------------------


def _embedded(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)  # (server, client)
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    return []


def blocked_kind(address: IPAddress) -> str | None:
    """What kind of non-public address this is ("loopback", "private", …), None if public."""
    if isinstance(address, ipaddress.IPv6Address):
        address = ipaddress.IPv6Address(address.compressed.split("%")[0])  # no scope id
        for inner in _embedded(address):
            kind = blocked_kind(inner)
            if kind is not None:
                return kind
        if address.ipv4_mapped is not None:
            return None  # judged by the IPv4 address it maps
        if address in _IPV4_COMPATIBLE and int(address) > 1:
            return "reserved"  # deprecated IPv4-compatible form
        for network6, kind in _BLOCKED_V6:
            if address in network6:
                return kind
    else:
        for network4, kind in _BLOCKED_V4:
            if address in network4:
                return kind
    if not address.is_global:  # a guard for anything the tables above miss
        return "reserved"
    return None


def numeric_address(host: str) -> IPAddress | None:
    """The address a host written as an IP literal means, in any spelling a resolver accepts
    (``0x7f000001``, ``2130706433``, ``017700000001``, ``127.1``, ``::ffff:127.0.0.1``); None
    for a name. Raises BadCallback for a host that looks numeric but is no address."""
    host = host.strip("[]")
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            raise BadCallback("bad_callback_host", host=host[:100]) from None
    bare = host.rstrip(".")
    if not _NUMERIC_LABEL.match(bare.rsplit(".", 1)[-1]):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(bare))
    except (OSError, ValueError):
        raise BadCallback("bad_callback_host", host=host[:100]) from None


# -- the URL --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A callback URL taken apart: where it goes and what the request says."""

    url: str
    scheme: str
    host: str  # ASCII, lower case, IPv6 without brackets
    port: int
    target: str  # path and query, as given
    address: IPAddress | None  # the host is an IP literal

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse(url: str) -> Target:
    """Take a callback URL apart; BadCallback for anything not a plain http(s) URL."""
    url = url.strip()
    if len(url) > MAX_URL_LENGTH or _FORBIDDEN_CHARS.search(url):
        raise BadCallback("bad_callback")
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        raise BadCallback("bad_callback") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.netloc:
        raise BadCallback("bad_callback")
    if "@" in parts.netloc:
        raise BadCallback("bad_callback_userinfo")
    host = parts.hostname or ""
    try:
        port = parts.port if parts.port is not None else (443 if scheme == "https" else 80)
    except ValueError:
        raise BadCallback("bad_callback_host", host=parts.netloc[:100]) from None
    if not host or not 0 < port < 65536 or "%" in host:
        raise BadCallback("bad_callback_host", host=parts.netloc[:100])
    bracketed = parts.netloc.startswith("[")
    if bracketed != (":" in host):
        raise BadCallback("bad_callback_host", host=host[:100])
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise BadCallback("bad_callback_host", host=host[:100]) from None
    address = numeric_address(host)
    if address is None and not _NAME.match(host.rstrip(".")):
        raise BadCallback("bad_callback_host", host=host[:100])
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    target = "".join(ch if ch.isascii() else urllib.parse.quote(ch) for ch in target)
    return Target(url, scheme, host, port, target, address)


def _is_localhost(host: str) -> bool:
    host = host.rstrip(".")
    return host == "localhost" or host.endswith(".localhost")


def check_submitted(url: str, settings: GatewaySettings) -> str:
    """The callback_url as it will be kept ("" for none); BadCallback (400) when it can never
    be sent: not http(s), a user name or password, a malformed host, or a host that is an IP
    literal in a blocked range or a ``localhost`` name (unless allow-listed). Names are
    resolved only at delivery."""
    url = url.strip()
    if not url:
        return ""
    target = parse(url)
    allow = allow_list(settings)
    if allow.allows_name(target.host):
        return url
    if target.address is not None:
        kind = blocked_kind(target.address)
        if kind is not None and not allow.allows_address(target.address):
            raise BadCallback(
                "callback_not_public", address=str(target.address), kind=kind, kind_ru=ADDRESS_KINDS[kind]
            )
    elif _is_localhost(target.host):
        raise BadCallback(
            "callback_not_public", address=target.host, kind="loopback", kind_ru=ADDRESS_KINDS["loopback"]
        )
    return url


# -- delivery -------------------------------------------------------------------------------------


async def _getaddrinfo(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if address not in found:
            found.append(address)
    return found


async def resolve(target: Target, allow: Allow) -> IPAddress:
    """The address to connect to: every address the host resolves to must be allowed (so a
    name with one public and one internal address is refused). Raises Refused."""
    if target.address is not None:
        addresses = [target.address]
    else:
        try:
            addresses = await _getaddrinfo(target.host, target.port)
        except (OSError, UnicodeError) as exc:
            raise Refused(Note("callback_unresolved", host=target.host, detail=str(exc))) from None
        if not addresses:
            raise Refused(Note("callback_unresolved", host=target.host, detail="no address"))
    if not allow.allows_name(target.host):
        for address in addresses:
            kind = blocked_kind(address)
            if kind is not None and not allow.allows_address(address):
                raise Refused(Note("callback_blocked", host=target.host, address=str(address), kind=kind))
    chosen = addresses[0]
    if isinstance(chosen, ipaddress.IPv6Address) and chosen.ipv4_mapped is not None:
        chosen = chosen.ipv4_mapped
    return chosen


def signing_key(settings: GatewaySettings, cookie_secret: bytes) -> bytes:
    """``KONSPEKT_GATEWAY_CALLBACK_SECRET``, or (unset) the hex HMAC-SHA256 of the cookie secret
    and ``DERIVATION_LABEL``: stable across restarts and replicas, never the cookie secret."""
    configured = settings.callback_secret.get_secret_value()
    if configured:
        return configured.encode("utf-8")
    return hmac.new(cookie_secret, DERIVATION_LABEL, hashlib.sha256).hexdigest().encode("ascii")


def sign(key: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Konspekt-Signature`` value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(key, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(key: bytes, timestamp: str, body: bytes, signature: str, *, max_age: float = 300.0) -> bool:
    """What a receiver does (kept here for tests and Python receivers): the signature matches
    and the timestamp is within ``max_age`` seconds of now."""
    try:
        age = abs(time.time() - int(timestamp))
    except ValueError:
        return False
    return age <= max_age and hmac.compare_digest(sign(key, timestamp, body), signature)


def _request(target: Target, address: IPAddress, body: bytes, key: bytes) -> httpx.Request:
    """A POST to ``address`` that names the host in its Host header and TLS SNI."""
    timestamp = str(int(time.time()))
    url = httpx.URL(scheme=target.scheme, host=str(address), port=target.port, path="/")
    url = url.copy_with(raw_path=target.target.encode("ascii", "strict"))
    headers = {
        "Host": target.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(key, timestamp, body),
    }
    named = target.scheme == "https" and target.address is None
    extensions = {"sni_hostname": target.host} if named else {}
    return httpx.Request("POST", url, headers=headers, content=body, extensions=extensions)


async def deliver(
    url: str,
    payload: dict[str, Any],
    *,
    key: bytes,
    settings: GatewaySettings,
    label: str = "",
    transport: httpx.AsyncBaseTransport | None = None,
    backoff: Callable[[int], float] | None = None,
) -> str:
    """POST ``payload`` to ``url`` (checked, signed, up to 3 tries). Returns "" once delivered,
    else the note for the job (English) — the reason is logged too; nothing is sent when
    the URL or an address it resolves to is refused."""
    who = f"job {label}: " if label else ""
    backoff = backoff or settings.backoff
    allow = allow_list(settings)
    try:
        target = parse(url)
    except BadCallback as exc:
        log.warning("%scallback refused, nothing sent: %s", who, exc.message)
        return Note("callback_bad_url")
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    problem = ""
    async with httpx.AsyncClient(
        transport=transport,
        timeout=settings.callback_timeout_seconds,
        follow_redirects=False,
        trust_env=False,  # no proxy from the environment: the checked address is the peer
    ) as client:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                address = await resolve(target, allow)
            except Refused as exc:
                log.warning("%scallback to %s refused, nothing sent: %s", who, target.host, exc)
                return Note("callback_not_sent", reason=exc.args[0])
            try:
                resp = await client.send(_request(target, address, body, key))
                await resp.aclose()
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                problem = f"{type(exc).__name__}: {exc}".rstrip(": ")
            else:
                if resp.is_redirect or 300 <= resp.status_code < 400:
                    log.warning(
                        "%scallback to %s answered HTTP %d; redirects are not followed",
                        who,
                        target.host,
                        resp.status_code,
                    )
                    return Note("callback_redirect", status=str(resp.status_code))
                if resp.status_code < 400:
                    log.info("%scallback to %s answered %d", who, target.host, resp.status_code)
                    return ""
                problem = f"HTTP {resp.status_code}"
            log.warning("%scallback try %d to %s failed: %s", who, attempt, target.host, problem)
            if attempt < ATTEMPTS:
                await asyncio.sleep(backoff(attempt))
    return Note("callback_failed", detail=problem, tries=str(ATTEMPTS))


def describe(settings: GatewaySettings, configured_secret: bool) -> str:
    """One log line about how callbacks are sent (at start)."""
    allow = allow_list(settings)
    allowed = ", ".join([*map(str, allow.networks), *allow.names]) or "none"
    key = "KONSPEKT_GATEWAY_CALLBACK_SECRET" if configured_secret else "a key derived from the cookie secret"
    return f"callbacks: public addresses only (allowed internal receivers: {allowed}); signed with {key}"
