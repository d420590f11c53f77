"""The memo behind "reuse of #9" (issue 18.5): "Reuse parameters" fills a form with a stored result's
parameters; the run that follows from that form is a reuse of it when it kept the result's prompt or its seed.

Remembered on the server per (session, panel), like :class:`.rewrite.RewriteMemo`: the page cannot claim a
parent, and the service still records only a parent the run's owner may see (:mod:`aliyun_image.storage.lineage`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from ..enums import Relation
from ..jobs import Parent, clean_text
from ..storage import Record


@dataclass(frozen=True)
class _Reused:
    id: int
    prompt: str
    seed: int | None


class ReuseMemo:
    """The result whose parameters a (session, panel) form holds since "Reuse parameters". Bounded: the oldest
    sessions are forgotten first."""

    def __init__(self, capacity: int = 4096):
        self._items: OrderedDict[tuple[str, str], _Reused] = OrderedDict()
        self._lock = threading.Lock()
        self._capacity = capacity

    def remember(self, session: str | None, task: str, rec: Record) -> None:
        """The form of ``task`` in ``session`` now holds ``rec``'s parameters."""
        if not session:
            return
        with self._lock:
            self._items[(session, str(task))] = _Reused(rec.id, rec.prompt, rec.seed)
            self._items.move_to_end((session, str(task)))
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)

    def with_parents(self, session: str | None, task: str, prompt: str, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` for a run of ``task``, with "reuse of #9" among its parents when the form still holds
        #9's prompt or seed; a run that kept neither ends the memo (the form is the user's own again)."""
        if not session:
            return options
        with self._lock:
            found = self._items.get((session, str(task)))
            if found is None:
                return options
            kept = clean_text(prompt) == found.prompt or (found.seed is not None and _seed(options) == found.seed)
            if not kept:
                del self._items[(session, str(task))]
                return options
        return {**options, "parents": [*options.get("parents", ()), Parent(found.id, Relation.REUSE)]}


def _seed(options: dict[str, Any]) -> int | None:
    try:
        return int(float(options.get("seed")))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
