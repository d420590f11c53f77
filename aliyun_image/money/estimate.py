"""What a run will cost, before it is sent: ``n`` x the model's price in the region, plus the
input image fee of the models that bill one (the 3.0 line: per input image, per request).

Prices come from the catalogue only (:meth:`~aliyun_image.catalog.spec.ModelSpec.price_in`); a model
without one has an *unknown* price, never a guessed one. Money is :class:`~decimal.Decimal`
(the catalogue's floats are read through their shortest text form, so ``0.550443`` stays exact).
Most models bill per image whatever the size; a model priced by size class (3.0-pro: 1K / 2K by
output area) is estimated at the class of the size asked for, and at 2K when the size is left to
the model (it picked 2048*2048 in field reports): the estimate then says "up to".
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from ..catalog import TIER_1K, TIER_2K, ModelSpec, parse_size, tier_of
from ..config import region_name
from ..i18n import Message, msg

if TYPE_CHECKING:  # annotations only
    from ..jobs import Job

SYMBOLS = {"CNY": "¥", "USD": "$"}
CENT = Decimal("0.01")
MIL = Decimal("0.001")


def money(value: float | str | Decimal | None) -> Decimal | None:
    """A price as an exact Decimal (``0.550443`` -> ``Decimal("0.550443")``); None stays None."""
    if value is None:
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))


def money_text(amount: Decimal, currency: str, exact: bool = False) -> str:
    """``¥1.10`` (two decimals, half up); amounts below a cent keep their digits (``¥0.004``), and
    so do amounts of a tenth of a cent (``$0.075``, ``$0.043``: the USD prices of the 3.0 line,
    which rounding would misstate). ``exact``: every digit (``¥1.100886``, still at least two
    decimals), where rounding would mislead (a budget refusal must show a cost that crosses the
    budget it shows)."""
    shown = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    mils = amount == amount.quantize(MIL)
    if (exact or shown == 0 or mils) and amount != shown:
        shown = amount.normalize()
    symbol = SYMBOLS.get(currency)
    return f"{symbol}{shown}" if symbol else f"{shown} {currency}"


def unit_price(spec: ModelSpec, region: str, prompt_extend: bool, tier: str = TIER_1K) -> Decimal | None:
    """The price of one image of ``spec`` in ``region`` (of size class ``tier``). Rewriting counts
    only when the model takes the switch (otherwise the service's default applies: the model's own
    default)."""
    extend = prompt_extend if spec.accepts("prompt_extend") else spec.prompt_extend_default
    return money(spec.price_in(region, extend, tier))


def planned_tier(spec: ModelSpec, region: str, size: str | None) -> tuple[str, bool]:
    """(size class, "up to") of a run asking for ``size``: ``("", False)`` when the size does not
    change the price; 2K and "up to" when the size is left to the model."""
    if not spec.tiered_in(region):
        return "", False
    wh = parse_size(size or "")
    if wh is None:
        return TIER_2K, True
    return tier_of(*wh), False


@dataclass(frozen=True)
class Estimate:
    """The estimated cost of one run."""

    model: str
    region: str
    n: int  # images (billed per image; fan-out does not change the sum)
    requests: int
    unit: Decimal | None  # None: the catalogue has no price for this model here
    currency: str
    tier: str = ""  # "1k" / "2k" for a model priced by size class; "" when the size does not matter
    up_to: bool = False  # the size is left to the model: the dearer class is assumed
    inputs: int = 0  # input images per request (edit, fusion)
    input_unit: Decimal | None = None  # what each input image adds (None: no fee known)

    @property
    def input_fee(self) -> Decimal:
        """The input images' part of the total (every request sends them again)."""
        if self.input_unit is None or not self.inputs:
            return Decimal(0)
        return self.input_unit * self.inputs * self.requests

    @property
    def total(self) -> Decimal | None:
        """``n`` x the unit price plus the input fee, or None when the price is unknown."""
        return None if self.unit is None else self.unit * self.n + self.input_fee

    def text(self, lang: str, exact: bool = False) -> str:
        """``about ¥1.00 · 2 × qwen-image-max · Beijing`` in ``lang``
        (``exact``: every digit of the amount, see :func:`money_text`)."""
        return self.message(exact).render(lang)

    def head(self, exact: bool = False) -> Message:
        """The amount alone: ``about ¥1.20``, ``up to ¥1.20`` or ``price unknown``."""
        total = self.total
        if total is None:
            return msg("money.price_unknown")
        return msg("money.tier.up_to" if self.up_to else "money.about", amount=money_text(total, self.currency, exact))

    def message(self, exact: bool = False) -> Message:
        """:meth:`text` as a catalogue message, for errors and events rendered later."""
        head = self.head(exact)
        model = msg("money.tier.model_tier", model=self.model, tier=self.tier.upper()) if self.tier else self.model
        out = msg("money.estimate", head=head, n=self.n, model=model, region=region_name(self.region))
        if self.input_fee:
            sent = self.inputs * self.requests
            count = msg("money.tier.input_images_one" if sent == 1 else "money.tier.input_images", n=sent)
            out = msg("money.tier.with_inputs", estimate=out, count=count,
                      each=money_text(self.input_unit or Decimal(0), self.currency))
        return out

    def as_dict(self) -> dict:
        """JSON-ready: amounts as exact decimal strings, None when unknown."""
        total = self.total
        return {"model": self.model, "region": self.region, "images": self.n, "requests": self.requests,
                "unit_price": None if self.unit is None else str(self.unit),
                "total": None if total is None else str(total), "currency": self.currency,
                "tier": self.tier or None, "up_to": self.up_to, "input_images": self.inputs * self.requests,
                "input_unit_price": None if self.input_unit is None else str(self.input_unit)}


def estimate_for(spec: ModelSpec, n: int, prompt_extend: bool, region: str, requests: int | None = None,
                 model: str | None = None, size: str | None = None, inputs: int = 0) -> Estimate:
    """The estimate for ``n`` images of ``spec`` (the UI's live line: no prompt, no key needed):
    ``size`` as sent (None: left to the model), ``inputs`` images per request (edit, fusion)."""
    n = max(0, int(n))
    reqs = requests if requests is not None else (n if spec.fixed_n else min(1, n))
    tier, up_to = planned_tier(spec, region, size)
    fee = money(spec.input_price_in(region)) if inputs else None
    return Estimate(model or spec.name, region, n, reqs, unit_price(spec, region, prompt_extend, tier or TIER_1K),
                    spec.currency_in(region), tier, up_to, max(0, int(inputs)), fee)


def estimate(job: Job, region: str) -> Estimate:
    """The estimate for a validated job (:meth:`~aliyun_image.generation.service.ImageService.plan`)."""
    return estimate_for(job.spec, job.n, job.prompt_extend, region, requests=job.requests, model=job.model,
                        size=job.size, inputs=len(job.images))
