"""Fault injection: scripted failures the emulator plays back, one request at a time.

Each endpoint has a FIFO of :class:`Fault` entries; a request to that endpoint takes the
head entry (decrementing its ``times``). Task outcomes are a separate FIFO consumed when a
task is *created*. Random faults (load tests) apply to ``generation`` only, after any
scripted fault.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass

ENDPOINTS = ("generation", "task_create", "task_get", "task_cancel", "policy", "oss", "download", "other")

#: kinds that replace the reply / change the connection before the normal handler runs
PRE_KINDS = ("fail", "reset", "hang", "missing_fields", "expired", "not_image")
#: kinds that run the normal handler and then mangle how its reply is sent
POST_KINDS = ("truncate", "slow")
KINDS = PRE_KINDS + POST_KINDS

DEFAULT_500 = "An internal error has occured, please try again later or contact service support."

# What random_faults picks from: (status, code, message, Retry-After).
RANDOM_CHOICES = (
    (500, "InternalError", DEFAULT_500, None),
    (503, "ModelUnavailable", "Model is unavailable, please try again later.", None),
    (429, "Throttling.RateQuota", "Requests rate limit exceeded, please try again later.", 1.0),
)

TASK_OUTCOMES = ("FAILED", "UNKNOWN", "CANCELED")


@dataclass
class Fault:
    """One scripted failure. Fields not used by ``kind`` are ignored."""

    kind: str
    times: int = 1
    status: int = 500
    code: str = "InternalError"
    message: str = DEFAULT_500
    retry_after: float | None = None
    body: bytes | None = None
    content_type: str = "application/json"
    seconds: float = 0.0


@dataclass
class TaskOutcome:
    """How the next created task ends instead of SUCCEEDED."""

    status: str
    code: str = "InternalError"
    message: str = DEFAULT_500
    times: int = 1


class FaultBook:
    """Thread-safe store of pending faults, task outcomes and the random-fault setting."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, deque[Fault]] = {e: deque() for e in ENDPOINTS}
        self._outcomes: deque[TaskOutcome] = deque()
        self._random_rate = 0.0
        self._random = random.Random(0)

    def add(self, endpoint: str, fault: Fault) -> None:
        """Queue ``fault`` for the next ``fault.times`` requests of ``endpoint``."""
        if endpoint not in self._queues:
            raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {', '.join(ENDPOINTS)}")
        if fault.kind not in KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}; expected one of {', '.join(KINDS)}")
        if int(fault.times) < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._queues[endpoint].append(fault)

    def take(self, endpoint: str) -> Fault | None:
        """The fault for this request of ``endpoint``, or None (random faults included)."""
        with self._lock:
            q = self._queues.get(endpoint)
            if q:
                head = q[0]
                head.times -= 1
                if head.times <= 0:
                    q.popleft()
                return head
            if endpoint == "generation" and self._random_rate > 0 and self._random.random() < self._random_rate:
                status, code, message, retry = self._random.choice(RANDOM_CHOICES)
                return Fault("fail", status=status, code=code, message=message, retry_after=retry)
        return None

    # --- the scripting API (Emulator and the control surface expose these) ---------------------
    def fail(self, endpoint: str = "generation", *, status: int = 500, code: str = "InternalError",
             message: str = DEFAULT_500, times: int = 1, retry_after: float | None = None,
             body: bytes | str | None = None, content_type: str = "application/json") -> None:
        """Answer the next ``times`` requests of ``endpoint`` with an error.

        By default a DashScope JSON error (``code``, ``message``); with ``body`` that raw body
        (text is sent as UTF-8) and ``content_type`` instead (e.g. an HTML 502 from a proxy).
        ``retry_after`` adds a ``Retry-After`` header.
        """
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            raise ValueError("status must be an HTTP status code")
        raw = body.encode("utf-8") if isinstance(body, str) else body
        self.add(endpoint, Fault("fail", int(times), status, code, message,
                                 None if retry_after is None else float(retry_after), raw, content_type))

    def fault(self, kind: str, endpoint: str = "generation", *, times: int = 1, seconds: float = 0.0) -> None:
        """Misbehave on the next ``times`` requests of ``endpoint``.

        ``reset``: read the request, close the socket without a reply. ``hang``: wait
        ``seconds``, then answer normally. ``missing_fields``: HTTP 200 with a request_id but
        without ``output.choices`` / ``output.results`` / ``output.task_id`` / ``data``.
        The download kinds (``truncate``, ``slow``, ``expired``, ``not_image``) work here too.
        """
        if kind == "fail" or kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; use fail() for error replies")
        self.add(endpoint, Fault(kind, int(times), seconds=float(seconds)))

    def download_fault(self, kind: str, *, times: int = 1, seconds: float = 2.0) -> None:
        """Misbehave on the next ``times`` result downloads.

        ``truncate``: full Content-Length, half the bytes, then close. ``slow``: the body in
        ~10 chunks spread over ``seconds``. ``expired``: 403 OSS XML ``AccessDenied``
        "Request has expired.". ``not_image``: 200 ``text/html``.
        """
        self.fault(kind, "download", times=times, seconds=seconds)

    def task_outcome(self, status: str, *, code: str = "InternalError", message: str = DEFAULT_500,
                     times: int = 1) -> None:
        """Make the next ``times`` created tasks end as ``FAILED`` (with code/message),
        ``UNKNOWN`` or ``CANCELED`` instead of ``SUCCEEDED``."""
        self.add_outcome(TaskOutcome(str(status).upper(), code, message, int(times)))

    # --- queues --------------------------------------------------------------------------------
    def add_outcome(self, outcome: TaskOutcome) -> None:
        """Make the next ``outcome.times`` created tasks end as ``outcome.status``."""
        if outcome.status not in TASK_OUTCOMES:
            raise ValueError(f"task outcome must be one of {', '.join(TASK_OUTCOMES)}")
        if int(outcome.times) < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._outcomes.append(outcome)

    def take_outcome(self) -> TaskOutcome | None:
        """The outcome for a task being created now, or None (it will succeed)."""
        with self._lock:
            if not self._outcomes:
                return None
            head = self._outcomes[0]
            head.times -= 1
            if head.times <= 0:
                self._outcomes.popleft()
            return head

    def set_random(self, rate: float, seed: int = 0) -> None:
        """Fail each generation request with probability ``rate`` (0 turns it off)."""
        rate = float(rate)
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be within 0..1")
        with self._lock:
            self._random_rate = rate
            self._random = random.Random(seed)

    def clear(self) -> None:
        """Forget every pending fault and outcome (random faults are switched off too)."""
        with self._lock:
            for q in self._queues.values():
                q.clear()
            self._outcomes.clear()
            self._random_rate = 0.0
