"""Compare two results (issue 18.4): side by side, as a slider, and their recipes' differences highlighted (the
prompts word by word), under the gallery.

Pick them with two id boxes and *Compare*, or with *Compare with…* in the selected result's details (the first
click makes it A, the second B and compares). Every call reads through the caller's
:class:`~aliyun_image.storage.Gallery`: in hosted mode an id that is not the visitor's own (sent by hand through
the queue too) compares nothing and shows nothing of it, with the same words as an id that does not exist.
The events are private (UI plumbing, not an API).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..recipes import FieldDiff, recipe_diff, word_diff
from ..runtime import AppContext
from ..storage import Record
from .page_text import as_record_id
from .request_info import caller_gallery, request_lang
from .strings import t
from .widgets import I18N, PRIVATE, label, scroll_to

# After a pick, browser-side: once B is filled in (the second pick), bring the compare view into sight, as
# a tap on a thumbnail brings the details (on a phone it lies screens below the button). After the first,
# the gallery's status line says what to do next: on a phone it lies under five stacked buttons, so it is
# brought into the screen's middle when it is out of sight (the button stays near); on a desktop nothing moves.
SCROLL_WHEN_PAIRED = f"""() => {{ if (document.querySelector('#compare-b input')?.value) {{
  ({scroll_to("#compare")})(); return; }}
  const el = document.querySelector('#gallery-status'); if (!el) return;
  const r = el.getBoundingClientRect();
  if (r.top < 0 || r.bottom > window.innerHeight) el.scrollIntoView({{behavior: 'smooth', block: 'center'}}); }}"""

# The page text naming each field of recipes.compare.recipe_diff.
_LABELS = {"task": "record.task", "model": "record.model", "size": "record.size", "seed": "record.seed",
           "prompt": "prompt", "negative": "negative", "prompt_extend": "record.prompt_extend",
           "mode": "compare_view.mode", "actual": "compare_view.actual", "watermark": "record.watermark"}
_DIFFERS = "background: rgba(250, 204, 21, 0.22);"  # a differing row (light and dark themes alike)


@dataclass
class CompareWidgets:
    """The compare section under the gallery."""

    box: gr.Accordion
    a: gr.Number
    b: gr.Number
    run: gr.Button
    note: gr.Markdown
    image_a: gr.Image
    image_b: gr.Image
    slider: gr.ImageSlider
    table: gr.HTML


def build_pick() -> gr.Button:
    """*Compare with…*, for the selected result's details."""
    return gr.Button(I18N("compare_view.pick"), size="sm", elem_id="gallery-compare-pick")


def build_compare() -> CompareWidgets:
    """The compare section (call inside the gallery tab, below the thumbnails and details)."""
    with gr.Accordion(I18N("compare_view.title"), open=False, elem_id="compare") as box:
        with gr.Row():
            a = gr.Number(label=I18N("compare_view.a"), precision=0, minimum=1, elem_id="compare-a")
            b = gr.Number(label=I18N("compare_view.b"), precision=0, minimum=1, elem_id="compare-b")
            run = gr.Button(I18N("compare_view.run"), variant="primary", elem_id="compare-run")
        note = gr.Markdown(elem_id="compare-note")
        with gr.Row(equal_height=True):
            image_a = gr.Image(label="A", interactive=False, format="png", height=360, elem_id="compare-image-a",
                               buttons=["fullscreen"])
            image_b = gr.Image(label="B", interactive=False, format="png", height=360, elem_id="compare-image-b",
                               buttons=["fullscreen"])
        slider = gr.ImageSlider(label=label("compare_view.slider"), type="filepath", format="png", interactive=False,
                                max_height=520, elem_id="compare-slider")
        table = gr.HTML(elem_id="compare-table")
    return CompareWidgets(box, a, b, run, note, image_a, image_b, slider, table)


# --- the table ------------------------------------------------------------------------------------------
def _value(field: FieldDiff, value: Any, lang: str) -> str:
    """A field's value as escaped HTML text."""
    if isinstance(value, bool):
        text = t(lang, "yes" if value else "no")
    elif field.name == "task" and value:
        text = t(lang, f"task.{value}")
    elif value is None or value == "":
        text = "—"
    else:
        text = str(value)
    return html.escape(text)


def _texts_html(a: str, b: str) -> tuple[str, str]:
    """Two prompts word-diffed: words only in A struck through, only in B underlined, shared ones plain."""
    left, right = [], []
    for kind, text in word_diff(a, b):
        piece = html.escape(text)
        if kind == "same":
            left.append(piece)
            right.append(piece)
        elif kind == "a":
            left.append(f'<del style="background: rgba(239, 68, 68, 0.25);">{piece}</del>')
        else:
            right.append(f'<ins style="background: rgba(34, 197, 94, 0.25);">{piece}</ins>')
    return "".join(left) or "—", "".join(right) or "—"


def diff_html(a: Record, b: Record, lang: str) -> str:
    """The two recipes as an HTML table (field, A, B), differing rows highlighted, prompts word-diffed."""
    rows = [f'<tr><th>{html.escape(t(lang, "compare_view.field"))}</th><th>A · #{a.id}</th><th>B · #{b.id}</th></tr>']
    for field in recipe_diff(a, b):
        if field.worded:
            va, vb = _texts_html(str(field.a), str(field.b))
        else:
            va, vb = _value(field, field.a, lang), _value(field, field.b, lang)
        style = "" if field.same else f' style="{_DIFFERS}" data-differs="1"'
        name = html.escape(t(lang, _LABELS[field.name]))
        rows.append(f'<tr{style}><td><b>{name}</b></td><td style="white-space: pre-wrap;">{va}</td>'
                    f'<td style="white-space: pre-wrap;">{vb}</td></tr>')
    return ('<table class="compare-recipes" style="width: 100%; table-layout: fixed;">'
            + "".join(rows) + "</table>")


def summary(a: Record, b: Record, lang: str) -> str:
    """How many of the compared fields differ, and how the prompts' differences are marked (only when
    a prompt is shown word by word: identical prompts mark nothing, so a legend would explain nothing)."""
    fields = recipe_diff(a, b)
    n = sum(1 for f in fields if not f.same)
    head = t(lang, "compare_view.summary", n=n, total=len(fields)) if n else t(lang, "compare_view.summary_none")
    text = f"{t(lang, 'compare_view.picked_b', a=a.id, b=b.id)} {head}"
    return text + f"\n\n{t(lang, 'compare_view.legend')}" if any(f.worded for f in fields) else text


# --- the events -----------------------------------------------------------------------------------------
class CompareView:
    """The compare section's events, bound to one :class:`AppContext`."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    def _empty(self, note: str) -> tuple[Any, ...]:
        return (gr.Image(value=None, label="A"), gr.Image(value=None, label="B"), None, "", note)

    def compare(self, a: Any, b: Any, request: gr.Request) -> tuple[Any, ...]:
        """Results ``a`` and ``b`` (the caller's own) side by side, as a slider, and their recipes' differences:
        the two images, the slider's pair, the table and a note (which says what is missing instead)."""
        lang = request_lang(request)
        ida, idb = as_record_id(a), as_record_id(b)
        if ida is None or idb is None:
            return self._empty(t(lang, "compare_view.none"))
        if ida == idb:
            return self._empty(t(lang, "compare_view.same_ids", id=ida))
        gallery = caller_gallery(self.ctx, request)
        recs: list[Record] = []
        for rid in (ida, idb):
            rec = gallery.get(rid)
            if rec is None or rec.file is None:
                return self._empty(t(lang, "compare_view.missing", id=rid))
            recs.append(rec)
        ra, rb = recs
        return (gr.Image(value=str(ra.file), label=t(lang, "compare_view.side_a", id=ra.id)),
                gr.Image(value=str(rb.file), label=t(lang, "compare_view.side_b", id=rb.id)),
                (str(ra.file), str(rb.file)), diff_html(ra, rb, lang), summary(ra, rb, lang))

    def pick(self, selected: Any, a: Any, b: Any, request: gr.Request) -> tuple[Any, ...]:
        """*Compare with…* on the selected result: the first pick is A, the next B (then both are compared);
        a pick after a comparison starts a new pair. What to do next is said on the gallery's status line
        too, under the button the user just pressed (the compare section lies far below it)."""
        lang = request_lang(request)
        rid = as_record_id(selected)
        if rid is None or caller_gallery(self.ctx, request).get(rid) is None:
            said = t(lang, "no_selection")
            return (gr.skip(), gr.skip(), *(gr.skip(),) * 4, said, gr.skip(), said)
        ida, idb = as_record_id(a), as_record_id(b)
        if ida is None or idb is not None or ida == rid:
            said = t(lang, "compare_view.picked_a", id=rid)
            return (rid, None, *self._empty(said), gr.Accordion(open=True), said)
        shown = self.compare(ida, rid, request)
        return (ida, rid, *shown, gr.Accordion(open=True), t(lang, "compare_view.picked_b", a=ida, b=rid))

    def wire(self, g: Any, pick: gr.Button, w: CompareWidgets) -> None:
        """The compare section's events; ``pick`` (in the details of the gallery panel ``g``) picks A and B
        (saying what comes next on ``g.status``), and once B is picked the compare view comes into sight."""
        shown = [w.image_a, w.image_b, w.slider, w.table, w.note]
        w.run.click(self.compare, [w.a, w.b], shown, **PRIVATE)
        for box in (w.a, w.b):
            box.submit(self.compare, [w.a, w.b], shown, **PRIVATE)
        pick.click(self.pick, [g.selected, w.a, w.b], [w.a, w.b, *shown, w.box, g.status], **PRIVATE).then(
            None, None, None, js=SCROLL_WHEN_PAIRED, **PRIVATE)
