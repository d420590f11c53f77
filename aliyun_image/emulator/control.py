"""The out-of-process control surface under ``/_emulator/`` (not part of DashScope's API).

* ``POST /_emulator/control`` with ``{"action": ..., **kwargs}``; actions ``fail``, ``fault``,
  ``download_fault``, ``task_outcome``, ``random_faults`` (same keyword arguments as the
  Python methods), ``latency`` (``{"latency": 0.5}`` or ``[0.2, 0.8]``), ``set`` (any of
  ``latency``, ``image_latency``, ``task_delay``, ``url_ttl``, ``policy_ttl``, ``region``, ``task_limit`` and
  ``limit_retry_after``, the last two ``null`` for none) and ``clear``. For ``fail``, a raw
  body may be given as ``body`` (text) or ``body_base64``. Reply: ``{"ok": true}``.
* ``GET /_emulator/requests``: every recorded request, API key redacted (``Bearer ***``).
* ``DELETE /_emulator/requests``: same as ``clear``.
* ``GET /_emulator/health``: ``{"ok": true, "base_url": ..., "region": ..., "requests": n,
  "in_flight": generations inside their latency now, "throttled": 429s sent for ``task_limit``}``.

Control requests are not recorded.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .regions import region_name
from .replies import HttpReply, error_reply, json_reply

if TYPE_CHECKING:
    from .state import EmulatorState, Latency

SETTABLE = ("latency", "task_delay", "url_ttl", "policy_ttl", "region", "task_limit", "limit_retry_after",
            "image_latency")


def _latency(value: Any) -> Latency:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return (float(value[0]), float(value[1]))
    return float(value)


def _fail(state: EmulatorState, kw: dict[str, Any]) -> None:
    if "body_base64" in kw:
        kw["body"] = base64.b64decode(kw.pop("body_base64"), validate=True)
    state.faults.fail(**kw)


def _set_latency(state: EmulatorState, kw: dict[str, Any]) -> None:
    if set(kw) - {"latency", "value"}:
        raise TypeError("latency takes 'latency' (seconds or [low, high])")
    state.latency = _latency(kw.get("latency", kw.get("value", 0.0)))


def _set(state: EmulatorState, kw: dict[str, Any]) -> None:
    unknown = set(kw) - set(SETTABLE)
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))}; settable: {', '.join(SETTABLE)}")
    for name, value in kw.items():
        if name == "region":
            state.region = region_name(str(value))
        elif name == "task_limit":
            state.task_limit = None if value is None else _positive_int(value)
        elif name == "limit_retry_after":
            state.limit_retry_after = None if value is None else max(0.0, float(value))
        else:
            setattr(state, name, _latency(value) if name == "latency" else float(value))


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("task_limit must be a positive integer or null")
    return value


def _clear(state: EmulatorState, kw: dict[str, Any]) -> None:
    del kw  # clear takes no arguments; extra keys have always been ignored
    state.clear()


# action -> what it does; keyword arguments as the Emulator methods of the same name take them
ACTIONS: dict[str, Callable[[EmulatorState, dict[str, Any]], None]] = {
    "fail": _fail,
    "fault": lambda state, kw: state.faults.fault(**kw),
    "download_fault": lambda state, kw: state.faults.download_fault(**kw),
    "task_outcome": lambda state, kw: state.faults.task_outcome(**kw),
    "random_faults": lambda state, kw: state.faults.set_random(**kw),
    "latency": _set_latency,
    "set": _set,
    "clear": _clear,
}


def _apply(state: EmulatorState, action: str, kw: dict[str, Any]) -> None:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    ACTIONS[action](state, kw)


def handle(state: EmulatorState, method: str, path: str, body: bytes) -> HttpReply:
    """Answer one ``/_emulator/...`` request."""
    if path == "/_emulator/requests" and method in ("GET", "HEAD"):
        return json_reply([r.public() for r in list(state.requests)])
    if path == "/_emulator/requests" and method == "DELETE":
        state.clear()
        return json_reply({"ok": True})
    if path == "/_emulator/health" and method in ("GET", "HEAD"):
        return json_reply({"ok": True, "base_url": state.base_url, "region": state.region,
                           "requests": len(state.requests), "in_flight": state.in_flight,
                           "throttled": state.throttled})
    if path == "/_emulator/control" and method == "POST":
        try:
            data = json.loads(body.decode("utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("action"), str):
                raise ValueError("body must be a JSON object with an 'action'")
            action = data.pop("action")
            _apply(state, action, data)
        except (ValueError, TypeError, UnicodeDecodeError, binascii.Error, RecursionError) as exc:
            return error_reply(400, "InvalidParameter", f"Bad control request: {exc}")
        return json_reply({"ok": True})
    return error_reply(404, "NotFound", f"The requested path {path} was not found.")
