"""What a run costs and what was spent: estimates before sending, the spend ledger, budgets and the
hosted hourly quotas, and billing (prices on results, maybe-billed calls).
"""

from __future__ import annotations

from .estimate import estimate, estimate_for, money_text
from .ledger import record_cost, record_cost_text
from .quota import HourlyQuota, Payers, Reservation, payer_id

__all__ = [
    "HourlyQuota",
    "Payers",
    "Reservation",
    "estimate",
    "estimate_for",
    "money_text",
    "payer_id",
    "record_cost",
    "record_cost_text",
]
