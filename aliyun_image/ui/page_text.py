"""How text goes into the page: Markdown escaping, gallery captions, failures as status lines and
as toasts (errors API and MCP clients see too), and the texts other packages hand over."""

from __future__ import annotations

import re
from typing import Any

import gradio as gr

from .. import i18n
from ..errors import AliyunImageError
from ..generation import escape_md
from ..generation import outcome as summary
from ..i18n import Message
from ..storage import Record
from .strings import t


def caption(rec: Record, lang: str) -> str:
    """Gallery caption: the record's ``#id`` (what every action refers to), start of the prompt,
    model and size; a grid's says it is an X/Y grid (in ``lang``) instead of one model and size."""
    prompt = rec.prompt if len(rec.prompt) <= 48 else rec.prompt[:47] + "…"
    if rec.task == "grid":  # generation.grid.TASK: a grid spans models and sizes
        return f"#{rec.id} · {t(lang, 'task.grid')} · {prompt}"
    return f"#{rec.id} · {prompt} · {rec.model} · {rec.size}"


def caption_id(text: Any) -> int | None:
    """The record id at the start of a gallery caption (``#12 · …``), or None."""
    found = re.match(r"\s*(?:✓\s*)?#(\d{1,12})\b", text) if isinstance(text, str) else None
    return int(found.group(1)) if found else None


def as_record_id(value: Any) -> int | None:
    """A stored result's id from what the page (or a crafted call) sent, or None for anything that
    is not one (garbage, zero, out of SQLite's range)."""
    try:
        rid = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return rid if 0 < rid < 2**63 else None


# Markdown escaping of text shown in a Markdown component (one rule for the page and the
# summaries). Done once, where text goes into Markdown: never on a toast, which shows text as is.
md = escape_md


def error_md(err: AliyunImageError, lang: str) -> str:
    """A failure as the status line shows it."""
    return "⚠️ " + md(err.text(lang))


def ui_error(lang: str, message: str, said: bool = False) -> gr.Error:
    """A toast (and an error for API and MCP clients) in ``lang`` only, title included.
    ``message`` is plain text: a toast does not render Markdown. ``said``: the page's status line
    already shows it, so the page gets no toast (a message is said once, where the user looks);
    API and MCP clients still get the error."""
    return gr.Error(message, title=t(lang, "toast.error"), print_exception=False, visible=not said)


def gr_error(err: AliyunImageError, lang: str, said: bool = False) -> gr.Error:
    """A failure with nothing produced, raised so API and MCP clients see it as an error, in the
    caller's language (``said``: as :func:`ui_error`)."""
    return ui_error(lang, err.text(lang), said)


def money_refusal(err: AliyunImageError) -> bool:
    """True for a refusal by a budget or an hourly cap, which the panel's cost line states in full
    (with the Run button disabled) whenever it holds: the status line then only points to it."""
    code = err.code or ""
    return code.startswith("Budget.") or code.startswith("Quota.")


def typed_key_remedy(err: AliyunImageError) -> AliyunImageError:
    """``err`` with the remedy for a key typed in the page ("check the key you typed") instead of
    the one for a configured key (DASHSCOPE_API_KEY), when the service refused the key."""
    if err.msg.key == "error.api.invalid_api_key":
        return err.with_text(i18n.msg("ui.typed_key.invalid_api_key", **err.msg.params))
    return err


# --- adapters for texts other packages hand over (one place to change when they move) ----------
def event_text(lang: str, text: Message | str) -> str:
    """A run event's status text in ``lang``."""
    return i18n.render(lang, text)


def run_text(lang: str, name: str) -> str:
    """A text of the run summary's (e.g. ``offline_note``), which the summary builder owns."""
    return summary.text(lang, name)
