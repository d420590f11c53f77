"""What was spent: sums over the charge table (:mod:`aliyun_image.charges`), and the budget cap.

Sums are exact (Decimal), per currency, and keep apart what was billed and what *may* have been
(sent, no answer). Images of unknown price are counted, never priced. Days and months are the
machine's local calendar (the store's image folders use it too). Results of the offline demo
(``paid_by == "offline"``) cost nothing and are left out.

The budget cap refuses a run before any request when spent + may-be-billed + runs in flight +
this run's estimate would cross the daily or monthly budget. Runs in flight hold their estimate
in a :class:`BudgetGuard` (one per store file in the process), so concurrent runs cannot overshoot
together.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from . import charges
from .cost import Estimate, money, money_text
from .errors import ZH, ValidationError
from .store import ResultStore

FREE = "offline"  # paid_by of the offline demo's stand-in images


@dataclass
class Tally:
    """Images and their cost: amounts per currency, and how many had no known price."""

    images: int = 0
    unknown: int = 0
    amounts: dict[str, Decimal] = field(default_factory=dict)

    def add(self, price: str | None, currency: str) -> None:
        """Count one image at ``price`` (decimal text; None: unknown)."""
        self.images += 1
        if price is None:
            self.unknown += 1
        else:
            self.amounts[currency] = self.amounts.get(currency, Decimal(0)) + Decimal(price)

    def amount(self, currency: str = "CNY") -> Decimal:
        """The known part of the sum in ``currency``."""
        return self.amounts.get(currency, Decimal(0))

    def text(self, lang: str) -> str:
        """``¥1.50 (3 张)`` / ``¥1.50 (3 images)``, with the count of unknown prices when any."""
        zh = lang == ZH
        money_part = " + ".join(money_text(v, c) for c, v in sorted(self.amounts.items())) or money_text(
            Decimal(0), "CNY")
        count = f"{self.images} 张" if zh else f"{self.images} image{'s' if self.images != 1 else ''}"
        if self.unknown:
            count += f"，其中 {self.unknown} 张价格未知" if zh else f", {self.unknown} of unknown price"
        return f"{money_part}（{count}）" if zh else f"{money_part} ({count})"

    def as_dict(self) -> dict:
        """JSON-ready: exact decimal strings per currency."""
        return {"images": self.images, "unknown_price": self.unknown,
                "amounts": {c: str(v) for c, v in sorted(self.amounts.items())}}


@dataclass
class Spend:
    """Billed and maybe-billed images over some period."""

    billed: Tally = field(default_factory=Tally)
    maybe: Tally = field(default_factory=Tally)

    def total(self, currency: str = "CNY") -> Decimal:
        """Billed plus maybe billed, in ``currency`` (what a budget counts)."""
        return self.billed.amount(currency) + self.maybe.amount(currency)

    def text(self, lang: str) -> str:
        """``¥1.50 (3 images) + maybe billed ¥0.50 (1 image)``."""
        out = self.billed.text(lang)
        if self.maybe.images:
            out += (" + 可能计费 " if lang == ZH else " + maybe billed ") + self.maybe.text(lang)
        return out

    def as_dict(self) -> dict:
        """JSON-ready."""
        return {"billed": self.billed.as_dict(), "maybe_billed": self.maybe.as_dict()}


def day_start(now: float | None = None) -> float:
    """Local midnight of today (epoch seconds)."""
    t = time.localtime(time.time() if now is None else now)
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0, 0, 0, -1))


def month_start(now: float | None = None) -> float:
    """Local midnight of the first day of this month (epoch seconds)."""
    t = time.localtime(time.time() if now is None else now)
    return time.mktime((t.tm_year, t.tm_mon, 1, 0, 0, 0, 0, 0, -1))


def _rows(store: ResultStore, since: float, owner: str | None, paid_by: str | None) -> Iterable[Any]:
    return [r for r in store.charges(charges.rows, since, owner=owner, paid_by=paid_by) if r["paid_by"] != FREE]


def spend(store: ResultStore, since: float = 0.0, *, owner: str | None = None, paid_by: str | None = None) -> Spend:
    """What was spent since ``since``: for ``owner`` (hosted: a visitor) or everyone (None)."""
    out = Spend()
    for r in _rows(store, since, owner, paid_by):
        (out.billed if r["state"] == charges.BILLED else out.maybe).add(r["price"], r["currency"])
    return out


def spend_by(store: ResultStore, by: str, since: float = 0.0, *, owner: str | None = None) -> dict[str, Spend]:
    """Spend per local day (``"2026-11-25"``) or per model, oldest day first / by model name."""
    out: dict[str, Spend] = defaultdict(Spend)
    for r in _rows(store, since, owner, None):
        key = time.strftime("%Y-%m-%d", time.localtime(r["created"])) if by == "day" else r["model"]
        (out[key].billed if r["state"] == charges.BILLED else out[key].maybe).add(r["price"], r["currency"])
    return dict(sorted(out.items()))


def summary(store: ResultStore, owner: str | None = None, now: float | None = None) -> dict[str, Spend]:
    """Today's and this month's spend (the gallery's line and ``spend``)."""
    return {"today": spend(store, day_start(now), owner=owner), "month": spend(store, month_start(now), owner=owner)}


def summary_text(store: ResultStore, lang: str, owner: str | None = None) -> str:
    """``今天 ¥1.00（2 张）· 本月 ¥3.00（6 张）`` for the gallery."""
    s = summary(store, owner)
    zh = lang == ZH
    return (f"{'今天' if zh else 'Today'} {s['today'].text(lang)} · "
            f"{'本月' if zh else 'This month'} {s['month'].text(lang)}")


def record_cost(rec: Any) -> dict:
    """A stored result's cost for ``history --json`` and the gallery (price None: unknown)."""
    billed = bool(rec.url) and rec.paid_by != FREE
    return {"model": rec.model, "region": rec.region or None, "unit_price": rec.price if billed else "0",
            "currency": rec.currency or "CNY", "billed": billed}


def record_cost_text(rec: Any, lang: str) -> str:
    """``¥0.50 · qwen-image-max · 北京`` / ``price unknown`` / ``free`` for one result."""
    from .config import region_names

    zh = lang == ZH
    c = record_cost(rec)
    if not c["billed"]:
        return "未计费" if zh else "not billed"
    price = money(c["unit_price"])
    head = money_text(price, c["currency"]) if price is not None else ("价格未知" if zh else "price unknown")
    where = region_names(c["region"])[0 if zh else 1] if c["region"] else ""
    return " · ".join(x for x in (head, rec.model, where) if x)


# --- the budget cap -------------------------------------------------------------------------------
class BudgetGuard:
    """Estimates of runs in flight, held until they end (so two runs cannot both fit the last yuan)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.held: dict[int, tuple[str, str, Decimal]] = {}  # token -> (paid_by scope, currency, amount)
        self._next = 0

    def in_flight(self, scope: str | None, currency: str) -> Decimal:
        """What runs in flight hold (call with :attr:`lock` held)."""
        return sum((a for s, c, a in self.held.values() if c == currency and (scope is None or s == scope)),
                   Decimal(0))

    def hold(self, scope: str, currency: str, amount: Decimal) -> int:
        """Hold ``amount`` (call with :attr:`lock` held); returns the token for :meth:`release`."""
        self._next += 1
        self.held[self._next] = (scope, currency, amount)
        return self._next

    def release(self, token: int | None) -> None:
        """The run ended: its charges are in the table now, so its hold goes."""
        if token is not None:
            with self.lock:
                self.held.pop(token, None)


_GUARDS: dict[str, BudgetGuard] = {}
_GUARDS_LOCK = threading.Lock()


def guard_for(store: ResultStore) -> BudgetGuard:
    """The process's guard for ``store``'s file (services sharing a store share it)."""
    key = str(store.db_path.resolve())
    with _GUARDS_LOCK:
        return _GUARDS.setdefault(key, BudgetGuard())


@dataclass(frozen=True)
class Budgets:
    """The caps that apply to a run (amounts in the price list's currency; None: no cap)."""

    daily: Decimal | None = None
    monthly: Decimal | None = None
    allow_unpriced: bool = False

    @property
    def any(self) -> bool:
        """True when some cap is set."""
        return self.daily is not None or self.monthly is not None


def hold_budget(store: ResultStore, budgets: Budgets, est: Estimate, *, scope: str | None,
                hosted: bool = False, now: float | None = None) -> int | None:
    """Refuse ``est`` if it would cross a budget, else hold it until :meth:`BudgetGuard.release`.

    ``scope`` is the ``paid_by`` whose charges count (None: all, the local case). A price the
    catalogue does not know cannot be checked: refused unless ``budgets.allow_unpriced``.
    Raises ValidationError (codes ``Budget.Daily``, ``Budget.Monthly``, ``Budget.UnknownPrice``).
    """
    if not budgets.any:
        return None
    total = est.total
    if total is None:
        if budgets.allow_unpriced:
            return None
        raise _unpriced(est, hosted)
    guard = guard_for(store)
    key = "*" if scope is None else scope
    with guard.lock:
        for kind, limit, since in (("daily", budgets.daily, day_start(now)),
                                   ("monthly", budgets.monthly, month_start(now))):
            if limit is None:
                continue
            spent = spend(store, since, paid_by=scope)
            flying = guard.in_flight(key, est.currency)
            if spent.total(est.currency) + flying + total > limit:
                raise _over(kind, limit, spent, flying, est, hosted)
        return guard.hold(key, est.currency, total)


def _over(kind: str, limit: Decimal, spent: Spend, flying: Decimal, est: Estimate, hosted: bool) -> ValidationError:
    daily = kind == "daily"
    cur = est.currency
    run_zh, run_en = est.text(ZH), est.text("en")
    fly_zh = f"，进行中的运行已预留 {money_text(flying, cur)}" if flying else ""
    fly_en = f"; runs in progress hold {money_text(flying, cur)}" if flying else ""
    if hosted:
        todo_zh, todo_en = ("请减少张数、换用更便宜的模型，稍后再试，或填写你自己的 API Key。",
                            "Ask for fewer images or a cheaper model, try again later, or enter your own API key.")
    else:
        flag, env = ("--daily-budget", "ALIYUN_IMAGE_DAILY_BUDGET") if daily else (
            "--monthly-budget", "ALIYUN_IMAGE_MONTHLY_BUDGET")
        todo_zh = f"请减少张数或换用更便宜的模型，{'明天' if daily else '下月'}再试，或提高预算（{flag} / {env}）。"
        todo_en = (f"Ask for fewer images or a cheaper model, wait until {'tomorrow' if daily else 'next month'}, "
                   f"or raise the budget ({flag} / {env}).")
    return ValidationError(
        f"本次运行会超出{'每日' if daily else '每月'}预算 {money_text(limit, cur)}："
        f"{'今天' if daily else '本月'}已花费 {spent.text(ZH)}{fly_zh}；本次{run_zh}。未发送任何请求。{todo_zh}",
        f"This run would cross the {kind} budget of {money_text(limit, cur)}: spent "
        f"{'today' if daily else 'this month'} {spent.text('en')}{fly_en}; this run costs {run_en}. Nothing was "
        f"sent. {todo_en}", code="Budget.Daily" if daily else "Budget.Monthly")


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
