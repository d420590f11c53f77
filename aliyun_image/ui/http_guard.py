"""An ASGI middleware in front of Gradio's routes: what a visitor may send and fetch.

- Gradio's deep links are closed. ``GET /gradio_api/deep_link`` would write every input value
  of a session to a file in the temp dir, and ``?deep_link=<id>`` on ``/`` or ``/config`` would
  serve them back to anyone with the id. The app has no deep-link button, so nothing is lost.
- Request bodies are capped: uploads at the upload limit (plus multipart overhead), everything
  else (queue calls carry prompts and settings, never file bytes) at :data:`JSON_BODY_MAX`. A
  body over the cap is refused with 413 before it is read into memory, also when it arrives
  chunked without a length.
"""

from __future__ import annotations

import json
from typing import Any
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl, urlencode

from .. import i18n
from .strings import t

JSON_BODY_MAX = 1 << 20  # 1 MiB: a prompt is at most a few kB
UPLOAD_OVERHEAD = 1 << 20  # multipart headers and boundaries around the file bytes

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

class _TooLarge(Exception):
    pass


class HttpGuard:
    """Wraps the Gradio ASGI app; ``upload_max`` in bytes (None = no upload cap)."""

    def __init__(self, app: Callable, upload_max: int | None = None):
        self.app = app
        self.upload_max = upload_max

    def _limit(self, path: str) -> int | None:
        if path.rstrip("/").endswith("/upload"):
            return None if self.upload_max is None else self.upload_max + UPLOAD_OVERHEAD
        return JSON_BODY_MAX

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
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
        limit = self._limit(path)
        if limit is None or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > limit:
            await _too_large(scope, send, limit)
            return
        await self._capped(scope, receive, send, limit)

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
