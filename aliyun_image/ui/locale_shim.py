"""An ASGI middleware that lets Chinese locales Gradio does not ship read the page in Chinese.

Gradio 6.31 picks the page's locale among the languages it ships: the browser's language when it
has it (``zh-CN``, ``zh-TW``, ``ja``...), else its base language, else English. It ships no bare
``zh`` and no ``zh-HK``, ``zh-SG`` or ``zh-MO``, so such a browser would read English labels
next to the app's messages, which follow Accept-Language and come in Chinese. The script below
maps those locales to the Gradio locale of the same script (Traditional to ``zh-TW``, the rest to
``zh-CN``) before Gradio reads ``navigator.language``. It must run before Gradio's own module,
which ``head_paths`` cannot do (Gradio adds that HTML after it chose the locale), so it goes
first into the ``<head>`` of the page itself.
"""

from __future__ import annotations

from typing import Any

from .http_guard import Receive, Scope, Send

SCRIPT = b"""<script>/* aliyun-image: Chinese locales Gradio does not ship (see ui/locale_shim.py) */
(() => { const l = navigator.language || ""; if (!/^zh\\b/i.test(l) || /^zh-(CN|TW)$/i.test(l)) return;
  const m = /hant|tw|hk|mo/i.test(l) ? "zh-TW" : "zh-CN";
  try { Object.defineProperty(Navigator.prototype, "language", { get: () => m, configurable: true }); } catch (e) {}
})();</script>"""


class LocaleShim:
    """Wraps the Gradio ASGI app: puts :data:`SCRIPT` first into the ``<head>`` of HTML pages."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "GET":
            await self.app(scope, receive, send)
            return
        start: dict | None = None
        body: list[bytes] = []

        async def buffered(message: dict) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                kind = dict(message.get("headers", [])).get(b"content-type", b"")
                if not kind.startswith(b"text/html"):
                    await send(message)  # not a page: passed through as it comes
                    return
                start = message
                return
            if start is None:
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body"):
                return
            page = b"".join(body).replace(b"<head>", b"<head>" + SCRIPT, 1)
            kept = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
            await send({**start, "headers": [*kept, (b"content-length", str(len(page)).encode())]})
            await send({"type": "http.response.body", "body": page})

        await self.app(scope, receive, buffered)
