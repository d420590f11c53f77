"""The service's side of money: what each result and each unanswered call records, and the
budget check before a run (which settings apply, whose bill it is). The sums are in
:mod:`aliyun_image.money.ledger`, the cap itself in :mod:`aliyun_image.money.budget`, the table in
:mod:`aliyun_image.storage.charges`.

Who pays (``paid_by``, a :class:`~aliyun_image.enums.Payer`): ``CONFIGURED`` the configured key (the
user's, or in hosted mode the host's), ``OWN`` a key a visitor gave with the call, ``OFFLINE`` the offline
demo's emulator (free). Keys themselves are never recorded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import budget
from ..storage import charges
from ..config import OFFLINE_KEY, Settings
from ..enums import Payer
from ..catalog import TIER_1K, ModelSpec, billed_tier, tier_of
from .estimate import Estimate, estimate, money, money_text, planned_tier, unit_price
from ..errors import AliyunImageError, DownloadError, StorageError, ValidationError, is_moderation, may_be_billed
from ..i18n import t
from ..storage import ResultStore

if TYPE_CHECKING:  # annotations only
    from ..jobs import Job


def paid_by(settings: Settings, key: str | None) -> Payer:
    """Whose bill a call with ``key`` goes on (see the module docstring)."""
    if OFFLINE_KEY in (key, settings.api_key):  # the offline demo's emulator, whoever's key was typed
        return Payer.OFFLINE
    return Payer.CONFIGURED if not key or key == settings.api_key else Payer.OWN


def price_fields(settings: Settings, job: Job, key: str | None) -> dict[str, Any]:
    """What a charge with no reply records of its price: region, the estimate's unit price (the
    size class asked for, 2K when left to the model), currency, payer."""
    est = estimate(job, settings.region)
    return {"region": settings.region, "price": None if est.unit is None else str(est.unit),
            "currency": est.currency, "paid_by": paid_by(settings, key)}


def _usage_int(usage: dict, name: str) -> int | None:
    value = usage.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def billed_fields(settings: Settings, job: Job, key: str | None, usage: dict | None, first: bool) -> dict[str, Any]:
    """What a result records of its price as the reply's ``usage`` says it was billed (see
    :func:`billed_price`), with region, currency and payer. Fields for
    :class:`~aliyun_image.storage.NewResult`."""
    region = settings.region
    fields = billed_price(job.spec, region, job.prompt_extend, job.size, len(job.images), usage, first)
    return {"region": region, "currency": job.spec.currency_in(region), "paid_by": paid_by(settings, key), **fields}


def billed_price(spec: ModelSpec, region: str, prompt_extend: bool, size: str | None, images: int,
                 usage: dict | None, first: bool) -> dict[str, Any]:
    """The price of one image as the reply's ``usage`` billed it: the size class
    ``output_image_type`` names (else the one of ``usage.width/height``, else the one ``size`` asked
    for, 2K when left to the model), and for the ``first`` image of a request the fee of the input
    images ``input_image_count`` counts (else ``images``). ``{"price", "billed_as", "billed_inputs"}``."""
    usage = usage or {}
    named = str(usage.get("output_image_type") or "")
    tier = billed_tier(named)
    width, height = _usage_int(usage, "width"), _usage_int(usage, "height")
    if tier is None and width and height:
        tier = tier_of(width, height)
    if tier is None:
        tier = planned_tier(spec, region, size)[0] or TIER_1K
    unit = unit_price(spec, region, prompt_extend, tier)
    fee = money(spec.input_price_in(region))
    inputs = 0
    if first and fee:
        counted = _usage_int(usage, "input_image_count")
        inputs = counted if counted is not None else images
    price = unit if unit is None or not inputs else unit + (fee or Decimal(0)) * inputs
    return {"price": None if price is None else str(price), "billed_as": named, "billed_inputs": inputs}


def record_maybe(store: ResultStore, settings: Settings, ctx: Any, exc: AliyunImageError, count: int,
                 rid: int | None = None) -> None:
    """Record ``count`` images whose request was sent and got no usable answer: maybe billed.

    ``rid``: an async task's result row (Stop or a lost connection while it ran): it is maybe
    billed whatever the error, until ``resume`` collects it (billed) or finds it failed (dropped).
    """
    fields = price_fields(settings, ctx.job, ctx.key)  # ctx: the service's run context
    if fields["paid_by"] == Payer.OFFLINE or (rid is None and not may_be_billed(exc)):
        return
    # the ledger must not turn a failure into a crash
    with contextlib.suppress(AliyunImageError), store.records.charges() as book:
        for _ in range(count):
            book.add(model=ctx.job.model, state=charges.MAYBE, owner=ctx.owner, result_id=rid, code=exc.code,
                     **fields)


def hold_run(store: ResultStore, settings: Settings, job: Job, key: str | None,
             owner: str | None = None) -> int | None:
    """Check a run of ``job`` against the budgets and hold its estimate (raises ValidationError before any
    request); release the hold with :func:`aliyun_image.money.budget.release` when the run ends. Budgets
    cover the configured key's bill: in hosted mode not visitors' own keys; never the offline demo."""
    return _hold(store, settings, estimate(job, settings.region), key, owner)


def settle_one(store: ResultStore, settings: Settings, job: Job, hold: int | None) -> None:
    """One image of the run holding ``hold`` is settled (stored, failed or maybe billed, its charge
    recorded): its share of the hold goes, so the run is not counted twice against the budget."""
    unit = estimate(job, settings.region).unit
    if hold is not None and unit is not None:
        # the hold only errs on the safe side
        with contextlib.suppress(AliyunImageError), store.records.charges() as book:
            book.shrink_hold(hold, str(unit))


def _hold(store: ResultStore, settings: Settings, est: Estimate, key: str | None, owner: str | None) -> int | None:
    payer = paid_by(settings, key or settings.api_key)
    hosted = settings.hosting.hosted
    if payer == Payer.OFFLINE or (hosted and payer != Payer.CONFIGURED):
        return None
    b = settings.budgets
    hourly = (b.host_hourly_budget, b.session_hourly_budget) if hosted else (None, None)
    budgets = budget.Budgets(b.daily_budget, b.monthly_budget, *hourly, allow_unpriced=b.allow_unpriced)
    scope = Payer.CONFIGURED if hosted else None  # hosted: only the host key's bill counts
    return budget.hold_within(store, budgets, est, scope=scope, owner=owner, hosted=hosted)


def budget_refusal(store: ResultStore, settings: Settings, est: Estimate, key: str | None,
                   owner: str | None = None) -> ValidationError | None:
    """Why the budget would refuse a run of ``est`` now (None: it would not), holding nothing."""
    try:
        budget.release(store, _hold(store, settings, est, key, owner))
    except ValidationError as exc:
        return exc
    return None


def run_cost(est: Estimate, stored: int, failures: Sequence[AliyunImageError]) -> tuple[int, int]:
    """(billed, maybe billed) images of a finished run: stored ones and ones made but not saved
    (download or disk failures: the service made them) are billed; calls sent without a usable
    answer may be. Refusals (content moderation's included) and failures cost nothing."""
    made = sum(1 for f in failures if isinstance(f, (DownloadError, StorageError)))
    maybe = sum(1 for f in failures if may_be_billed(f)) - made
    return stored + made, maybe


def moderated(failures: Sequence[AliyunImageError]) -> int:
    """Images of a run refused by content moderation (free)."""
    return sum(1 for f in failures if is_moderation(f.code))


def _billed_total(est: Estimate, prices: Sequence[str | None] | None, billed: int) -> Decimal | None:
    """What the billed images cost as recorded: the stored results' prices (as their replies'
    usage billed them), images made but not saved at the estimate's unit; None when unknown."""
    if est.unit is None:
        return None
    if prices is None:  # no recorded prices given: the estimate's
        return est.unit * billed + (est.input_fee if billed else Decimal(0))
    if any(p is None for p in prices):
        return None
    return sum((Decimal(p) for p in prices if p is not None), Decimal(0)) + est.unit * (billed - len(prices))


def run_cost_text(est: Estimate, stored: int, failures: Sequence[AliyunImageError], lang: str,
                  free: bool = False, prices: Sequence[str | None] | None = None) -> str:
    """``This run cost: ¥0.40 (2 × ¥0.20)`` (plus maybe billed, and images content moderation
    refused: free) in ``lang``, for the end of a run. ``prices``: the stored results' recorded
    prices (what the service billed); where they differ from the estimate, the line says so."""
    if free:
        return t(lang, "money.run_cost_offline")
    billed, maybe = run_cost(est, stored, failures)
    refused = moderated(failures)
    if refused and not billed and not maybe:  # only refusals: say it cost nothing, and why
        return t(lang, "money.tier.run_cost_moderated", zero=money_text(Decimal(0), est.currency), n=refused)
    total = _billed_total(est, prices, billed)
    if est.unit is None or total is None:
        head = t(lang, "money.run_cost_unknown", n=billed, model=est.model)
    elif total == est.unit * billed:
        head = t(lang, "money.run_cost", total=money_text(total, est.currency), n=billed,
                 each=money_text(est.unit, est.currency))
    else:  # size classes or input images: not one unit price
        count = t(lang, "money.images_one" if billed == 1 else "money.images", n=billed)
        head = t(lang, "money.tier.run_cost", total=money_text(total, est.currency), count=count)
    expected = None if est.unit is None else est.unit * billed + (est.input_fee if billed else Decimal(0))
    if total is not None and expected is not None and total != expected:
        head += t(lang, "money.tier.differs", amount=money_text(expected, est.currency))
    if maybe:
        amount = "" if est.unit is None else " " + money_text(est.unit * maybe, est.currency)
        head += t(lang, "money.run_cost_maybe", n=maybe, amount=amount)
    if refused:
        head += t(lang, "money.tier.moderated", n=refused)
    return head
