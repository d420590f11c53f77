"""The budget cap: a run whose estimate would cross a budget is refused before any request.

Budgets (amounts in the price list's currency, CNY): daily and monthly (the local calendar),
and for a hosted demo the host key's spend per rolling hour, for the whole demo and per visitor
(the money form of :class:`~aliyun_image.quota.HourlyQuota`'s image counts). A run is refused
when spent + maybe billed + what runs in flight hold + its own estimate would go past one.

Runs in flight hold their estimate in the charge table (``hold`` rows, see
:mod:`aliyun_image.charges`), checked and written in one transaction: concurrent runs, in
threads or other processes (a second CLI, the app), cannot overshoot together. A model whose
price is unknown cannot be checked: refused under a budget unless explicitly allowed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from . import charges
from .cost import Estimate, money_text
from .errors import ZH, ValidationError
from .ledger import Spend, day_start, month_start, spent_rows, tally
from .store import ResultStore

HOUR = 3600.0

# kind: (code, zh name, en name, zh period, en period, flag, env, zh "when", en "when")
_KINDS = {
    "daily": ("Budget.Daily", "每日预算", "daily budget", "今天", "today", "--daily-budget",
              "ALIYUN_IMAGE_DAILY_BUDGET", "明天", "tomorrow"),
    "monthly": ("Budget.Monthly", "每月预算", "monthly budget", "本月", "this month", "--monthly-budget",
                "ALIYUN_IMAGE_MONTHLY_BUDGET", "下月", "next month"),
    "hourly": ("Budget.Hourly", "本演示每小时的花费上限", "the demo's hourly spending cap", "最近一小时",
               "in the last hour", "--host-hourly-budget", "ALIYUN_IMAGE_HOST_HOURLY_BUDGET", "稍后", "later"),
    "session": ("Budget.SessionHourly", "每位访客每小时的花费上限", "the hourly spending cap per visitor",
                "你最近一小时", "by you in the last hour", "--session-hourly-budget",
                "ALIYUN_IMAGE_SESSION_HOURLY_BUDGET", "稍后", "later"),
}


@dataclass(frozen=True)
class Budgets:
    """The caps that apply to a run (None: no cap)."""

    daily: Decimal | None = None
    monthly: Decimal | None = None
    hourly: Decimal | None = None  # hosted: the host key's spend per rolling hour, everyone
    session_hourly: Decimal | None = None  # hosted: the same per visitor
    allow_unpriced: bool = False

    @property
    def any(self) -> bool:
        """True when some cap is set."""
        return any(v is not None for v in (self.daily, self.monthly, self.hourly, self.session_hourly))

    def windows(self, now: float | None = None) -> list[tuple[str, Decimal, float]]:
        """(kind, limit, since) of each cap that is set."""
        t = time.time() if now is None else now
        out = [("daily", self.daily, day_start(t)), ("monthly", self.monthly, month_start(t)),
               ("hourly", self.hourly, t - HOUR), ("session", self.session_hourly, t - HOUR)]
        return [(k, limit, since) for k, limit, since in out if limit is not None]


def hold_budget(store: ResultStore, budgets: Budgets, est: Estimate, *, scope: str | None, owner: str | None = None,
                hosted: bool = False, now: float | None = None) -> int | None:
    """Refuse ``est`` if it would cross a budget, else hold it until :func:`release`.

    ``scope`` is the ``paid_by`` whose charges count (None: all, the local case); ``owner`` the
    visitor the per-visitor cap counts. Raises ValidationError (``Budget.*``) before any request.
    """
    if not budgets.any:
        return None
    total = est.total
    if total is None:
        if budgets.allow_unpriced:
            return None
        raise _unpriced(est, hosted)
    return int(store.charges(_check_and_hold, budgets, est, total, scope, owner, hosted, now))


def _check_and_hold(db: Any, budgets: Budgets, est: Estimate, total: Decimal, scope: str | None,
                    owner: str | None, hosted: bool, now: float | None) -> int:
    """In one transaction: the sums, the holds of runs in flight, the check, this run's hold."""
    windows = budgets.windows(now)
    rows = spent_rows(charges.rows(db, min(since for _, _, since in windows), paid_by=scope))
    holds = [h for h in charges.holds(db) if h["currency"] == est.currency and (scope is None or h["paid_by"] == scope)]
    for kind, limit, since in windows:
        mine = kind == "session"
        spent = tally(r for r in rows if r["created"] >= since and (not mine or r["owner"] == owner))
        flying = sum((Decimal(h["price"]) for h in holds if not mine or h["owner"] == owner), Decimal(0))
        if spent.total(est.currency) + flying + total > limit:
            raise _over(kind, limit, spent, flying, est, hosted)
    return charges.add(db, model=est.model, region=est.region, price=str(total), currency=est.currency,
                       state=charges.HOLD, owner=owner, paid_by=scope or "", code=charges.hold_code())


def release(store: ResultStore, hold: int | None) -> None:
    """The run that took ``hold`` ended: its own charges are recorded, so the hold goes."""
    if hold is not None:
        store.charges(charges.release, hold)


def _over(kind: str, limit: Decimal, spent: Spend, flying: Decimal, est: Estimate, hosted: bool) -> ValidationError:
    code, name_zh, name_en, when_zh, when_en, flag, env, wait_zh, wait_en = _KINDS[kind]
    cur = est.currency  # exact amounts: rounded ones could show a cost that does not cross the budget
    fly_zh = f"，进行中的运行已预留 {money_text(flying, cur, True)}" if flying else ""
    fly_en = f"; runs in progress hold {money_text(flying, cur, True)}" if flying else ""
    if hosted:
        todo_zh = "请减少张数、换用更便宜的模型，稍后再试，或填写你自己的 API Key。"
        todo_en = "Ask for fewer images or a cheaper model, try again later, or enter your own API key."
    else:
        todo_zh = f"请减少张数或换用更便宜的模型，{wait_zh}再试，或提高预算（{flag} / {env}）。"
        todo_en = (f"Ask for fewer images or a cheaper model, wait until {wait_en}, or raise the budget "
                   f"({flag} / {env}).")
    return ValidationError(
        f"本次运行会超出{name_zh} {money_text(limit, cur, True)}：{when_zh}已花费 {spent.text(ZH)}{fly_zh}；"
        f"本次{est.text(ZH, True)}。未发送任何请求。{todo_zh}",
        f"This run would cross {'the ' if kind in ('daily', 'monthly') else ''}{name_en} of "
        f"{money_text(limit, cur, True)}: spent {when_en} {spent.text('en')}{fly_en}; this run costs "
        f"{est.text('en', True)}. Nothing was sent. {todo_en}",
        code=code)


def _unpriced(est: Estimate, hosted: bool) -> ValidationError:
    if hosted:
        zh_do = "请换用有价格的模型，或填写你自己的 API Key。"
        en_do = "Pick a model with a price, or enter your own API key."
    else:
        zh_do = "请换用有价格的模型，或用 --allow-unpriced（ALIYUN_IMAGE_ALLOW_UNPRICED=1）明确允许。"
        en_do = ("Pick a model with a price, or allow it explicitly with --allow-unpriced "
                 "(ALIYUN_IMAGE_ALLOW_UNPRICED=1).")
    return ValidationError(
        f"已设置预算，但价格表中没有 {est.model} 的价格，无法检查本次是否超出预算。未发送任何请求。{zh_do}",
        f"A budget is set but the price list has no price for {est.model}, so this run cannot be checked against "
        f"it. Nothing was sent. {en_do}", code="Budget.UnknownPrice")
