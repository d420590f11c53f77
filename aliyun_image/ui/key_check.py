"""The header's key check: which region the typed key (else the host's) belongs to."""

from __future__ import annotations

import asyncio

import gradio as gr

from ..dashscope import keycheck
from ..errors import AliyunImageError
from ..i18n import Message, msg, render
from ..runtime import AppContext
from .page_text import error_md
from .request_info import header_key, request_lang
from .strings import t


def key_report(result: keycheck.KeyCheck, where: keycheck.Places, lang: str, hint: Message | None = None,
               workspace: str | None = None) -> str:
    """The key check as Markdown: one line per place, then the verdict (platform and region)."""
    lines = []
    for r in result.results:
        ms = f"{r.latency_ms} ms" if r.latency_ms is not None else "-"
        lines.append(f"- {'✓' if r.valid else '✗'} {r.label(lang)} · {t(lang, 'key.' + r.status)} · {ms}")
    said = [render(lang, m) for m in keycheck.verdict(result, where.configured, workspace)]
    if not result.valid:
        said = [render(lang, msg("platform.none_accepts"))]
    if hint is not None:
        said.append(render(lang, hint))
    return "\n".join(lines) + "\n\n" + "\n\n".join(said)


class KeyCheck:
    """The check button's event, bound to the app's settings and the host's key."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    async def check_key(self, request: gr.Request,
                        x_dashscope_api_key: gr.Header = None) -> str:  # type: ignore[assignment]
        """Which platform and region the typed key (else the host's) belongs to: one free call per place."""
        lang = request_lang(request)
        key = (header_key(x_dashscope_api_key) or "").strip() or self.ctx.host_key
        if not key:
            return t(lang, "key.check_none")
        s = self.ctx.settings
        # An emulator or proxy base is asked alone (named by its URL unless a region was asked for);
        # otherwise the configured place first, then every other. The result stays this caller's.
        where = keycheck.places(s, others=not s.is_custom_base)
        try:
            result = await asyncio.to_thread(keycheck.probe_places, key, where.bases, workspace=s.workspace)
        except AliyunImageError as exc:
            return error_md(exc, lang)
        return key_report(result, where, lang, keycheck.key_hint(key), s.workspace)

    def wire(self, check: gr.Button, report: gr.Markdown) -> None:
        """The header's check button writes the report below it."""
        # Queued (not PRIVATE's queue=False): the key header rides on queue calls only. At most two
        # checks at once: each makes one small request per region on the visitor's key.
        check.click(self.check_key, None, report, api_visibility="private", concurrency_limit=2,
                    concurrency_id="keycheck")
