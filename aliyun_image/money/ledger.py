"""What was spent: sums over the charge table (:mod:`aliyun_image.storage.charges`), and the budget cap.

Sums are exact (Decimal), per currency, and keep apart what was billed and what *may* have been
(sent, no answer). Images of unknown price are counted, never priced. Days and months are the
machine's local calendar (the store's image folders use it too). Results of the offline demo
(``paid_by`` :attr:`~aliyun_image.enums.Payer.OFFLINE`) cost nothing and are left out.

The budget cap that uses these sums is in :mod:`aliyun_image.money.budget`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..storage import charges
from ..enums import Payer
from ..config import region_name
from .estimate import money, money_text
from ..i18n import Message, msg, render, t
from ..storage import ResultStore



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
        """``¥1.50 (3 images)`` in ``lang``, with the count of unknown prices when any."""
        return self.message().render(lang)

    def message(self) -> Message:
        """:meth:`text` as a catalogue message."""
        money_part = " + ".join(money_text(v, c) for c, v in sorted(self.amounts.items())) or money_text(
            Decimal(0), "CNY")
        count = msg("money.images_one" if self.images == 1 else "money.images", n=self.images)
        if self.unknown:
            return msg("money.tally_unknown", amount=money_part, count=count, unknown=self.unknown)
        return msg("money.tally", amount=money_part, count=count)

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
        return self.message().render(lang)

    def message(self) -> Message:
        """:meth:`text` as a catalogue message."""
        if self.maybe.images:
            return msg("money.maybe_billed", billed=self.billed.message(), maybe=self.maybe.message())
        return self.billed.message()

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


def spent_rows(rows: Iterable[Any]) -> list[Any]:
    """Charges that count as spent: not holds, not the offline demo's."""
    return [r for r in rows if r["paid_by"] != Payer.OFFLINE and r["state"] != charges.HOLD]


def _rows(store: ResultStore, since: float, owner: str | None, paid_by: str | None) -> list[Any]:
    with store.records.charges() as book:
        return spent_rows(book.rows(since, owner=owner, paid_by=paid_by))


def tally(rows: Iterable[Any]) -> Spend:
    """Billed and maybe-billed sums of charge rows."""
    out = Spend()
    for r in rows:
        (out.billed if r["state"] == charges.BILLED else out.maybe).add(r["price"], r["currency"])
    return out


def spend(store: ResultStore, since: float = 0.0, *, owner: str | None = None, paid_by: str | None = None) -> Spend:
    """What was spent since ``since``: for ``owner`` (hosted: a visitor) or everyone (None)."""
    return tally(_rows(store, since, owner, paid_by))


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
    """``Today ¥1.00 (2 images) · This month ¥3.00 (6 images)`` in ``lang``, for the gallery."""
    s = summary(store, owner)
    return t(lang, "money.today_month", today=s["today"].text(lang), month=s["month"].text(lang))


def record_cost(rec: Any) -> dict:
    """A stored result's cost for ``history --json`` and the gallery (price None: unknown)."""
    billed = bool(rec.url) and rec.paid_by != Payer.OFFLINE
    return {"model": rec.model, "region": rec.region or None, "unit_price": rec.price if billed else "0",
            "currency": rec.currency or "CNY", "billed": billed}


def record_cost_text(rec: Any, lang: str) -> str:
    """``¥0.50 · qwen-image-max · Beijing`` / ``price unknown`` / ``not billed`` for one result, in ``lang``."""
    c = record_cost(rec)
    if not c["billed"]:
        return t(lang, "money.not_billed")
    price = money(c["unit_price"])
    head = money_text(price, c["currency"]) if price is not None else t(lang, "money.price_unknown")
    where = render(lang, region_name(c["region"])) if c["region"] else ""
    return " · ".join(x for x in (head, rec.model, where) if x)
