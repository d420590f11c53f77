"""Small helps in the forms: edit templates that fill the instruction at once without overwriting
what the user wrote, and fusion slots that say at once whether a dropped file is an image (and
which image sets the output's aspect ratio), and swap places.

Both are private events on values the page already has; nothing here calls the API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from ..generation import verify_image
from ..errors import AliyunImageError
from .page_text import md
from .request_info import request_lang
from .strings import preset_instruction, slot_name, t
from .widgets import PRIVATE


def _template_text(preset: str, style: str, obj: str, lang: str) -> str:
    return preset_instruction(preset, style if preset == "style" else obj, lang)


def template_changed(preset: str, style: str, obj: str, instruction: str, last: str,
                     request: gr.Request) -> tuple[Any, str, str]:
    """A template, style or object was chosen: fill the instruction when it is empty or still the
    last template's text; otherwise keep the user's words and say how to replace them.

    Returns (instruction, the template text now in the box, note).
    """
    lang = request_lang(request)
    text = _template_text(preset, style, obj, lang)
    mine = (instruction or "").strip()
    if not mine or mine == (last or "").strip():
        return text, text, ""
    note = t(lang, "tpl_kept", text=md(text), button=t(lang, "apply_preset"))
    return gr.skip(), last, note


def template_fill(preset: str, style: str, obj: str, request: gr.Request) -> tuple[str, str, str]:
    """The fill button: the user asked, so the template's text replaces the instruction."""
    text = _template_text(preset, style, obj, request_lang(request))
    return text, text, ""


def wire_templates(edit: Any) -> None:
    """The edit panel (``edit``): choosing a template (or its style or object) fills at once; the
    button replaces."""
    preset, style, obj, instruction = edit.preset, edit.style, edit.obj, edit.instruction
    last = gr.State("")
    outputs = [instruction, last, edit.template_note]
    for w in (preset, style, obj):
        w.input(template_changed, [preset, style, obj, instruction, last], outputs, **PRIVATE)
    edit.fill.click(template_fill, [preset, style, obj], outputs, **PRIVATE)


def _image_size(path: str) -> tuple[int, int] | None:
    try:
        return verify_image(Path(path), show_path=False)
    except AliyunImageError:
        return None


def check_slots(request: gr.Request, *paths: str | None) -> str:
    """One line per filled fusion slot (slot 1 first; slot 4 on where the model takes more): its size,
    or that the file is not an image; the last image is marked as the one whose aspect ratio
    the output follows. (``request`` comes first: Gradio hands the slots over as ``paths``.)"""
    lang = request_lang(request)
    sizes = {i: (p, _image_size(str(p))) for i, p in enumerate(paths, 1) if p}
    last = max((i for i, (_, size) in sizes.items() if size), default=None)
    lines = []
    for i, (path, size) in sizes.items():
        slot = slot_name(i)
        if size is None:
            lines.append(t(lang, "slot_not_image", slot=slot, name=md(Path(str(path)).name)))
            continue
        line = t(lang, "slot_ok", slot=slot, w=size[0], h=size[1])
        lines.append(line + (" · " + t(lang, "slot_sets_ratio") if i == last else ""))
    return "\n\n".join(lines)


def check_upload(path: str | None, request: gr.Request) -> str:
    """The edit panel's upload, checked as it arrives (as fusion's slots are): its size, or that
    the file is not an image this app can read; nothing for an empty box."""
    if not path:
        return ""
    lang = request_lang(request)
    slot, size = t(lang, "edit_image"), _image_size(str(path))
    if size is None:
        return t(lang, "slot_not_image", slot=slot, name=md(Path(str(path)).name))
    return t(lang, "slot_ok", slot=slot, w=size[0], h=size[1])


def wire_upload_check(edit: Any) -> None:
    """The edit panel (``edit``): every change of its upload is checked at once."""
    edit.image.change(check_upload, edit.image, edit.image_note, **PRIVATE)


def swap(a: Any, b: Any) -> tuple[Any, Any]:
    """Swap two fusion slots."""
    return b, a


def wire_slots(fuse: Any) -> None:
    """The fusion panel (``fuse``): every change of a slot (drop, paste, swap, clear) re-checks them
    all (slot 4 on too, where the model takes more); the swap buttons exchange neighbours."""
    a, b, c = fuse.slots
    slots = [*fuse.slots, *fuse.more_slots]
    for slot in slots:
        slot.change(check_slots, slots, fuse.slot_note, **PRIVATE)
    fuse.swap12.click(swap, [a, b], [a, b], **PRIVATE)
    fuse.swap23.click(swap, [b, c], [b, c], **PRIVATE)
