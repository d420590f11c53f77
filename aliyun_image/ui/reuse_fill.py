"""Filling a panel from a recipe: "Reuse parameters" on a gallery result, or a dropped PNG.

Both end the same way: switch to the panel of the recipe's task, write every control it names
(:data:`aliyun_image.recipes.reuse.FIELDS`, input images included), and confirm *on that panel's* status
line (the visitor is looking there now), echoed in the gallery's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from ..recipes import ReusePlan
from .strings import t


@dataclass
class ReuseTargets:
    """The widgets "Reuse parameters" fills: per panel (task), a widget per control name of
    :data:`aliyun_image.recipes.reuse.FIELDS`; the tabs, the gallery's status line, and each panel's."""

    tabs: Any
    status: Any
    panels: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    statuses: Mapping[str, Any] = field(default_factory=dict)  # each panel's status line (the confirmation)

    def outputs(self) -> list[Any]:
        """Every widget a reuse may write, as the event's output list."""
        return [self.tabs, self.status, *self.statuses.values(),
                *(w for panel in self.panels.values() for w in panel.values())]


def reused_text(lang: str, rid: int, plan: ReusePlan) -> str:
    """The confirmation of a reuse: what came back, and what the visitor still has to add."""
    if not plan.inputs:
        return t(lang, "keep.reused_plain", id=rid)
    if plan.restored >= plan.inputs:
        return t(lang, "keep.reused_all", id=rid, inputs=plan.inputs)
    return t(lang, "keep.reused_some", id=rid, restored=plan.restored, inputs=plan.inputs)


def fill_panel(targets: ReuseTargets, plan: ReusePlan, message: str) -> dict:
    """The event's updates: the panel's tab, its controls, and ``message`` on its status line."""
    widgets = targets.panels[plan.panel]
    out: dict = {targets.tabs: gr.Tabs(selected=plan.panel), targets.status: message,
                 **{widgets[name]: value for name, value in plan.values.items() if name in widgets}}
    if plan.panel in targets.statuses:
        out[targets.statuses[plan.panel]] = message
    return out
