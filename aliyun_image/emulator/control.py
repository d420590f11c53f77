"""The out-of-process control surface under ``/_emulator/`` (not part of DashScope's API).

* ``POST /_emulator/control`` with ``{"action": ..., **kwargs}``; actions ``fail``, ``fault``,
  ``download_fault``, ``task_outcome``, ``random_faults`` (same keyword arguments as the
  Python methods), ``latency`` (``{"latency": 0.5}`` or ``[0.2, 0.8]``), ``set`` (any of
  ``latency``, ``task_delay``, ``url_ttl``, ``policy_ttl``) and ``clear``. For ``fail``, a raw
  body may be given as ``body`` (text) or ``body_base64``. HttpReply: ``{"ok": true}``.
* ``GET /_emulator/requests``: every recorded request, API key redacted (``Bearer ***``).
* ``DELETE /_emulator/requests``: same as ``clear``.
* ``GET /_emulator/health``: ``{"ok": true, "base_url": ...}``.

Control requests are not recorded.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING

from .replies import HttpReply, error_reply, json_reply

if TYPE_CHECKING:
    from .server import Emulator

SETTABLE = ("latency", "task_delay", "url_ttl", "policy_ttl")


def _latency(value):
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return (float(value[0]), float(value[1]))
    return float(value)


def _apply(emu: Emulator, action: str, kw: dict) -> None:
    if action == "fail":
        if "body_base64" in kw:
            kw["body"] = base64.b64decode(kw.pop("body_base64"), validate=True)
        emu.fail(**kw)
    elif action == "fault":
        emu.fault(**kw)
    elif action == "download_fault":
        emu.download_fault(**kw)
    elif action == "task_outcome":
        emu.task_outcome(**kw)
    elif action == "random_faults":
        emu.random_faults(**kw)
    elif action == "latency":
        if set(kw) - {"latency", "value"}:
            raise TypeError("latency takes 'latency' (seconds or [low, high])")
        emu.latency = _latency(kw.get("latency", kw.get("value", 0.0)))
    elif action == "set":
        unknown = set(kw) - set(SETTABLE)
        if unknown:
            raise TypeError(f"cannot set {', '.join(sorted(unknown))}; settable: {', '.join(SETTABLE)}")
        for name, value in kw.items():
            setattr(emu, name, _latency(value) if name == "latency" else float(value))
    elif action == "clear":
        emu.clear()
    else:
        raise ValueError(f"unknown action {action!r}")


def handle(emu: Emulator, method: str, path: str, body: bytes) -> HttpReply:
    """Answer one ``/_emulator/...`` request."""
    if path == "/_emulator/requests" and method in ("GET", "HEAD"):
        return json_reply([r.public() for r in list(emu.requests)])
    if path == "/_emulator/requests" and method == "DELETE":
        emu.clear()
        return json_reply({"ok": True})
    if path == "/_emulator/health" and method in ("GET", "HEAD"):
        return json_reply({"ok": True, "base_url": emu.base_url, "requests": len(emu.requests)})
    if path == "/_emulator/control" and method == "POST":
        try:
            data = json.loads(body.decode("utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("action"), str):
                raise ValueError("body must be a JSON object with an 'action'")
            action = data.pop("action")
            _apply(emu, action, data)
        except (ValueError, TypeError, UnicodeDecodeError, binascii.Error, RecursionError) as exc:
            return error_reply(400, "InvalidParameter", f"Bad control request: {exc}")
        return json_reply({"ok": True})
    return error_reply(404, "NotFound", f"The requested path {path} was not found.")
