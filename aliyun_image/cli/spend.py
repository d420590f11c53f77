"""The CLI's money: ``--dry-run``, the budget flags, the cost line after a run, and ``spend``.

Kept out of :mod:`aliyun_image.cli.commands` so the parser stays short; ``cli`` calls :func:`add_cost_args`
for generate/edit/fuse and :func:`register` for the ``spend`` command.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..money import billing, budget, ledger
from ..config import Settings
from ..enums import Payer
from ..money import estimate, money_text
from ..errors import ValidationError, region_name
from ..i18n import render, t
from ..generation import note_text


def _help(lang: str, key: str) -> str:
    return t(lang, "cli.help." + key)


def budget_args(p: argparse.ArgumentParser, lang: str = "en") -> None:
    """``--daily-budget``, ``--monthly-budget``, ``--allow-unpriced`` (env vars are the defaults)."""
    p.add_argument("--daily-budget", metavar="AMOUNT", help=_help(lang, "daily_budget"))
    p.add_argument("--monthly-budget", metavar="AMOUNT", help=_help(lang, "monthly_budget"))
    p.add_argument("--allow-unpriced", action="store_true", help=_help(lang, "allow_unpriced"))


def hosted_budget_args(p: argparse.ArgumentParser, lang: str = "en") -> None:
    """The app's hosted-mode caps on the host key's spend per rolling hour (the money form of
    ``--total-limit`` and ``--session-limit``)."""
    p.add_argument("--host-hourly-budget", metavar="AMOUNT", help=_help(lang, "host_hourly_budget"))
    p.add_argument("--session-hourly-budget", metavar="AMOUNT", help=_help(lang, "session_hourly_budget"))


def add_cost_args(p: argparse.ArgumentParser, lang: str = "en") -> None:
    """The money flags of generate, edit and fuse."""
    p.add_argument("--dry-run", action="store_true", help=_help(lang, "dry_run"))
    budget_args(p, lang)


def register(sub: Any, common: argparse.ArgumentParser, lang: str = "en") -> None:
    """Add the ``spend`` command to the subparsers ``sub``."""
    s = sub.add_parser("spend", help=_help(lang, "spend"), parents=[common])
    s.add_argument("--by", choices=["day", "model"], help=_help(lang, "by"))
    s.add_argument("--json", action="store_true", help=_help(lang, "spend_json"))
    budget_args(s, lang)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Settings overrides from the budget flags (None: the environment decides)."""
    return {"daily_budget": getattr(args, "daily_budget", None),
            "monthly_budget": getattr(args, "monthly_budget", None),
            "host_hourly_budget": getattr(args, "host_hourly_budget", None),
            "session_hourly_budget": getattr(args, "session_hourly_budget", None),
            "allow_unpriced": getattr(args, "allow_unpriced", None) or None}


def dry_run(svc: Any, job: Any, lang: str) -> int:
    """Print the plan of a validated job and its estimated cost; send nothing. Exit code 2 when
    the budget would refuse it (the message says why)."""
    s: Settings = svc.settings
    est = estimate(job, s.region)

    def row(key: str) -> str:
        return t(lang, "cli.plan." + key)

    cost = est.text(lang)
    if billing.paid_by(s, s.api_key) == Payer.OFFLINE:  # the offline demo's emulator: nothing is billed
        cost = t(lang, "cli.plan.offline_free", cost=cost)
    rows = [(row("model"), job.model), (row("region"), f"{render(lang, region_name(s.region))} ({s.region})"),
            (row("size"), job.size or row("auto")), (row("requests"), str(job.requests)),
            (row("images"), str(job.n)), (row("estimated_cost"), cost)]
    for name, value in rows:
        print(f"{name}: {value}")
    for note in job.notes:
        print(t(lang, "cli.note", text=note_text(lang, note)))
    try:
        budget.release(svc.store, billing.hold_run(svc.store, s, job, None))
    except ValidationError as exc:
        print(exc.text(lang), file=sys.stderr)
        return 2
    print(row("sent_nothing"), file=sys.stderr)
    return 0


def cost_line(svc: Any, job: Any, batch: Any, lang: str) -> str | None:
    """The last line of a run: what it cost (the stored images' prices as billed; maybe billed
    apart). None when nothing was or may have been billed and nothing was refused by content
    moderation (the error said it all: failures are free)."""
    est = estimate(job, svc.settings.region)
    if sum(billing.run_cost(est, len(batch.results), batch.failures)) == 0 and not billing.moderated(batch.failures):
        return None
    free = billing.paid_by(svc.settings, svc.settings.api_key) == Payer.OFFLINE
    return billing.run_cost_text(est, len(batch.results), batch.failures, lang, free=free,
                                 prices=[r.price for r in batch.results])


def _budget_rows(s: Settings, today: ledger.Spend, month: ledger.Spend, lang: str) -> list[str]:
    out = []
    b = s.budgets
    for kind, limit, spent in (("daily", b.daily_budget, today), ("monthly", b.monthly_budget, month)):
        if limit is None:
            continue
        for cur, rest in budget.left(limit, spent).items():  # each currency on its own
            out.append(t(lang, f"cli.spend.{kind}_budget", limit=money_text(limit, cur), left=money_text(rest, cur)))
    return out


def spend(args: argparse.Namespace, lang: str) -> int:
    """``spend``: today and this month (and per day or model), billed and maybe billed apart."""
    from ..storage import ResultStore

    s = Settings.from_env(data_dir=args.data_dir, **overrides(args))
    store = ResultStore.open(s.data_dir, fsync=s.fsync)
    try:
        totals = ledger.summary(store)
        by = ledger.spend_by(store, args.by) if args.by else {}
    finally:
        store.close()
    if args.json:
        b = s.budgets
        budgets = {"daily": None if b.daily_budget is None else str(b.daily_budget),
                   "monthly": None if b.monthly_budget is None else str(b.monthly_budget)}
        out: dict[str, Any] = {k: v.as_dict() for k, v in totals.items()} | {"budgets": budgets}
        if args.by:
            out["by_" + args.by] = {k: v.as_dict() for k, v in by.items()}
        print(json.dumps(out, ensure_ascii=False))
        return 0
    for key, spent in by.items():
        print(f"{key}\t{spent.text(lang)}")
    print(t(lang, "cli.spend.today", spend=totals["today"].text(lang)))
    print(t(lang, "cli.spend.month", spend=totals["month"].text(lang)))
    for line in _budget_rows(s, totals["today"], totals["month"], lang):
        print(line)
    return 0

