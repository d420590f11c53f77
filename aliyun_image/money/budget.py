"""The budget cap: a run whose estimate would cross a budget is refused before any request.

Budgets are amounts counted in the currency of the run they check: CNY and USD are never added,
so a budget of 5 caps ¥5 of CNY-priced spend and $5 of USD-priced spend (Singapore's 3.0-line
prices) each on its own, and a refusal names its amounts in that currency. Daily and monthly (the local calendar),
and for a hosted demo the host key's spend per rolling hour, for the whole demo and per visitor
(the money form of :class:`~aliyun_image.money.quota.HourlyQuota`'s image counts). A run is refused
when spent + maybe billed + what runs in flight hold + its own estimate would go past one.

Runs in flight hold their estimate in the charge table (``hold`` rows, see
:mod:`aliyun_image.storage.charges`), checked and written in one transaction: concurrent runs, in
threads or other processes (a second CLI, the app), cannot overshoot together. A model whose
price is unknown cannot be checked: refused under a budget unless explicitly allowed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..storage import charges
from ..storage.charges import ChargeBook
from .estimate import Estimate, money_text
from ..enums import Payer
from ..errors import ValidationError
from ..i18n import msg
from .ledger import Spend, day_start, month_start, spent_rows, tally
from ..storage import ResultStore

HOUR = 3600.0

# kind: (error code, CLI flag, environment variable); its words are the catalogue's
# money.budget_name.<kind>, money.budget_when.<kind> and money.budget_wait.<kind>.
_KINDS = {
    "daily": ("Budget.Daily", "--daily-budget", "ALIYUN_IMAGE_DAILY_BUDGET"),
    "monthly": ("Budget.Monthly", "--monthly-budget", "ALIYUN_IMAGE_MONTHLY_BUDGET"),
    "hourly": ("Budget.Hourly", "--host-hourly-budget", "ALIYUN_IMAGE_HOST_HOURLY_BUDGET"),
    "session": ("Budget.SessionHourly", "--session-hourly-budget", "ALIYUN_IMAGE_SESSION_HOURLY_BUDGET"),
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


def hold_within(store: ResultStore, budgets: Budgets, est: Estimate, *, scope: Payer | None,
                owner: str | None = None, hosted: bool = False, now: float | None = None) -> int | None:
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
    with store.records.charges() as book:
        return _check_and_hold(book, budgets, est, total, scope, owner, hosted, now)


def _check_and_hold(book: ChargeBook, budgets: Budgets, est: Estimate, total: Decimal, scope: Payer | None,
                    owner: str | None, hosted: bool, now: float | None) -> int:
    """In one transaction: the sums, the holds of runs in flight, the check, this run's hold."""
    windows = budgets.windows(now)
    rows = spent_rows(book.rows(min(since for _, _, since in windows), paid_by=scope))
    holds = [h for h in book.holds() if h["currency"] == est.currency and (scope is None or h["paid_by"] == scope)]
    for kind, limit, since in windows:
        mine = kind == "session"
        # only the run's currency: the refusal shows what this budget counted, never ¥ and $ summed
        spent = tally(r for r in rows if r["created"] >= since and (not mine or r["owner"] == owner)
                      and r["currency"] == est.currency)
        flying = sum((Decimal(h["price"]) for h in holds if not mine or h["owner"] == owner), Decimal(0))
        if spent.total(est.currency) + flying + total > limit:
            raise _over(kind, limit, spent, flying, est, hosted)
    return book.add(model=est.model, region=est.region, price=str(total), currency=est.currency,
                    state=charges.HOLD, owner=owner, paid_by=scope or Payer.CONFIGURED, code=charges.hold_code())


def release(store: ResultStore, hold: int | None) -> None:
    """The run that took ``hold`` ended: its own charges are recorded, so the hold goes."""
    if hold is not None:
        with store.records.charges() as book:
            book.release(hold)


def _over(kind: str, limit: Decimal, spent: Spend, flying: Decimal, est: Estimate, hosted: bool) -> ValidationError:
    code, flag, env = _KINDS[kind]
    cur = est.currency  # exact amounts: rounded ones could show a cost that does not cross the budget
    held = msg("money.budget_held", amount=money_text(flying, cur, True)) if flying else ""
    todo = (msg("money.budget_todo_hosted") if hosted
            else msg("money.budget_todo_local", wait=msg(f"money.budget_wait.{kind}"), flag=flag, env=env))
    return ValidationError(msg(
        "money.budget_over", budget=msg(f"money.budget_name.{kind}"), limit=money_text(limit, cur, True),
        when=msg(f"money.budget_when.{kind}"), spent=spent.message(), held=held,
        estimate=est.message(exact=True), todo=todo), code=code)


def _unpriced(est: Estimate, hosted: bool) -> ValidationError:
    todo = msg("money.unpriced_todo_hosted" if hosted else "money.unpriced_todo_local")
    return ValidationError(msg("money.unpriced", model=est.model, todo=todo), code="Budget.UnknownPrice")


def left(limit: Decimal, spent: Spend, currencies: Any = ()) -> dict[str, Decimal]:
    """What ``limit`` leaves in each currency spent (CNY always, plus ``currencies``): each
    currency counts on its own."""
    names = {"CNY", *currencies, *spent.billed.amounts, *spent.maybe.amounts}
    return {c: max(limit - spent.total(c), Decimal(0)) for c in sorted(names)}
