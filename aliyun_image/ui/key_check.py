"""The header's key check: which region the typed key (else the host's) belongs to."""

from __future__ import annotations

import asyncio

import gradio as gr

from ..dashscope import keycheck
from ..errors import AliyunImageError
from ..runtime import AppContext
from .page_text import error_md
from .request_info import header_key, request_lang
from .strings import t


def key_report(result: keycheck.KeyCheck, configured: str, lang: str) -> str:
    """The key check as Markdown: one line per region, then the verdict."""
    lines = []
    for r in result.results:
        ms = f"{r.latency_ms} ms" if r.latency_ms is not None else "-"
        lines.append(f"- {'✓' if r.valid else '✗'} {r.label(lang)} · {t(lang, 'key.' + r.status)} · {ms}")
    found = next((r for r in result.results if r.region == result.region), None)
    if result.region is None or found is None:
        return "\n".join(lines) + "\n\n" + t(lang, "key.nowhere")
    verdict = t(lang, "key.found", region=found.label(lang))
    if result.region != configured:
        verdict += " " + t(lang, "key.other_region")
    return "\n".join(lines) + "\n\n" + verdict


class KeyCheck:
    """The check button's event, bound to the app's settings and the host's key."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    async def check_key(self, request: gr.Request,
                        x_dashscope_api_key: gr.Header = None) -> str:  # type: ignore[assignment]
        """Which region the typed key (else the host's) belongs to: one free call per region."""
        lang = request_lang(request)
        key = (header_key(x_dashscope_api_key) or "").strip() or self.ctx.host_key
        if not key:
            return t(lang, "key.check_none")
        s = self.ctx.settings
        # An emulator or proxy base answers for its own region only; otherwise every public region.
        bases = {s.region: s.base_url} if not s.region_known or s.is_custom_base else None
        try:
            result = await asyncio.to_thread(keycheck.check_key, key, bases, workspace=s.workspace)
        except AliyunImageError as exc:
            return error_md(exc, lang)
        return key_report(result, s.region, lang)

    def wire(self, check: gr.Button, report: gr.Markdown) -> None:
        """The header's check button writes the report below it."""
        # Queued (not PRIVATE's queue=False): the key header rides on queue calls only. At most two
        # checks at once: each makes one small request per region on the visitor's key.
        check.click(self.check_key, None, report, api_visibility="private", concurrency_limit=2,
                    concurrency_id="keycheck")
