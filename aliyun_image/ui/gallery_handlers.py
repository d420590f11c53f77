"""The gallery tab's handlers (all private events): paging, details, download, zip, delete and
Undo, sending a result to another panel, and its parameters back into the panel it came from
(with the rewritten prompt too: "keep this wording").

Every call goes through the :class:`~aliyun_image.storage.gallery.Gallery` of the caller's session, so in
hosted mode a visitor can only see and change their own results, whatever ids they send.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import gradio as gr

from ..money import money_text, record_cost, record_cost_text
from ..recipes import reuse_values
from ..storage import Gallery
from ..storage import Page, Record
from ..generation import grid, rewrite_table
from ..runtime import AppContext
from .page_text import as_record_id, caption, md
from .lineage_memo import ReuseMemo
from .request_info import caller_gallery, request_lang, request_session
from .reuse_fill import ReuseTargets, fill_panel, reused_text
from .rewrite_options import effective_spec
from .strings import slot_name, t
from .widgets import PRIVATE, scroll_to

__all__ = ["GalleryHandlers", "ReuseTargets", "details_md", "wording_button"]

PAGE_SIZE = 24


def details_md(rec: Record, lang: str, gallery: Gallery | None = None) -> str:
    """The selected result's full record as Markdown: a table, then prompt, negative, inputs. A grid's
    record (:func:`_grid_rows`) tells its axes and cells, read through ``gallery`` (the caller's own)."""
    def yes_no(on: object) -> str:
        return t(lang, "yes" if on else "no")

    if rec.task == grid.TASK:
        rows = _grid_rows(rec, lang, gallery)
    else:
        rows = [
            ("record.task", t(lang, f"task.{rec.task}")), ("record.model", md(rec.model)),
            ("record.size", md(rec.size)), ("record.seed", str(rec.seed)),
            ("record.prompt_extend", yes_no(rec.params.get("prompt_extend"))),
            ("record.watermark", yes_no(rec.params.get("watermark"))),
            ("record.request_id", md(rec.request_id or "-")), ("record.cost", md(record_cost_text(rec, lang))),
            ("record.time", _when(rec)),
            ("record.file", f"{md(rec.file.name) if rec.file else '-'} ({rec.bytes // 1024} KB)"),
        ]
    # The id is the table's header row: a Markdown table needs one, and an empty one looks broken.
    out = f"| ID | #{rec.id} |\n|---|---|\n" + "\n".join(f"| {t(lang, k)} | {v} |" for k, v in rows)
    out += f"\n\n**{t(lang, 'prompt')}:** {md(rec.prompt)}"
    if rec.negative:
        out += f"\n\n**{t(lang, 'negative')}:** {md(rec.negative)}"
    if rec.actual_prompt:
        out += "\n\n" + rewrite_table(rec.prompt, rec.actual_prompt, lang)  # side by side
    if rec.inputs:
        names = ", ".join(f"{slot_name(i + 1)} {md(inp.get('name', ''))}" for i, inp in enumerate(rec.inputs))
        out += f"\n\n**{t(lang, 'record.inputs')}:** {names}"
    return out


def _when(rec: Record) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(rec.created))


def _grid_rows(rec: Record, lang: str, gallery: Gallery | None) -> list[tuple[str, str]]:
    """A grid's rows: its axes and cells, then each fact of its cells (one value, "varies (Model)" along an
    axis, "differs between cells" otherwise), what its cells cost and its own file. Never a raw None:
    the grid row itself has no seed or request (its cells do)."""
    cells = [c for c in (gallery.get(i) for i in grid.member_ids(rec)) if c is not None] if gallery else []
    facts = grid.grid_facts(rec, cells)

    def shown(name: str) -> str:
        fact = facts.facts[name]
        if fact.axis:
            return t(lang, "grid_ux.varies_axis", axis=grid.title(fact.axis, lang))
        if fact.mixed:
            return t(lang, "grid_ux.varies")
        if not fact.known:
            return md(rec.model) if name == "model" else "-"
        if isinstance(fact.value, bool):
            return t(lang, "yes" if fact.value else "no")
        return "-" if fact.value is None else md(str(fact.value))

    made = (str(facts.cells) if facts.made >= facts.cells
            else t(lang, "grid_ux.cells_made", made=facts.made, n=facts.cells))
    rows = [("record.task", t(lang, f"task.{rec.task}")), ("grid_ux.axes", md(grid.axes_text(facts.axes, lang))),
            ("grid_ux.cells", made)]
    rows += [(f"record.{name}", shown(name)) for name in grid.FACTS]
    rows.append(("record.cost", md(_cells_cost(rec, cells, lang))))
    size = md(rec.size) if rec.size else "-"
    name = md(rec.file.name) if rec.file else "-"
    rows += [("record.time", _when(rec)), ("record.file", t(lang, "grid_ux.file", name=name, size=size,
                                                             kb=rec.bytes // 1024))]
    return rows


def _cells_cost(rec: Record, cells: list[Record], lang: str) -> str:
    """What a grid's cells cost together, per currency ("not billed" when none was)."""
    totals: dict[str, Decimal] = {}
    for cell in cells:
        c = record_cost(cell)
        price = c["unit_price"]
        if c["billed"] and price is not None:
            totals[c["currency"]] = totals.get(c["currency"], Decimal(0)) + Decimal(str(price))
    if not totals:
        return record_cost_text(cells[0] if cells else rec, lang)
    cost = " + ".join(money_text(v, k) for k, v in sorted(totals.items()))
    return t(lang, "grid_ux.cost", cost=cost, n=len(cells))


def wording_button(rec: Record | None) -> Any:
    """The "keep this wording" button as it fits ``rec``: hidden for a grid."""
    return gr.Button(visible=rec is None or rec.task != grid.TASK)


class GalleryHandlers:
    """The gallery tab's events, bound to one :class:`AppContext` and the widgets reuse fills."""

    def __init__(self, ctx: AppContext, reuse: ReuseTargets | None = None, reuses: ReuseMemo | None = None):
        self.ctx = ctx
        self.reuse_targets = reuse
        self.reuses = reuses  # what "Reuse parameters" put in a form: the next run's "reuse of #9" (lineage)

    def _gallery(self, request: gr.Request | None) -> Gallery:
        return caller_gallery(self.ctx, request)

    def _selected(self, selected: int | None, request: gr.Request | None) -> Record | None:
        """The selected result with its file, if it is the caller's and still there."""
        rec = self._gallery(request).get(int(selected)) if selected else None
        return rec if rec is not None and rec.file is not None else None

    def _list(self, gallery: Gallery, page: int, query: str, task: str, model: str) -> Page:
        return gallery.browse(offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE, query=query or None,
                              task=task or None, model=model or None)

    def gallery_page(self, query: str, task: str, model: str, page: float, request: gr.Request):
        """One page of the visitor's results as thumbnails, newest first."""
        lang = request_lang(request)
        gallery = self._gallery(request)
        page = max(1, int(page or 1))
        found = self._list(gallery, page, query, task, model)
        pages = max(1, -(-found.total // PAGE_SIZE))
        if page > pages and found.exact:  # e.g. after deleting the last item of the last page
            page = pages
            found = self._list(gallery, page, query, task, model)
            pages = max(1, -(-found.total // PAGE_SIZE))
        recs, total = found.records, found.total
        items = [(str(gallery.thumbnail(r) or r.file), caption(r, lang)) for r in recs]
        filtered = bool(query or task or model)
        # a broad search stops counting at storage.gallery.COUNT_CAP (or this page's end): "more than 1000"
        info = (t(lang, "page" if found.exact else "gallery_count.page_more", page=page, pages=pages, total=total)
                if total else t(lang, "no_match") if filtered else t(lang, "empty_gallery"))
        choices = [(f"#{r.id} {r.prompt[:24]}", r.id) for r in recs]
        names = gallery.models()
        models = [(t(lang, "all"), "")] + [(m, m) for m in names]
        return (items, info, [r.id for r in recs], page, gr.CheckboxGroup(choices=choices, value=[]),
                gr.Dropdown(choices=models))

    def gallery_first_page(self, query: str, task: str, model: str, request: gr.Request):
        """New search or filter: back to page 1."""
        return self.gallery_page(query, task, model, 1, request)

    def gallery_step(self, query: str, task: str, model: str, page: float, step: int, request: gr.Request):
        """Previous / next page."""
        return self.gallery_page(query, task, model, max(1, int(page or 1) + int(step)), request)

    def gallery_select(self, ids: list[int], evt: gr.SelectData, request: gr.Request):
        """Show the selected result's full record and enable its actions."""
        lang = request_lang(request)
        idx = evt.index if isinstance(evt.index, int) else (evt.index or [0])[0]
        rec = self._selected(ids[idx], request) if ids and idx is not None and idx < len(ids) else None
        if rec is None:
            return None, t(lang, "no_selection"), None, gr.DownloadButton(value=None, interactive=False), ""
        # the last value clears the action line ("Select an image first", "Deleted #3"...)
        return (rec.id, details_md(rec, lang, self._gallery(request)), str(rec.file),
                gr.DownloadButton(value=str(rec.file), interactive=True), "")

    def wording_shown(self, ids: list[int], evt: gr.SelectData, request: gr.Request) -> Any:
        """"Reuse with the rewritten wording" only for a result it makes sense for: not a grid (its cells
        have their own wordings)."""
        idx = evt.index if isinstance(evt.index, int) else (evt.index or [0])[0]
        rid = as_record_id(ids[idx]) if ids and isinstance(idx, int) and 0 <= idx < len(ids) else None
        return wording_button(self._gallery(request).get(rid) if rid is not None else None)

    def gallery_delete(self, selected: int | None, request: gr.Request):
        """Move the selected result to the trash (only the visitor's own) and offer Undo."""
        lang = request_lang(request)
        if not selected:
            return gr.update(), t(lang, "no_selection"), None, gr.Button(visible=False)
        ok = self._gallery(request).delete(int(selected))
        if not ok:
            return None, t(lang, "no_selection"), None, gr.Button(visible=False)
        return None, t(lang, "keep.trashed", id=selected), int(selected), gr.Button(visible=True)

    def gallery_undo(self, last: int | None, request: gr.Request):
        """Bring the last deleted result back from the trash (only the caller's own)."""
        lang = request_lang(request)
        rec = self._gallery(request).restore(int(last)) if last else None
        if rec is None:
            return t(lang, "keep.undo_nothing"), None, gr.Button(visible=False)
        return t(lang, "keep.undone", id=rec.id), None, gr.Button(visible=False)

    def gallery_zip(self, checked: list[int], request: gr.Request):
        """Zip the ticked results' originals for download."""
        lang = request_lang(request)
        # Only the page's thumbnails can be ticked: at most a page of distinct ids (a crafted call
        # with one id repeated thousands of times must not write a giant zip).
        ids = list(dict.fromkeys(int(i) for i in (checked or [])))[:PAGE_SIZE]
        if not ids:
            return None, t(lang, "zip_empty")
        dest = self.ctx.zip_path(f"aliyun-image-{len(ids)}-images.zip", ids)
        out = self._gallery(request).export_zip(ids, dest)
        if out is None:
            return None, t(lang, "zip_empty")
        return str(out), t(lang, "zip_ready", n=len(ids))

    def send_to_edit(self, selected: int | None, request: gr.Request):
        """Put the selected result into the edit panel's input and switch to it."""
        lang = request_lang(request)
        rec = self._selected(selected, request)
        if rec is None:
            return gr.update(), gr.Tabs(), t(lang, "no_selection")
        return str(rec.file), gr.Tabs(selected="edit"), t(lang, "sent_edit", id=rec.id)

    def send_to_fuse(self, request: gr.Request, selected: int | None, quality: str, model: str, *given: Any):
        """Put the selected result into the first free fusion slot among those the fusion panel's
        model takes (图1-图3, up to 图10 for models that take ten), and stay on the gallery, so
        several results go in one after the other. (``request`` comes first: Gradio hands every
        slot over as ``given``.) Returns every slot and the gallery's status line."""
        lang = request_lang(request)
        slots: list[Any] = list(given)
        rec = self._selected(selected, request)
        if rec is None:
            return (*slots, t(lang, "no_selection"))
        spec = effective_spec("fuse", quality, model)
        top = min(len(slots), max(3, spec.images_max if spec is not None else 3))
        free = next((i for i, v in enumerate(slots[:top]) if not v), None)
        if free is None:
            return (*slots, t(lang, "fuse_slots.full", n=top))
        slots[free] = str(rec.file)
        return (*slots, t(lang, "sent_fuse", id=rec.id, slot=free + 1))

    def reuse(self, selected: int | None, request: gr.Request) -> dict:
        """Fill the panel the result came from with its parameters (prompt, model, size, seed...)."""
        lang = request_lang(request)
        targets = self._targets()
        gallery = self._gallery(request)
        rec = gallery.get(int(selected)) if selected else None
        if rec is None:
            return {targets.status: t(lang, "no_selection")}
        plan = reuse_values(rec, gallery.input_files(rec))
        if self.reuses is not None:
            self.reuses.remember(request_session(request), plan.panel, rec)
        return fill_panel(targets, plan, reused_text(lang, rec.id, plan))

    def reuse_wording(self, selected: int | None, request: gr.Request) -> dict:
        """The gallery's "keep this wording": :meth:`reuse` of the selected result, with the rewritten prompt in
        the prompt box and rewriting off (see :mod:`.rewrite`)."""
        filled = self.reuse(selected, request)
        rec = self._gallery(request).get(int(selected)) if selected else None
        if rec is None:
            return filled
        targets = self._targets()
        if not rec.actual_prompt:
            return {targets.status: t(request_lang(request), "rewrite.none")}
        widgets = targets.panels[reuse_values(rec).panel]
        return {**filled, widgets["prompt"]: rec.actual_prompt, widgets["extend"]: False}

    def _targets(self) -> ReuseTargets:
        if self.reuse_targets is None:
            raise RuntimeError("GalleryHandlers built without reuse targets")  # a wiring bug, not a user's
        return self.reuse_targets

    # --- wiring ----------------------------------------------------------------------------------
    def wire_undo(self, g: Any) -> None:
        """Undo (``g``: the GalleryPanel) brings the last deleted result back and refreshes the page
        of thumbnails."""
        g.undo.click(self.gallery_undo, g.last_deleted, [g.status, g.last_deleted, g.undo], **PRIVATE).then(
            self.gallery_page, [*g.filters(), g.page_no], g.page_outputs(), **PRIVATE)

    def wire(self, g: Any, tabs: gr.Tabs, edit: Any, fuse: Any) -> None:
        """Paging, selection, delete, zip, and sending a result to the ``edit`` or ``fuse`` panel
        (switching ``tabs``) or its parameters back into its own."""
        filters, page_out = g.filters(), g.page_outputs()
        g.tab.select(self.gallery_page, [*filters, g.page_no], page_out, **PRIVATE)
        g.refresh.click(self.gallery_page, [*filters, g.page_no], page_out, **PRIVATE)
        for trigger in (g.query.submit, g.task.input, g.model.input):
            trigger(self.gallery_first_page, filters, page_out, **PRIVATE)
        g.prev.click(self.gallery_step, [*filters, g.page_no, gr.State(-1)], page_out, **PRIVATE)
        g.next.click(self.gallery_step, [*filters, g.page_no, gr.State(1)], page_out, **PRIVATE)
        g.grid.select(self.gallery_select, g.page_ids, [g.selected, g.details, g.preview, g.download, g.status],
                      **PRIVATE)
        # On a phone the details are below the whole grid: a tap goes there (not while ticking for a zip).
        g.grid.select(None, None, None, js=scroll_to("#gallery-preview", unless="#gallery-select-mode input"),
                      **PRIVATE)
        g.delete.click(self.gallery_delete, g.selected, [g.selected, g.status, g.last_deleted, g.undo],
                       **PRIVATE).then(
            self.gallery_page, [*filters, g.page_no], page_out, **PRIVATE).then(
            lambda: (None, "", gr.DownloadButton(value=None, interactive=False)), None,
            [g.preview, g.details, g.download], **PRIVATE)
        g.zip_button.click(self.gallery_zip, g.picks, [g.zip_file, g.status], **PRIVATE)
        g.to_edit.click(self.send_to_edit, g.selected, [edit.image, tabs, g.status], **PRIVATE)
        every = [*fuse.slots, *fuse.more_slots]  # 图1-图3, and 图4-图10 where the model takes them
        g.to_fuse.click(self.send_to_fuse, [g.selected, fuse.options.quality, fuse.options.model, *every],
                        [*every, g.status], **PRIVATE)
        filled = self._targets().outputs()
        g.reuse.click(self.reuse, g.selected, filled, **PRIVATE)
        if g.keep_wording is not None:
            g.grid.select(self.wording_shown, g.page_ids, g.keep_wording, **PRIVATE)
            g.keep_wording.click(self.reuse_wording, g.selected, filled, **PRIVATE)
