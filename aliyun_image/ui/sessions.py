"""Lean per-session state: what Gradio keeps for each browser session, minus the page copy.

Gradio keeps one ``SessionState`` per session hash (``app.state_holder``, up to
``state_session_capacity`` of them, which hosted mode sets from ``--max-sessions``). Stock Gradio
6.31 builds, for every new session, the full config of every block of the page
(``config_values``: props, API schemas; ~350 KiB for this page's 241 blocks) and then writes every
input and output value of the session into it. That copy serves one purpose only: Gradio's deep
links (``/gradio_api/deep_link``), which this app closes (:mod:`.http_guard`). It was also made for any
request that names a new session hash, a refused one (404) included.

:class:`LeanSessionState` is Gradio's ``SessionState`` without that copy: the session's
``gr.State`` values and its updated components (``state_data``, ``blocks_config``) are kept
exactly as before, so each visitor still sees only their own state; inputs (a key box included) are
no longer copied into the session. :func:`lean_sessions_lifespan` installs it at server start-up
through Gradio's documented ``app_kwargs={"lifespan": ...}`` hook (see :func:`.layout.launch_kwargs`).

If a Gradio upgrade changes the internals this relies on, :func:`install` leaves Gradio's own
state in place (logged) and nothing else changes; ``tests/test_sessions.py`` and
``python -m bench.session_memory`` notice.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

from gradio.state_holder import SessionState, StateHolder

log = logging.getLogger(__name__)


class LeanSessionState(SessionState):
    """A ``SessionState`` that keeps no config copy of the page (``config_values`` stays empty)."""

    def __init__(self, blocks: Any):
        # Gradio's __init__ fills config_values from the blocks present in ``blocks.blocks``:
        # give it none, so everything else it sets up (state, TTLs, the shallow config) stays its own.
        super().__init__(SimpleNamespace(default_config=blocks.default_config, blocks={}))  # type: ignore[arg-type]

    def __setitem__(self, key: int, value: Any) -> None:
        super().__setitem__(key, value)
        self.config_values.pop(key, None)

    def _update_config(self, key: int) -> None:
        """Not kept (only deep links read it)."""

    def _update_value_in_config(self, key: int, value: Any) -> None:
        """Not kept: the session's input and output values are not copied into the session."""


class LeanStateHolder(StateHolder):
    """Gradio's ``StateHolder`` (LRU of ``capacity`` sessions) whose new sessions are lean."""

    def __getitem__(self, session_id: str) -> SessionState:
        if session_id not in self.session_data:
            self.session_data[session_id] = LeanSessionState(self.blocks)
        return super().__getitem__(session_id)


def install(app: Any) -> bool:
    """Give a launched Gradio ``App`` lean session state; False (Gradio's own kept) if its
    internals are not the ones this was written for."""
    old: Any = getattr(app, "state_holder", None)
    if isinstance(old, LeanStateHolder):
        return True
    try:
        blocks = old.blocks
        LeanSessionState(blocks)  # fails here, not on a visitor's request, if Gradio changed
        holder = LeanStateHolder()
        holder.set_blocks(blocks)  # capacity = state_session_capacity; blocks.state_holder = holder
        with old.lock:
            holder.session_data.update(old.session_data)
            holder.time_last_used.update(old.time_last_used)
        app.state_holder = holder
    except Exception:  # a Gradio upgrade: keep its own state, which works, just heavier
        log.warning("lean session state not installed; Gradio keeps its own", exc_info=True)
        return False
    return True


@contextlib.asynccontextmanager
async def lean_sessions_lifespan(app: Any) -> AsyncIterator[None]:
    """``launch(app_kwargs={"lifespan": lean_sessions_lifespan})``: install at start-up, before any
    request is served."""
    install(app)
    yield
