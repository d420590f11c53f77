"""Fusion slots beyond slot 3, and fusion that sends what it says.

Models that take more than three references (2.1-pro: up to ten) grow the fusion panel: slots
slot 4...slot 10 stay hidden until the chosen model allows them (a slot that holds an image stays in
sight, so nothing hidden is ever sent), and are sent in order after slot 1-slot 3.

Before a fusion is sent, its instruction is checked against the slots that hold an image
(:func:`aliyun_image.jobs.follow`): references move with the images (slots 1 and 3 filled: slot 3
is sent as slot 2, and the page says so), and a reference to an empty slot is refused before
anything is sent, naming the slot to fill.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..catalog import listing
from ..i18n import render
from ..jobs import follow
from .endpoints import EXTRA_SLOTS
from .rewrite_options import effective_spec
from .strings import slot_name, t
from .widgets import PRIVATE, upload

FIRST_EXTRA = 4  # slot 1-slot 3 are the panel's first row; slot 4 on follow it
MAX_SLOTS = FIRST_EXTRA + len(EXTRA_SLOTS) - 1  # 10: the most any model takes (2.1-pro)


def build_extra_slots() -> list[gr.Image]:
    """Slots slot 4...slot 10 in a row of their own, hidden until the chosen model takes that many."""
    with gr.Row(elem_id="fuse-more-slots"):
        return [upload(f"params.img{k}", f"fuse-img{k}", 180, visible=False)
                for k in range(FIRST_EXTRA, MAX_SLOTS + 1)]


def extra_slots_shown(quality: str, model: str, *slots: Any) -> list[Any]:
    """Which of slot 4...slot 10 show: those the effective fusion model takes, and any that holds an
    image (hidden, it would still be sent: in sight, the refusal that follows makes sense)."""
    spec = effective_spec("fuse", quality, model)
    top = spec.images_max if spec is not None else 3
    return [gr.Image(visible=k <= top or bool(path)) for k, path in enumerate(slots, FIRST_EXTRA)]


def wire_extra_slots(demo: gr.Blocks, quality: Any, model: Any, extra: list[Any]) -> None:
    """slot 4...slot 10 follow the fusion panel's quality switch and model picker, from page load on,
    and hide again when emptied beyond what the model takes."""
    inputs = [quality, model, *extra]
    for w in (quality, model):
        w.change(extra_slots_shown, inputs, extra, **PRIVATE)
    for slot in extra:
        slot.change(extra_slots_shown, inputs, extra, **PRIVATE)
    demo.load(extra_slots_shown, inputs, extra, **PRIVATE)


@dataclass(frozen=True)
class FusionSend:
    """What a fusion sends: the filled slots' images in order and the instruction as renumbered,
    a note for the status line, or why nothing can be sent."""

    images: list[Any]
    instruction: str
    note: str = ""  # Markdown, shown once the run has started ("" for none)
    refusal: str = ""  # plain text: why nothing was sent ("" when it can be sent)


def fusion_send(slots: Sequence[Any], instruction: str, lang: str) -> FusionSend:
    """The images of the filled ``slots`` (slot 1 first) and ``instruction`` with its references
    following them; a reference to an empty slot gives a refusal naming the slots to fill."""
    filled = [k for k, image in enumerate(slots, 1) if image]
    images = [slots[k - 1] for k in filled]
    refs = follow(instruction or "", filled)
    if not refs.ok:
        names = render(lang, listing(slot_name(k) for k in refs.missing))
        return FusionSend(images, instruction, refusal=t(lang, "params.ref_empty", slots=names))
    if refs.renumbered:
        moves = "; ".join(t(lang, "params.sent_as", slot=slot_name(old), sent=slot_name(new))
                          for old, new in sorted(refs.renumbered.items()))
        return FusionSend(images, refs.instruction, note=t(lang, "params.renumbered", moves=moves))
    if len(images) >= 2 and filled != list(range(1, len(filled) + 1)):
        # Gaps with no reference to move: the order the images go out in is still worth saying.
        return FusionSend(images, refs.instruction,
                          note=t(lang, "fuse_gap", order=" → ".join(slot_name(k) for k in filled)))
    return FusionSend(images, refs.instruction)
