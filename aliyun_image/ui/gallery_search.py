"""The gallery at fifty images a day: search as you type (debounced in the page), choosing images
for a zip on the thumbnails (select mode, select all / none), and one zip of everything that
matches the search and filters.

Ticked thumbnails are marked ``✓`` in their caption; the ticks live in the page's checkbox list
(``picks``), which the existing "download selection" zip reads. Every handler works through the
caller's :class:`~aliyun_image.storage.gallery.Gallery`: ids that are not the caller's are dropped.

Public endpoint: ``/download_matching`` (parameters in :data:`.endpoints.PARAMS`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..storage import result_sets
from ..runtime import AppContext
from .endpoints import check_handler
from .page_text import as_record_id, caption, ui_error
from .request_info import caller_gallery, request_lang
from .strings import t
from .widgets import I18N, PRIVATE

# Debounce in the page: each keystroke restarts a 300 ms timer and only the last one's promise
# resolves, so typing a word sends one search, not one per letter (Gradio has no debounce; its
# trigger_mode="always_last" only collapses calls made while one is in flight).
DEBOUNCE_JS = """(q, task, model) => new Promise((resolve) => {
  clearTimeout(window.__aliyunImageSearch);
  window.__aliyunImageSearch = setTimeout(() => resolve([q, task, model]), 300);
})"""

# Zips are written to disk and copied into Gradio's cache: at most two are made at once, however
# many clicks or crafted calls arrive (the rest wait in the queue).
ZIPS: dict[str, Any] = {"concurrency_id": "zips", "concurrency_limit": 2}


@dataclass
class SelectWidgets:
    """The row above the zip controls: select mode, select all / none, the zip of all matches."""

    mode: gr.Checkbox
    pick_all: gr.Button
    pick_none: gr.Button
    match_zip: gr.Button
    info: gr.Markdown


def select_row() -> SelectWidgets:
    """Select mode (clicking a thumbnail ticks it), select all / none, and the zip of all matches."""
    with gr.Row(equal_height=True, elem_id="gallery-select-row"):
        mode = gr.Checkbox(label=I18N("action.select_mode"), value=False, elem_id="gallery-select-mode", scale=3)
        pick_all = gr.Button(I18N("action.select_all"), size="sm", elem_id="gallery-pick-all", scale=1)
        pick_none = gr.Button(I18N("action.select_none"), size="sm", elem_id="gallery-pick-none", scale=1)
        match_zip = gr.Button(I18N("action.zip_matching"), size="sm", elem_id="gallery-zip-matching", scale=2)
    info = gr.Markdown(elem_id="gallery-select-info")
    return SelectWidgets(mode, pick_all, pick_none, match_zip, info)


def _ids(values: Any) -> list[int]:
    """Distinct ids from what the page (or a crafted call) sent; anything else is dropped."""
    out: list[int] = []
    for v in values if isinstance(values, list) else []:
        i = as_record_id(v)
        if i is not None and i not in out:
            out.append(i)
    return out[:100]


class GallerySearch:
    """The gallery's search as you type, selection and matching-zip events, bound to one
    :class:`AppContext`."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    def _marked(self, ids: list[int], picks: list[int], request: gr.Request | None, lang: str) -> tuple[Any, ...]:
        """The page's thumbnails with ✓ on the ticked ones, the ticks, and a line that counts them."""
        gallery = caller_gallery(self.ctx, request)
        recs = [r for r in (gallery.get(i) for i in ids) if r is not None and r.file is not None]
        picks = [i for i in picks if i in {r.id for r in recs}]
        items = [(str(gallery.thumbnail(r) or r.file), ("✓ " if r.id in picks else "") + caption(r, lang))
                 for r in recs]
        line = (t(lang, "action.selected_count", n=len(picks), ids=", ".join(f"#{i}" for i in picks)) if picks
                else t(lang, "action.selected_none"))
        return items, gr.CheckboxGroup(value=picks), line

    def gallery_toggle(self, ids: list[int], mode: bool, picks: list[int], evt: gr.SelectData, request: gr.Request):
        """Select mode: a click on a thumbnail ticks or unticks it for the zip."""
        if not mode:
            return gr.skip(), gr.skip(), gr.skip()
        page, ticked = _ids(ids), _ids(picks)
        idx = evt.index if isinstance(evt.index, int) else None
        if idx is None or not 0 <= idx < len(page):
            return gr.skip(), gr.skip(), gr.skip()
        rid = page[idx]
        ticked = [i for i in ticked if i != rid] if rid in ticked else [*ticked, rid]
        return self._marked(page, ticked, request, request_lang(request))

    def gallery_pick_all(self, ids: list[int], request: gr.Request):
        """Tick every thumbnail of the page."""
        page = _ids(ids)
        return self._marked(page, page, request, request_lang(request))

    def gallery_pick_none(self, ids: list[int], request: gr.Request):
        """Untick every thumbnail."""
        return self._marked(_ids(ids), [], request, request_lang(request))

    def gallery_marks(self, ids: list[int], picks: list[int], request: gr.Request):
        """The list of ticks changed: mark the thumbnails the same way."""
        return self._marked(_ids(ids), _ids(picks), request, request_lang(request))

    def download_matching(self, query: str, task: str, model: str, request: gr.Request):
        """Everything in your gallery that matches a search and filters, as one zip of the original
        PNGs (the newest 200 when more match; the message says how many matched).

        Args:
            query: Text the prompt (or rewritten prompt) contains; empty for any.
            task: "t2i", "edit", "fuse", or empty for any.
            model: A model id, or empty for any.
        Returns:
            The zip and a message. Raises an error when nothing matches.
        """
        lang = request_lang(request)
        gallery = caller_gallery(self.ctx, request)
        recs, total = gallery.matching(query=str(query or "")[:200], task=str(task or ""), model=str(model or ""),
                                       cap=result_sets.MATCH_ZIP_CAP)
        ids = [r.id for r in recs]
        dest = self.ctx.zip_path(f"aliyun-image-matching-{len(ids)}-images.zip", ids)
        out = gallery.export_zip(ids, dest) if ids else None
        if out is None:
            raise ui_error(lang, t(lang, "action.zip_matching_none"))
        message = (t(lang, "action.zip_matching_capped", total=total, n=len(ids)) if total > len(ids)
                   else t(lang, "action.zip_matching_done", n=len(ids)))
        return str(out), message

    def wire(self, g: Any, first_page: Callable[..., Any]) -> None:
        """Search as you type (``first_page``: the gallery's new-search handler), the select row and
        the matching zip (``g``: the GalleryPanel)."""
        check_handler(self.download_matching, "download_matching")
        filters, page_out = g.filters(), g.page_outputs()
        # .change, not .input: Gradio's textbox sends "input" for key presses only, so Chinese typed
        # through an input method (or pasted) would never search; nothing else writes this box.
        g.query.change(first_page, filters, page_out, js=DEBOUNCE_JS, trigger_mode="always_last", **PRIVATE)
        s: SelectWidgets = g.select
        marks = [g.grid, g.picks, s.info]
        g.grid.select(self.gallery_toggle, [g.page_ids, s.mode, g.picks], marks, **PRIVATE)
        s.pick_all.click(self.gallery_pick_all, g.page_ids, marks, **PRIVATE)
        s.pick_none.click(self.gallery_pick_none, g.page_ids, marks, **PRIVATE)
        g.picks.input(self.gallery_marks, [g.page_ids, g.picks], marks, **PRIVATE)
        s.match_zip.click(self.download_matching, filters, [g.zip_file, s.info], api_name="download_matching",
                          **ZIPS).success(
            shown, None, g.zip_file, **PRIVATE)
        g.zip_button.click(shown, None, g.zip_file, **PRIVATE)  # the zip's box appears with the first zip


def shown() -> gr.File:
    """A zip's file box appears once there is a zip (before, it would be an empty box)."""
    return gr.File(visible=True)
