"""An ASGI middleware in front of Gradio's routes: what a visitor may send and fetch.

- Gradio's deep links are closed. ``GET /gradio_api/deep_link`` would write every input value
  of a session to a file in the temp dir, and ``?deep_link=<id>`` on ``/`` or ``/config`` would
  serve them back to anyone with the id. The app has no deep-link button, so nothing is lost.
- Request bodies are capped: uploads at the upload limit (plus multipart overhead), everything
  else (queue calls carry prompts and settings, never file bytes) at :data:`JSON_BODY_MAX`. A
  body over the cap is refused with 413 before it is read into memory, also when it arrives
  chunked without a length.
- Hosted: the visitor cookie. A page load without a well-formed one gets a new random token
  (:data:`COOKIE`, 256 bits from :func:`secrets.token_urlsafe`) in an ``HttpOnly`` cookie with
  ``Path=/``, ``SameSite`` (``Lax``; ``None`` with ``Partitioned`` on a Space, whose page sits in
  an iframe of huggingface.co, where a ``Lax`` cookie is never sent), ``Secure`` over https
  (``X-Forwarded-Proto`` counts only behind trusted proxies) and a ``Max-Age`` of the days a
  visitor's results are kept. It is an identity, nothing else: never the key, never in a URL,
  never stored (the owner is derived from it with a server secret, :meth:`AppContext.owner_of`).
- Hosted with the data dir outside the working dir (a Space's ``/data``): Gradio may copy results
  from there into its cache (``allowed_paths``), but its file route must not serve them by path,
  which it would to anyone who guesses one: such requests get 404 (``closed_dirs``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import parse_qsl, urlencode

from .. import i18n
from .strings import t

JSON_BODY_MAX = 1 << 20  # 1 MiB: a prompt is at most a few kB
UPLOAD_OVERHEAD = 1 << 20  # multipart headers and boundaries around the file bytes

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

COOKIE = "aliyun_image_visitor"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,64}")  # token_urlsafe(32) is 43 such characters
_FILE_ROUTE = re.compile(r"/file[=/]")


class _TooLarge(Exception):
    pass


@dataclass(frozen=True)
class VisitorCookie:
    """How the visitor cookie is set: its lifetime in days, its SameSite, and how many proxies in
    front of the app may say the page came over https."""

    days: int = 7
    samesite: str = "lax"
    trusted_proxies: int = 0

    def header(self, token: str, https: bool) -> bytes:
        """The ``Set-Cookie`` value for ``token`` on a page served over https or not."""
        parts = [f"{COOKIE}={token}", f"Max-Age={self.days * 86400}", "Path=/", "HttpOnly",
                 f"SameSite={self.samesite.capitalize()}"]
        if https or self.samesite == "none":  # browsers drop SameSite=None without Secure
            parts.append("Secure")
        if self.samesite == "none":  # an iframe's cookie kept apart per embedding site (CHIPS)
            parts.append("Partitioned")
        return "; ".join(parts).encode("latin-1")

    def https(self, scope: Scope) -> bool:
        """Whether the page came over https: the connection's scheme, or the scheme the outermost
        trusted proxy saw (the N-th ``X-Forwarded-Proto`` entry from the right)."""
        if scope.get("scheme") == "https":
            return True
        if self.trusted_proxies <= 0:
            return False
        told = (_header(scope, b"x-forwarded-proto") or b"").decode("latin-1")
        return _nth_from_right(told, self.trusted_proxies) == "https"


def visitor_token(cookie_header: str | None) -> str | None:
    """The visitor cookie's token from a ``Cookie`` header, or None when absent or malformed."""
    for part in (cookie_header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and _TOKEN.fullmatch(value.strip('"')):
            return value.strip('"')
    return None


def client_address(forwarded_for: str | None, peer: str | None, trusted_proxies: int) -> str | None:
    """The client's address: with no trusted proxy the connection's ``peer``; behind
    ``trusted_proxies`` proxies, each appending the address it saw to ``X-Forwarded-For``, the
    N-th entry from the right (what the outermost proxy saw). Entries further left were written
    by the client and are never believed; a header shorter than N means the request did not come
    through the proxies, so the peer it came from is the address."""
    if trusted_proxies <= 0 or not forwarded_for:
        return peer
    return _nth_from_right(forwarded_for, trusted_proxies) or peer


def _nth_from_right(value: str, n: int) -> str | None:
    entries = [e.strip() for e in value.split(",") if e.strip()]
    return entries[-n] if len(entries) >= n else None


def trust_no_proxy_by_default() -> None:
    """Leave ``X-Forwarded-For`` to :func:`client_address`: uvicorn (started by Gradio) believes it
    from any peer on 127.0.0.1 by default and rewrites the client address before this app sees it,
    so a local client could name any address. A host who sets ``FORWARDED_ALLOW_IPS`` keeps theirs
    (then ``ALIYUN_IMAGE_TRUSTED_PROXIES`` stays 0: uvicorn has already applied the proxies)."""
    os.environ.setdefault("FORWARDED_ALLOW_IPS", "")


def _inside(path: str, dirs: Sequence[Path]) -> bool:
    try:
        target = Path(path).resolve()
    except (OSError, ValueError):
        return True  # not a path this server can read: refuse rather than guess
    return any(target.is_relative_to(d) for d in dirs)


def _cross_site(scope: Scope) -> bool:
    """True when another site's page made this request: the browser says so (``Sec-Fetch-Site``),
    or its ``Origin`` names a host other than the one asked. Gradio answers any Origin with
    credentials allowed, so such a page could otherwise act as the visitor whose cookie it sends."""
    if (_header(scope, b"sec-fetch-site") or b"").decode("latin-1").strip().lower() == "cross-site":
        return True
    origin = (_header(scope, b"origin") or b"").decode("latin-1").strip()
    if not origin or origin == "null":
        return origin == "null"  # a sandboxed or file: page; no Origin at all: not a browser's cross-site call
    host = (_header(scope, b"host") or b"").decode("latin-1").strip().lower()
    return origin.split("://", 1)[-1].rstrip("/").lower() != host


def _without_cookies(scope: Scope) -> Scope:
    """``scope`` without its cookies: a cross-site call is served as a caller with no cookie (a
    fresh owner, its own limits), never as the visitor whose browser sent it."""
    return {**scope, "headers": [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"cookie"]}


class HttpGuard:
    """Wraps the Gradio ASGI app; ``upload_max`` in bytes (None = no upload cap)."""

    def __init__(self, app: Callable, upload_max: int | None = None, visitor: VisitorCookie | None = None,
                 closed_dirs: Sequence[str | Path] = ()):
        self.app = app
        self.upload_max = upload_max
        self.visitor = visitor  # hosted: the visitor cookie's settings (None: no cookie)
        self.closed_dirs = tuple(Path(d).resolve() for d in closed_dirs)

    def _limit(self, path: str) -> int | None:
        if path.rstrip("/").endswith("/upload"):
            return None if self.upload_max is None else self.upload_max + UPLOAD_OVERHEAD
        return JSON_BODY_MAX

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.visitor is not None and _cross_site(scope):
            scope = _without_cookies(scope)
        path = scope.get("path", "")
        if path.rstrip("/").endswith("/deep_link"):
            await _reply(send, 404, {"detail": "Not Found"})
            return
        query = scope.get("query_string", b"")
        if query:
            # Compare decoded names: "deep%5Flink" is "deep_link" to Gradio.
            pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
            if any(k == "deep_link" for k, _ in pairs):
                kept = [(k, v) for k, v in pairs if k != "deep_link"]
                scope = {**scope, "query_string": urlencode(kept).encode("latin-1")}
        if self.closed_dirs and (m := _FILE_ROUTE.search(path)) and _inside(path[m.end():], self.closed_dirs):
            await _reply(send, 404, {"detail": "Not Found"})
            return
        limit = self._limit(path)
        if limit is None or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, self._with_cookie(scope, send))
            return
        length = _content_length(scope)
        if length is not None and length > limit:
            await _too_large(scope, send, limit)
            return
        await self._capped(scope, receive, send, limit)

    def _with_cookie(self, scope: Scope, send: Send) -> Send:
        """``send``, giving an HTML page (the page load) a new visitor cookie when the request
        carries no well-formed one."""
        if self.visitor is None or scope.get("method") != "GET":
            return send
        sent = b"; ".join(v for k, v in scope.get("headers", []) if k == b"cookie").decode("latin-1")
        if visitor_token(sent) is not None:
            return send
        cookie = self.visitor.header(secrets.token_urlsafe(32), self.visitor.https(scope))

        async def cookie_send(message: dict) -> None:
            if message.get("type") == "http.response.start":
                headers = list(message.get("headers", []))
                kind = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if kind.startswith(b"text/html"):
                    message = {**message, "headers": [*headers, (b"set-cookie", cookie)]}
            await send(message)

        return cookie_send

    async def _capped(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        seen = 0
        started = False

        async def counting_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message.get("type") == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            if message.get("type") == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _too_large(scope, send, limit)


def _header(scope: Scope, wanted: bytes) -> bytes | None:
    for name, value in scope.get("headers", []):
        if name == wanted:
            return value
    return None


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


async def _too_large(scope: Scope, send: Send, limit: int) -> None:
    mb = max(1, round((limit - UPLOAD_OVERHEAD) / (1 << 20))) if limit > JSON_BODY_MAX else 1
    lang = i18n.from_accept_language((_header(scope, b"accept-language") or b"").decode("latin-1"))
    await _reply(send, 413, {"detail": t(lang, "guard.too_large", mb=mb)})


async def _reply(send: Send, status: int, body: dict) -> None:
    data = json.dumps(body, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json; charset=utf-8"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
