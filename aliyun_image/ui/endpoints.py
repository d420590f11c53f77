"""The public API's parameter order, defined once: ``/generate``, ``/edit``, ``/fuse``.

Gradio names and orders an endpoint's parameters after its handler's signature, and passes the
values of the event's input widgets by position. This table is the one place that order is
written down: the wiring builds each event's input list from it, :func:`check_handler` makes a
handler whose signature drifted fail at start-up, and tests build calls by name with
:func:`call_args`. Changing it changes the public API (README documents it).

The same endpoints are the MCP tools (``python app.py --mcp``); :data:`REQUIRED` says which of
their parameters a caller must give, the rest may be left out (the API info and the tools'
``required`` lists are derived by Gradio from the handlers, see :func:`check_handler`).

The key is not a parameter: it travels as the ``X-DashScope-API-Key`` request header.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

_OPTIONS = ("quality", "model", "n", "size_mode", "size_preset", "width", "height", "seed", "negative",
            "prompt_extend", "watermark")
# Parameters added after the first release go last, with a default (OPTIONAL) that gradio_client
# fills in for a caller who does not know them: the 3.0 rewriting options, 2.1-pro's slots 4-10.
_REWRITE = ("extend_mode", "thinking")
EXTRA_SLOTS = tuple(f"image{k}" for k in range(4, 11))

PARAMS: dict[str, tuple[str, ...]] = {
    "generate": ("prompt", "negative", "quality", "model", "size", "n", "seed", "prompt_extend", "watermark",
                 *_REWRITE),
    "edit": ("image", "image_url", "instruction", *_OPTIONS, *_REWRITE),
    "fuse": ("image1", "image2", "image3", "instruction", *_OPTIONS, *_REWRITE, *EXTRA_SLOTS),
    # actions on stored results (ui/result_actions.py, ui/gallery_search.py): by record id / filter
    "variations": ("record_id",),
    "download_run": ("record_id",),
    "download_matching": ("query", "task", "model"),
    # batches and X/Y grids (ui/batch_api.py)
    "batch": ("prompts", "variables", "negative", "quality", "model", "size", "n", "seed", "prompt_extend",
              "watermark", *_REWRITE),
    "grid": ("prompt", "x", "y", "negative", "quality", "model", "size", "seed", "prompt_extend", "watermark",
             *_REWRITE),
}
# The defaults of the parameters a caller may leave out (the page's controls start at these values,
# which is what gradio_client fills in): the service's documented defaults (prompt_extend_mode
# direct, enable_thinking on), no extra images.
MODE_DEFAULT = "direct"
THINKING_DEFAULT = True
OPTIONAL: dict[str, Any] = {"extend_mode": MODE_DEFAULT, "thinking": THINKING_DEFAULT,
                            **{name: None for name in EXTRA_SLOTS},
                            # edit takes an upload or a URL, fusion two images or three: the handler
                            # refuses a call without what it needs, with a message that says so
                            "image": None, "image_url": None, "image3": None}
# What a caller must give. Every other parameter may be left out: its widget starts with a value
# (which gradio_client and the MCP bridge fill in) or it is in OPTIONAL.
REQUIRED: dict[str, tuple[str, ...]] = {
    "generate": ("prompt",), "edit": ("instruction",), "fuse": ("image1", "image2", "instruction"),
    "variations": ("record_id",), "download_run": ("record_id",), "download_matching": ("query",),
    "batch": ("prompts",), "grid": ("prompt", "x")}
KEY_HEADER = "X-DashScope-API-Key"  # a gr.Header parameter: Gradio maps x_dashscope_api_key to it
# Handler parameters Gradio fills itself (never part of the API's data).
_INJECTED = {"request", "x_dashscope_api_key", "progress"}


def call_args(endpoint: str, **values: Any) -> list[Any]:
    """The positional data of one call of ``endpoint`` from values given by parameter name.

    Every parameter must be given, and nothing else: a forgotten or misspelt name fails here,
    not as a shifted value on the server. Parameters of :data:`OPTIONAL` default to their value there.
    """
    names = PARAMS[endpoint]
    values = {**{n: OPTIONAL[n] for n in names if n in OPTIONAL}, **values}
    missing = [n for n in names if n not in values]
    unknown = sorted(set(values) - set(names))
    if missing or unknown:
        raise TypeError(f"/{endpoint}: missing {missing}, unknown {unknown}")
    return [values[n] for n in names]


def check_handler(fn: Callable[..., Any], endpoint: str) -> None:
    """Fail unless ``fn``'s parameters (less those Gradio injects) are ``endpoint``'s, in order,
    those of :data:`OPTIONAL` with their default there, and none of :data:`REQUIRED` defaulting
    to None.

    Gradio tells API clients and MCP agents a parameter may be left out when its widget starts
    with a value or the handler's default is None, and only then. A required parameter after an
    optional one needs a Python default all the same: it must be a value other than None ("").
    """
    params = inspect.signature(fn).parameters
    names = tuple(p for p in params if p not in _INJECTED)
    if names != PARAMS[endpoint]:
        raise TypeError(f"handler {fn.__name__} takes {names}, /{endpoint} is {PARAMS[endpoint]}")
    wrong = [n for n in names if n in OPTIONAL and params[n].default != OPTIONAL[n]]
    if wrong:
        raise TypeError(f"handler {fn.__name__}: {wrong} must default to {[OPTIONAL[n] for n in wrong]}")
    loose = [n for n in REQUIRED[endpoint] if params[n].default is None]
    if loose:
        raise TypeError(f"handler {fn.__name__}: {loose} are required, a None default makes them optional")
