"""What a finished batch says, for the web page and for the terminal, in Chinese and English.

One builder for both front ends: they count the same things (saved, requested, failed, kept
after Stop), pick the same rewritten prompt and group identical failures the same way. Only the
shape differs: the page gets one Markdown block, the terminal a few plain lines for stderr.
Knows nothing about Gradio or argparse.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import AliyunImageError
from .i18n import Message
from .store import Record

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "done": "Done: {ok} of {total} image(s) saved. Seed {seeds}. Model {model}.",
        "done_extra": "Done: {ok} image(s) saved, {total} requested: the service sent more than asked (all kept; "
                      "they may be billed). Seed {seeds}. Model {model}.",
        "seeds_model": "Seed {seeds}. Model {model}.",
        "partial": "{ok} of {total} saved; {failed} failed:",
        "failed": "Nothing was generated:",
        "stopped": "Stopped: {ok} of {total} image(s) kept. No further requests were sent; requests already "
                   "sent were finished and saved, since they are paid for.",
        "rewritten": "Rewritten prompt: {text}",
        "rw_original": "Your prompt",
        "rw_rewritten": "Rewritten by the service (prompt_extend)",
        "offline_note": "(offline demo: stand-in images from the local emulator)",
        # The terminal's lines: short, and the seed line keeps the shape scripts already read.
        "term_model_seeds": "model {model}, seed {seeds}",
        "term_tally": "{ok} saved, {failed} failed",
    },
    "zh": {
        "done": "完成：已保存 {ok}/{total} 张。种子 {seeds}。模型 {model}。",
        "done_extra": "完成：已保存 {ok} 张，请求 {total} 张：服务返回的图片多于请求（已全部保留，可能计费）。"
                      "种子 {seeds}。模型 {model}。",
        "seeds_model": "种子 {seeds}。模型 {model}。",
        "partial": "已保存 {ok}/{total} 张；{failed} 张失败：",
        "failed": "没有生成图片：",
        "stopped": "已停止：保留 {ok}/{total} 张。不再发送新请求；已发出的请求已完成并保存（它们已计费）。",
        "rewritten": "改写后的提示词：{text}",
        "rw_original": "你的提示词",
        "rw_rewritten": "服务改写后的提示词（prompt_extend）",
        "offline_note": "（离线演示：本地模拟器生成的替代图片）",
        "term_model_seeds": "模型 {model}，种子 {seeds}",
        "term_tally": "{ok} 张成功，{failed} 张失败",
    },
}


def text(lang: str, key: str, **fmt: object) -> str:
    """Summary text ``key`` in ``lang`` (``zh`` or ``en``; anything else reads English)."""
    return TEXTS["zh" if lang == "zh" else "en"][key].format(**fmt)


def escape_md(value: str) -> str:
    """Escape Markdown in service text, so ``1000*700`` is not read as emphasis."""
    return re.sub(r"([\\`*_{}\[\]<>#|~])", r"\\\1", str(value))


@dataclass(frozen=True)
class Outcome:
    """What one batch came to: what was asked, what was saved, what failed, and how it ended."""

    requested: int
    model: str
    results: Sequence[Record]
    failures: Sequence[AliyunImageError]
    stopped: bool = False  # the user pressed Stop: what is shown was kept, not all that was asked
    offline: bool = False  # stand-in images from the emulator: every line says so
    notes: Sequence[Message] = ()  # notes of the plan, e.g. a size that was adjusted

    def seeds(self, distinct: bool) -> str:
        """The seeds of the saved images, in result order; each once when ``distinct`` (the
        images of one edit request share a seed)."""
        seeds = [str(r.seed) for r in self.results if r.seed is not None]
        return ", ".join(dict.fromkeys(seeds) if distinct else seeds)

    def rewritten(self) -> str | None:
        """The prompt as the service rewrote it (the first result that reports one)."""
        return next((r.actual_prompt for r in self.results if r.actual_prompt), None)


def rewrite_table(prompt: str, rewritten: str, lang: str) -> str:
    """The prompt as written and as the service rewrote it, side by side (a Markdown table)."""
    def cell(value: str) -> str:
        return escape_md(value).replace("\r", "").replace("\n", "<br>")

    head = f"| {text(lang, 'rw_original')} | {text(lang, 'rw_rewritten')} |\n|---|---|\n"
    return head + f"| {cell(prompt)} | {cell(rewritten)} |"


def group_failures(failures: Sequence[AliyunImageError], lang: str) -> list[tuple[str, int]]:
    """Distinct failure messages with how often each happened (a fan-out fails n times alike)."""
    counts: dict[str, int] = {}
    for failure in failures:
        line = failure.text(lang)
        counts[line] = counts.get(line, 0) + 1
    return list(counts.items())


def failures_md(failures: Sequence[AliyunImageError], lang: str) -> str:
    """One Markdown list item per distinct failure, with ×n when it happened n times."""
    return "\n".join(f"- ⚠️ {escape_md(line)}" + (f" ×{n}" if n > 1 else "")
                     for line, n in group_failures(failures, lang))


def _headline(o: Outcome, lang: str) -> str:
    """The first line of a batch that kept something, or was stopped."""
    ok, seeds = len(o.results), o.seeds(distinct=True)
    if o.stopped:
        kept = text(lang, "stopped", ok=ok, total=o.requested)
        return kept + (" " + text(lang, "seeds_model", seeds=seeds, model=o.model) if o.results else "")
    # More than asked happens (the service decides): say so rather than "3 of 1".
    key = "done_extra" if ok > o.requested else "done"
    return text(lang, key, ok=ok, total=o.requested, seeds=seeds, model=o.model)


def page_summary(o: Outcome, lang: str) -> str:
    """The Markdown status block shown under a panel's results when a run ends."""
    notes = "".join(f"\n- ℹ️ {escape_md(note.render(lang))}" for note in o.notes)
    if not o.results and not o.stopped:
        return (text(lang, "failed") + "\n" + failures_md(o.failures, lang) if o.failures else "") + notes
    note = f" {text(lang, 'offline_note')}" if o.offline else ""
    lines = [_headline(o, lang) + note]
    rewritten = o.rewritten()
    if rewritten:
        lines.append(rewrite_table(o.results[0].prompt, rewritten, lang))
    if o.failures:
        lines.append(text(lang, "partial", ok=len(o.results), total=o.requested, failed=len(o.failures)))
        lines.append(failures_md(o.failures, lang))
    return "\n\n".join(lines) + notes


def terminal_summary(o: Outcome, lang: str, *, quiet: bool = False) -> list[str]:
    """Plain lines for stderr after a CLI run. ``quiet`` keeps only what went wrong.

    The seeds are listed in the order of the printed paths (repeats included), so each file can
    be matched to its seed.
    """
    lines: list[str] = []
    if o.results and not quiet:
        lines.append(text(lang, "term_model_seeds", model=o.model, seeds=o.seeds(distinct=False)))
        rewritten = o.rewritten()
        if rewritten:
            lines.append(text(lang, "rewritten", text=rewritten))
    lines.extend(line for line, _ in group_failures(o.failures, lang))  # n identical failures: said once
    if o.failures and o.results:
        lines.append(text(lang, "term_tally", ok=len(o.results), failed=len(o.failures)))
    return lines

