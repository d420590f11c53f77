"""Async tasks (protocol section 4): a clock-driven PENDING -> RUNNING -> final life cycle.

A task's state is a pure function of the time since creation (PENDING for the first third of
``task_delay``, RUNNING until ``task_delay``, then its outcome), so polling needs no
background thread. Only cancelling changes a task after creation.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

from .faults import TaskOutcome
from .oss import CST
from .validate import ImageOrder


def cst_time(ts: float) -> str:
    """``YYYY-MM-DD HH:mm:ss.SSS`` in UTC+8, the service's timestamp format."""
    dt = datetime.fromtimestamp(ts, CST)
    return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{dt.microsecond // 1000:03d}"


def extended_prompt(prompt: str) -> str:
    """A visibly rewritten prompt, standing in for the service's prompt extension."""
    if any("\u4e00" <= ch <= "\u9fff" for ch in prompt):
        return prompt.rstrip("。.") + "。画面细节丰富，光影自然柔和，构图均衡，高清画质，色彩和谐。"
    return prompt.rstrip(". ") + (". Rich detail, soft natural lighting, balanced composition, high resolution, "
                                  "harmonious colours.")


@dataclass
class AsyncTask:
    """One async task. Times: ``created`` is monotonic (drives the state), ``submitted`` wall-clock."""

    id: str
    order: ImageOrder
    tokens: list[str]
    created: float
    submitted: float
    delay: float
    outcome: TaskOutcome | None = None
    canceled_at: float | None = None  # wall-clock
    url_expires_base: float | None = field(default=None)  # wall time the result URLs were minted
    usage: dict = field(default_factory=dict)  # 3.0-line tasks: the usage their finished poll reports


class TaskStore:
    """Tasks by id, bounded (the oldest are forgotten: polling them then says UNKNOWN)."""

    def __init__(self, capacity: int = 20_000):
        self.capacity = capacity
        self._tasks: OrderedDict[str, AsyncTask] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, order: ImageOrder, tokens: list[str], delay: float, outcome: TaskOutcome | None) -> AsyncTask:
        """Register a new task that ends ``delay`` seconds from now."""
        task = AsyncTask(str(uuid.uuid4()), order, tokens, time.monotonic(), time.time(), max(0.0, delay), outcome)
        with self._lock:
            self._tasks[task.id] = task
            while len(self._tasks) > self.capacity:
                self._tasks.popitem(last=False)
        return task

    def get(self, task_id: str) -> AsyncTask | None:
        """The task, or None if unknown or forgotten."""
        with self._lock:
            return self._tasks.get(task_id)

    @staticmethod
    def status(task: AsyncTask, now: float | None = None) -> str:
        """Current ``task_status`` of ``task``."""
        if task.canceled_at is not None:
            return "CANCELED"
        elapsed = (time.monotonic() if now is None else now) - task.created
        if elapsed < task.delay / 3:
            return "PENDING"
        if elapsed < task.delay:
            return "RUNNING"
        return task.outcome.status if task.outcome else "SUCCEEDED"

    def cancel(self, task_id: str) -> bool:
        """Cancel a PENDING task; False if unknown or no longer PENDING (as the service)."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None or self.status(task) != "PENDING":
                return False
            task.canceled_at = time.time()
            return True

    def view(self, task: AsyncTask, url_for) -> dict:
        """The ``output`` (and ``usage``) of a poll reply; ``url_for(token, now)`` mints result URLs."""
        state = self.status(task)
        out: dict = {"task_id": task.id, "task_status": state}
        if state == "UNKNOWN":
            return {"output": out}
        out["submit_time"] = cst_time(task.submitted)
        n = len(task.tokens)
        if state == "PENDING":
            return {"output": out}
        if state == "CANCELED" and task.canceled_at is not None:
            out["end_time"] = cst_time(task.canceled_at)
            return {"output": out}
        out["scheduled_time"] = cst_time(task.submitted + task.delay / 3)
        if state == "RUNNING":
            out["task_metrics"] = {"TOTAL": n, "SUCCEEDED": 0, "FAILED": 0}
            return {"output": out}
        out["end_time"] = cst_time(task.submitted + task.delay)
        if state == "FAILED":
            out["code"] = task.outcome.code if task.outcome else "InternalError"
            out["message"] = task.outcome.message if task.outcome else ""
            out["task_metrics"] = {"TOTAL": n, "SUCCEEDED": 0, "FAILED": n}
            return {"output": out}
        if state != "SUCCEEDED":  # an injected CANCELED outcome
            return {"output": out}
        with self._lock:
            # Mint URLs once, so every poll returns the same (still valid) links.
            if task.url_expires_base is None:
                task.url_expires_base = time.time()
            base = task.url_expires_base
        order = task.order
        results = []
        for token in task.tokens:
            item = {"orig_prompt": order.prompt}
            if order.prompt_extend:
                item["actual_prompt"] = extended_prompt(order.prompt)
            item["url"] = url_for(token, base)
            results.append(item)
        out["results"] = results
        out["task_metrics"] = {"TOTAL": n, "SUCCEEDED": n, "FAILED": 0}
        return {"output": out, "usage": {"image_count": n}}
