"""Hourly image limits that protect a host's bill in the shared demo.

When a hosted demo lets visitors without their own key use the host's key, each visitor
session and the whole demo get a budget of images per rolling hour. Visitors who bring their
own key are not limited here (their bill, their limits).
"""

from __future__ import annotations

import threading
import time
from collections import deque

from .errors import ValidationError

WINDOW = 3600.0


class HourlyQuota:
    """Sliding-window counters: ``per_session`` and ``total`` images per hour (0 = unlimited)."""

    def __init__(self, per_session: int, total: int, clock=time.monotonic):
        self.per_session = per_session
        self.total = total
        self._clock = clock
        self._lock = threading.Lock()
        self._all: deque[float] = deque()
        self._by: dict[str, deque[float]] = {}

    def _trim(self, q: deque[float], now: float) -> None:
        while q and q[0] <= now - WINDOW:
            q.popleft()

    def take(self, session: str, n: int) -> None:
        """Reserve ``n`` images for ``session`` or raise ValidationError saying when to retry."""
        with self._lock:
            now = self._clock()
            mine = self._by.setdefault(session, deque())
            self._trim(mine, now)
            self._trim(self._all, now)
            for q, limit, who in ((mine, self.per_session, "session"), (self._all, self.total, "demo")):
                if limit and len(q) + n > limit:
                    left = max(0, limit - len(q))
                    wait = int((q[0] + WINDOW - now) // 60) + 1 if q else 60
                    if who == "session":
                        zh = (f"本演示使用主办方的 API Key，每位访客每小时最多 {limit} 张（本小时还剩 {left} 张）。"
                              f"请约 {wait} 分钟后再试，或在上方填写你自己的 API Key。")
                        en = (f"This demo uses the host's API key: at most {limit} images per visitor per hour "
                              f"({left} left this hour). Try again in about {wait} min, or enter your own API key above.")
                    else:
                        zh = (f"本演示本小时的共享额度（{limit} 张）已用完。请约 {wait} 分钟后再试，或填写你自己的 API Key。")
                        en = (f"The demo's shared budget ({limit} images this hour) is used up. Try again in about "
                              f"{wait} min, or enter your own API key.")
                    raise ValidationError(zh, en, code="Quota.Exceeded")
            mine.extend([now] * n)
            self._all.extend([now] * n)

    def refund(self, session: str, n: int) -> None:
        """Give back ``n`` reserved images that were not produced (failures are not charged)."""
        with self._lock:
            for q in (self._by.get(session), self._all):
                for _ in range(min(n, len(q) if q is not None else 0)):
                    q.pop()

    def used(self, session: str) -> int:
        """Images ``session`` used in the last hour."""
        with self._lock:
            q = self._by.get(session, deque())
            self._trim(q, self._clock())
            return len(q)
