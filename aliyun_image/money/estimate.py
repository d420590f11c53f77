"""What a run will cost, before it is sent: ``n`` x the model's price in the region.

Prices come from the catalogue only (:meth:`~aliyun_image.catalog.spec.ModelSpec.price_in`); a model
without one has an *unknown* price, never a guessed one. Money is :class:`~decimal.Decimal`
(the catalogue's floats are read through their shortest text form, so ``0.550443`` stays exact).
Bailian bills per generated image, whatever the size, so the size does not enter the sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from ..catalog import ModelSpec
from ..config import region_name
from ..i18n import Message, msg

if TYPE_CHECKING:  # annotations only
    from ..jobs import Job

SYMBOLS = {"CNY": "¥", "USD": "$"}
CENT = Decimal("0.01")


def money(value: float | str | Decimal | None) -> Decimal | None:
    """A price as an exact Decimal (``0.550443`` -> ``Decimal("0.550443")``); None stays None."""
    if value is None:
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))


def money_text(amount: Decimal, currency: str, exact: bool = False) -> str:
    """``¥1.10`` (two decimals, half up); amounts below a cent keep their digits (``¥0.004``).
    ``exact``: every digit (``¥1.100886``, still at least two decimals), where rounding would
    mislead (a budget refusal must show a cost that crosses the budget it shows)."""
    shown = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    if (exact or shown == 0) and amount != shown:
        shown = amount.normalize()
    symbol = SYMBOLS.get(currency)
    return f"{symbol}{shown}" if symbol else f"{shown} {currency}"


def unit_price(spec: ModelSpec, region: str, prompt_extend: bool) -> Decimal | None:
    """The price of one image of ``spec`` in ``region``. Rewriting counts only when the model takes
    the switch (otherwise the service's default applies: the model's own default)."""
    extend = prompt_extend if spec.accepts("prompt_extend") else spec.prompt_extend_default
    return money(spec.price_in(region, extend))


@dataclass(frozen=True)
class Estimate:
    """The estimated cost of one run."""

    model: str
    region: str
    n: int  # images (billed per image; fan-out does not change the sum)
    requests: int
    unit: Decimal | None  # None: the catalogue has no price for this model here
    currency: str

    @property
    def total(self) -> Decimal | None:
        """``n`` x the unit price, or None when the price is unknown."""
        return None if self.unit is None else self.unit * self.n

    def text(self, lang: str, exact: bool = False) -> str:
        """``about ¥1.00 · 2 × qwen-image-max · Beijing`` in ``lang``
        (``exact``: every digit of the amount, see :func:`money_text`)."""
        return self.message(exact).render(lang)

    def message(self, exact: bool = False) -> Message:
        """:meth:`text` as a catalogue message, for errors and events rendered later."""
        total = self.total
        head = (msg("money.price_unknown") if total is None
                else msg("money.about", amount=money_text(total, self.currency, exact)))
        return msg("money.estimate", head=head, n=self.n, model=self.model, region=region_name(self.region))

    def as_dict(self) -> dict:
        """JSON-ready: amounts as exact decimal strings, None when unknown."""
        total = self.total
        return {"model": self.model, "region": self.region, "images": self.n, "requests": self.requests,
                "unit_price": None if self.unit is None else str(self.unit),
                "total": None if total is None else str(total), "currency": self.currency}


def estimate_for(spec: ModelSpec, n: int, prompt_extend: bool, region: str, requests: int | None = None,
                 model: str | None = None) -> Estimate:
    """The estimate for ``n`` images of ``spec`` (the UI's live line: no prompt, no key needed)."""
    n = max(0, int(n))
    reqs = requests if requests is not None else (n if spec.fixed_n else min(1, n))
    return Estimate(model or spec.name, region, n, reqs, unit_price(spec, region, prompt_extend), spec.currency)


def estimate(job: Job, region: str) -> Estimate:
    """The estimate for a validated job (:meth:`~aliyun_image.generation.service.ImageService.plan`)."""
    return estimate_for(job.spec, job.n, job.prompt_extend, region, requests=job.requests, model=job.model)
