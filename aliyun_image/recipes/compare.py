"""Comparing two results' recipes (issue 18.4): which fields differ, and a word diff of two prompts.

Plain data, no Gradio: :func:`recipe_diff` lists the fields a person compares (task, model, size, seed,
prompt, rewriting, negative prompt...) with both values; :func:`word_diff` says which words of two prompts are
shared, only in the first or only in the second. A Chinese prompt has no spaces, so each CJK character is a
word of its own; Latin words, numbers and punctuation are words too, and whitespace is kept as it was.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from .reuse import Reusable

# A word: letters/digits (with ' and -), one CJK or other symbol character, or a run of whitespace.
_WORD = re.compile(r"[A-Za-z0-9_]+(?:['\-][A-Za-z0-9_]+)*|\s+|.", re.S)
MAX_WORDS = 4000  # a prompt is at most a few thousand characters; anything longer is compared as is
# Up to this many words a side, the exact diff (difflib without its "junk" heuristic: ~0.05 s in the worst
# case, two random strings of a few characters repeated); beyond, the heuristic keeps it to milliseconds (an
# exact diff of two 4,000-word texts can take seconds: a visitor must not be able to hold a worker that long).
EXACT_WORDS = 300


@dataclass(frozen=True)
class FieldDiff:
    """One field of two recipes: its name (a key of the ``[ui.record]``-like tables), both values."""

    name: str
    a: Any
    b: Any

    @property
    def same(self) -> bool:
        """True when both recipes have the same value."""
        return self.a == self.b

    @property
    def worded(self) -> bool:
        """True when the field is a text (:data:`TEXT_FIELDS`) given on both sides and they differ: shown
        word by word (:func:`word_diff`), with a legend for what only one side has."""
        return self.name in TEXT_FIELDS and not self.same and bool(self.a) and bool(self.b)


TEXT_FIELDS = ("prompt", "negative", "actual")  # the prompts (the user's, the negative, the rewritten one)


def _rewriting(rec: Reusable) -> tuple[bool, Any]:
    p = rec.params
    return bool(p.get("prompt_extend")), p.get("prompt_extend_mode")


def recipe_diff(a: Reusable, b: Reusable) -> list[FieldDiff]:
    """The fields of two recipes in the order a person reads them, each with both values (``size`` as
    ``W*H``; ``prompt_extend`` on/off, ``mode`` the rewriting mode sent, ``actual`` the rewritten prompt)."""
    def size(rec: Reusable) -> str:
        return str(getattr(rec, "size", "") or rec.params.get("size") or "")

    def actual(rec: Reusable) -> str:
        return str(getattr(rec, "actual_prompt", None) or "")

    return [
        FieldDiff("task", a.task, b.task),
        FieldDiff("model", a.model, b.model),
        FieldDiff("size", size(a), size(b)),
        FieldDiff("seed", a.seed, b.seed),
        FieldDiff("prompt", a.prompt, b.prompt),
        FieldDiff("negative", a.negative, b.negative),
        FieldDiff("prompt_extend", _rewriting(a)[0], _rewriting(b)[0]),
        FieldDiff("mode", _rewriting(a)[1] or "", _rewriting(b)[1] or ""),
        FieldDiff("actual", actual(a), actual(b)),
        FieldDiff("watermark", bool(a.params.get("watermark")), bool(b.params.get("watermark"))),
    ]


def words(text: str) -> list[str]:
    """``text`` as words (see the module docstring); joined back they are ``text``."""
    return _WORD.findall(text or "")


def word_diff(a: str, b: str) -> list[tuple[str, str]]:
    """``(kind, text)`` pieces that rebuild both prompts: ``"same"`` in both, ``"a"`` only in ``a``, ``"b"``
    only in ``b`` (a changed stretch gives its ``a`` piece, then its ``b`` piece)."""
    wa, wb = words(a), words(b)
    if len(wa) > MAX_WORDS or len(wb) > MAX_WORDS:
        return [("same", a)] if a == b else [("a", a), ("b", b)]
    out: list[tuple[str, str]] = []

    def add(kind: str, text: str) -> None:
        if not text:
            return
        if out and out[-1][0] == kind:
            out[-1] = (kind, out[-1][1] + text)
        else:
            out.append((kind, text))

    exact = max(len(wa), len(wb)) <= EXACT_WORDS
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, wa, wb, autojunk=not exact).get_opcodes():
        if op == "equal":
            add("same", "".join(wa[i1:i2]))
        else:
            add("a", "".join(wa[i1:i2]))
            add("b", "".join(wb[j1:j2]))
    return out
