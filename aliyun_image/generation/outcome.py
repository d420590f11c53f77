"""What a finished batch says, for the web page and for the terminal, in the reader's language.

One builder for both front ends: they count the same things (saved, requested, failed, kept
after Stop), pick the same rewritten prompt and group identical failures the same way. Only the
shape differs: the page gets one Markdown block, the terminal a few plain lines for stderr.
Knows nothing about Gradio or argparse.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import AliyunImageError
from ..i18n import Message, render, t
from ..storage import Record

#: A note of the plan for the user (a size that was adjusted...).
Note = Message


def text(lang: str, key: str, **fmt: object) -> str:
    """Summary text ``run.<key>`` of the catalogue in ``lang``."""
    return t(lang, "run." + key, **fmt)


def note_text(lang: str, note: Note) -> str:
    """A plan note in ``lang``."""
    return render(lang, note)


# An http(s) URL in a message: ASCII URL characters only, so the text after it (a CJK sentence,
# "（" or "。") is never taken into the link the way Markdown's bare-URL linking would.
_URL = re.compile(r"https?://[A-Za-z0-9\-._~:/?#@!$&'()*+,;=%]+", re.I)
_SENTENCE_END = ".,;:!?)'"  # punctuation after a URL belongs to the sentence


def _escape(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]<>#|~])", r"\\\1", text)


def escape_md(value: str) -> str:
    """Escape Markdown in service text, so ``1000*700`` is not read as emphasis; URLs become
    explicit links (``<https://...>``) that end where the URL ends."""
    text, out, last = str(value), [], 0
    for m in _URL.finditer(text):
        url = m.group(0).rstrip(_SENTENCE_END)
        if url.count("(") > url.count(")") and m.group(0)[len(url):].startswith(")"):
            url += ")"  # a URL with its own parentheses keeps its closing one
        out += [_escape(text[last:m.start()]), f"<{url}>"]
        last = m.start() + len(url)
    return "".join(out) + _escape(text[last:])


@dataclass(frozen=True)
class Outcome:
    """What one batch came to: what was asked, what was saved, what failed, and how it ended."""

    requested: int
    model: str
    results: Sequence[Record]
    failures: Sequence[AliyunImageError]
    stopped: bool = False  # the user pressed Stop: what is shown was kept, not all that was asked
    offline: bool = False  # stand-in images from the emulator: every line says so
    notes: Sequence[Note] = ()  # notes of the plan, e.g. a size that was adjusted

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
    notes = "".join(f"\n- ℹ️ {escape_md(note_text(lang, note))}" for note in o.notes)
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

