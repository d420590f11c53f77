"""Lean per-session state (ui/sessions.py): a new session costs little, keeps its own state, and
the launched app uses it. The full measurement next to a bare Gradio app is
``python -m bench.session_memory``."""

from __future__ import annotations

import gc
import secrets
import tracemalloc

import gradio as gr
import pytest
import requests

from aliyun_image.ui import AppContext, AppOptions, build_demo
from aliyun_image.ui.layout import launch_kwargs
from aliyun_image.ui.sessions import LeanSessionState, LeanStateHolder, install

from .appserver import free_port


@pytest.fixture
def demo(clean_env):
    ctx = AppContext(AppOptions(hosted=True, offline=True, data_dir=str(clean_env)))
    try:
        yield build_demo(ctx)
    finally:
        ctx.close()


def _kib_per_session(demo, make, n: int = 6) -> float:
    make(demo)  # first-use caches out of the way
    keep = []
    gc.collect()
    tracemalloc.start(1)
    try:
        before = tracemalloc.get_traced_memory()[0]
        keep.extend(make(demo) for _ in range(n))
        gc.collect()
        return (tracemalloc.get_traced_memory()[0] - before) / 1024 / n
    finally:
        tracemalloc.stop()


def test_a_new_lean_session_is_small_and_keeps_no_page_copy(demo):
    from gradio.state_holder import SessionState

    lean = _kib_per_session(demo, LeanSessionState)
    stock = _kib_per_session(demo, SessionState)
    assert lean < 50, f"{lean:.1f} KiB per lean session (Gradio's own: {stock:.1f})"
    assert stock > 4 * lean  # if not, Gradio changed and the lean state no longer saves anything
    assert LeanSessionState(demo).config_values == {}


def test_each_session_keeps_its_own_state_and_no_input_copies(demo):
    state = next(b for b in demo.blocks.values() if isinstance(b, gr.State))
    box = next(b for b in demo.blocks.values() if isinstance(b, gr.Textbox))
    a, b = LeanSessionState(demo), LeanSessionState(demo)
    a[state._id] = ["a's value"]
    assert a[state._id] == ["a's value"]
    assert b[state._id] != ["a's value"]  # b gets the default, never a's
    a[box._id] = box
    a._update_value_in_config(box._id, "typed text")  # what Gradio does with every input value
    assert a.config_values == {} and list(a.components) == []


def test_the_launched_app_uses_lean_sessions_and_keeps_the_capacity(demo, clean_env):
    ctx = AppContext(AppOptions(hosted=True, offline=True, data_dir=str(clean_env), max_sessions=50))
    try:
        kwargs = launch_kwargs(ctx)
        demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                    **kwargs)
        try:
            holder = demo.server_app.state_holder
            assert isinstance(holder, LeanStateHolder) and holder.capacity == 50
            assert demo.state_holder is holder  # what Gradio's routes look sessions up in
            session = secrets.token_hex(6)
            r = requests.post(demo.local_url + "gradio_api/component_server", timeout=30,
                              json={"component_id": next(iter(demo.blocks)), "fn_name": "no_such_function",
                                    "data": None, "session_hash": session})
            assert r.status_code == 404
            assert isinstance(holder.session_data[session], LeanSessionState)
            assert install(demo.server_app)  # idempotent
        finally:
            demo.close()
    finally:
        ctx.close()


def test_an_idle_app_does_not_poll_its_queue_every_millisecond(demo):
    """Gradio's queue looks for work every 1 ms while it has none: about a tenth of a core per idle
    app (bench/idle_cpu.py: 6.2 CPU s a minute, ours 1.4). The app's queue polls at 20 ms."""
    from aliyun_image.ui.layout import PROGRESS_POLL_S, QUEUE_POLL_S

    queue = demo._queue
    assert queue.sleep_when_free == QUEUE_POLL_S and 0.01 <= QUEUE_POLL_S <= 0.05
    assert queue.progress_update_sleep_when_free == PROGRESS_POLL_S <= 0.1
