"""Prompt rewriting in the open: after a run whose prompt the service rewrote (``prompt_extend``),
the status shows both wordings side by side (:func:`aliyun_image.generation.outcome.rewrite_table`) and
"Keep this wording" puts the rewritten prompt in the box, turns rewriting off and keeps the seed,
so the result can be reproduced (optionally running again at once).

The rewritten text is remembered per session and panel when a run ends (:class:`RewriteMemo`),
never taken from the page: a click can only bring back what the service told this session.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import gradio as gr

from .request_info import request_lang, request_session
from .runs import RunRegistry
from .strings import t
from .widgets import I18N, PRIVATE

# Queued, unlike PRIVATE's queue=False: only a queue call carries the session (see
# request_info.request_session), and the memo is per session. Quick and unlimited: no run waits on them.
SESSION_EVENT: dict[str, Any] = {"api_visibility": "private", "concurrency_limit": None, "show_progress": "hidden"}


@dataclass(frozen=True)
class Rewrite:
    """What a run's prompt became, and the seed of its first image."""

    prompt: str
    actual: str
    seed: int | None


class RewriteMemo:
    """The last rewrite per (session, panel), for the "keep this wording" buttons. Bounded: the
    oldest sessions are forgotten first."""

    def __init__(self, capacity: int = 4096):
        self._items: OrderedDict[tuple[str, str], Rewrite | None] = OrderedDict()
        self._lock = threading.Lock()
        self._capacity = capacity

    def remember(self, session: str | None, task: str, results: list[Any]) -> None:
        """Note how the run of ``task`` that produced ``results`` (store Records) was worded."""
        if not session:
            return  # an API call without a session has no page to offer anything in
        first = next((r for r in results if r.actual_prompt), None)
        value = Rewrite(first.prompt, first.actual_prompt, first.seed) if first else None
        with self._lock:
            self._items[(session, str(task))] = value
            self._items.move_to_end((session, str(task)))
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)

    def get(self, session: str | None, task: str) -> Rewrite | None:
        """The last rewrite of ``task`` in ``session``, if its last run had one."""
        with self._lock:
            return self._items.get((session or "", str(task)))


@dataclass
class RewriteRow:
    """The buttons under a panel's status, shown only after a rewritten run."""

    keep: gr.Button
    keep_run: gr.Button


def build_rewrite_row(prefix: str) -> RewriteRow:
    """The "keep this wording" buttons (hidden until a run was rewritten)."""
    with gr.Row():
        keep = gr.Button(I18N("rewrite.keep"), size="sm", visible=False, elem_id=f"{prefix}-keep-wording")
        keep_run = gr.Button(I18N("rewrite.keep_run"), size="sm", visible=False, elem_id=f"{prefix}-keep-run")
    return RewriteRow(keep, keep_run)


class RewriteHandlers:
    """The rewrite offer and the keep action, over a :class:`RewriteMemo` and the live runs."""

    def __init__(self, memo: RewriteMemo, running: RunRegistry):
        self.memo = memo
        self.running = running  # while a run of the panel goes on, nothing is offered

    def offer(self, task: str, request: gr.Request) -> tuple[Any, Any]:
        """Show the buttons when the panel's last finished run was rewritten."""
        session = request_session(request)
        show = self.running.get(session, task) is None and self.memo.get(session, task) is not None
        return gr.Button(visible=show), gr.Button(visible=show)

    def keep(self, task: str, status: str, request: gr.Request) -> tuple[Any, Any, Any, Any]:
        """Prompt box := the rewritten prompt, rewriting off, seed := the first image's seed."""
        lang = request_lang(request)
        found = self.memo.get(request_session(request), task)
        if found is None:
            return gr.skip(), gr.skip(), gr.skip(), (status or "") + "\n\nℹ️ " + t(lang, "rewrite.none")
        seed = found.seed if found.seed is not None else gr.skip()
        return found.actual, False, seed, (status or "") + "\n\nℹ️ " + t(lang, "rewrite.kept")

    def wire(self, task: str, panel: Any) -> None:
        """A run panel's offer and keep buttons (``task``: the panel's). The offer follows the
        status line; the keep buttons fill the form (and one runs again by pressing the panel's
        run button, so Stop and the key header work as for any run)."""
        row: RewriteRow = panel.rewrite
        o = panel.options
        prompt = panel.prompt if task == "t2i" else panel.instruction
        which = gr.State(task)
        panel.status.change(self.offer, which, [row.keep, row.keep_run], **SESSION_EVENT)
        targets = [prompt, o.extend, o.seed, panel.status]
        row.keep.click(self.keep, [which, panel.status], targets, **SESSION_EVENT)
        run_id = panel.run.elem_id
        row.keep_run.click(self.keep, [which, panel.status], targets, **SESSION_EVENT).then(
            None, None, None, js=f"() => {{ document.getElementById('{run_id}').click(); }}", **PRIVATE)
