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
from typing import TYPE_CHECKING, Any

from . import budget
from ..storage import charges
from ..config import OFFLINE_KEY, Settings
from ..enums import Payer
from .estimate import Estimate, estimate, money_text, unit_price
from ..errors import AliyunImageError, DownloadError, StorageError, ValidationError, may_be_billed
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
    """What a result (or a charge) records of its price: region, unit price, currency, payer."""
    unit = unit_price(job.spec, settings.region, job.prompt_extend)
    return {"region": settings.region, "price": None if unit is None else str(unit),
            "currency": job.spec.currency, "paid_by": paid_by(settings, key)}


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
    unit = unit_price(job.spec, settings.region, job.prompt_extend)
    if hold is not None and unit is not None:
        # the hold only errs on the safe side
        with contextlib.suppress(AliyunImageError), store.records.charges() as book:
            book.shrink_hold(hold, str(unit))


def _hold(store: ResultStore, settings: Settings, est: Estimate, key: str | None, owner: str | None) -> int | None:
    payer = paid_by(settings, key or settings.api_key)
    if payer == Payer.OFFLINE or (settings.hosted and payer != Payer.CONFIGURED):
        return None
    s = settings
    hourly = (s.host_hourly_budget, s.session_hourly_budget) if s.hosted else (None, None)
    budgets = budget.Budgets(s.daily_budget, s.monthly_budget, *hourly, allow_unpriced=s.allow_unpriced)
    scope = Payer.CONFIGURED if s.hosted else None  # hosted: only the host key's bill counts
    return budget.hold_within(store, budgets, est, scope=scope, owner=owner, hosted=s.hosted)


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
    answer may be. Refusals and failures cost nothing."""
    made = sum(1 for f in failures if isinstance(f, (DownloadError, StorageError)))
    maybe = sum(1 for f in failures if may_be_billed(f)) - made
    return stored + made, maybe


def run_cost_text(est: Estimate, stored: int, failures: Sequence[AliyunImageError], lang: str,
                  free: bool = False) -> str:
    """``This run cost: ¥0.40 (2 × ¥0.20)`` (plus maybe billed) in ``lang``, for the end of a run."""
    if free:
        return t(lang, "money.run_cost_offline")
    billed, maybe = run_cost(est, stored, failures)
    if est.unit is None:
        head = t(lang, "money.run_cost_unknown", n=billed, model=est.model)
    else:
        head = t(lang, "money.run_cost", total=money_text(est.unit * billed, est.currency), n=billed,
                 each=money_text(est.unit, est.currency))
    if maybe:
        amount = "" if est.unit is None else " " + money_text(est.unit * maybe, est.currency)
        head += t(lang, "money.run_cost_maybe", n=maybe, amount=amount)
    return head
