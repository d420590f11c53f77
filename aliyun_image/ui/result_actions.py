"""Actions on a run's results, under each run panel's result gallery (text to image, edit, fusion):
*edit this*, *use as slot 1/slot 2/slot 3*, *variations* (same recipe, new seeds) and *this run as a zip*;
and the recent prompts under each prompt box.

An action names a result by its stored record id only: the panel's hidden ``current`` number
holds the id of the thumbnail the visitor clicked, else of the run's first image (read from the
``#id`` each caption starts with). Every handler looks the id up in the caller's
:class:`~aliyun_image.storage.gallery.Gallery`, so in hosted mode a crafted call with someone else's id
(or garbage) is refused and changes nothing. Variations go through the run handlers' own path
(:meth:`.RunHandlers.stream`): the same quota, Stop and hosted rules as the Generate button.

Public endpoints (parameters in :data:`.endpoints.PARAMS`): ``/variations`` and
``/download_run``, wired on the text-to-image panel; the other panels use private copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..errors import AliyunImageError
from ..storage import Record
from ..recipes import variation_request
from ..runtime import AppContext
from .endpoints import check_handler
from .gallery_search import ZIPS, shown
from .page_text import as_record_id, caption_id, error_md, gr_error, md, ui_error
from .request_info import caller_gallery, request_lang
from .run_handlers import RunHandlers
from .strings import t
from .widgets import I18N, PRIVATE


@dataclass
class ActionWidgets:
    """The action row under a run panel's results."""

    current: gr.Number  # the record id the actions act on (hidden)
    edit: gr.Button
    slots: list[gr.Button]
    variations: gr.Button
    zip_run: gr.Button
    zip_file: gr.File
    note: gr.Markdown


def action_row(prefix: str) -> ActionWidgets:
    """Buttons for the selected (else first) result of the panel's last run."""
    current = gr.Number(value=None, precision=0, visible=False, elem_id=f"{prefix}-current")
    with gr.Row(elem_classes=["result-actions"], elem_id=f"{prefix}-actions"):
        # Disabled until there is a result to act on (cost_lines.wire enables them, and prices
        # the variations button).
        edit = gr.Button(I18N("action.edit"), size="sm", interactive=False, elem_id=f"{prefix}-act-edit")
        slots = [gr.Button(I18N(f"action.slot{i}"), size="sm", interactive=False, elem_id=f"{prefix}-act-slot{i}")
                 for i in (1, 2, 3)]
    with gr.Row(elem_classes=["result-actions"]):
        variations = gr.Button(I18N("action.variations"), size="sm", interactive=False,
                               elem_id=f"{prefix}-act-variations")
        zip_run = gr.Button(I18N("action.zip_run"), size="sm", interactive=False, elem_id=f"{prefix}-act-zip")
    note = gr.Markdown(elem_id=f"{prefix}-act-note")
    zip_file = gr.File(label=I18N("action.zip_file"), interactive=False, visible=False,
                       elem_id=f"{prefix}-act-zip-file")
    return ActionWidgets(current, edit, slots, variations, zip_run, zip_file, note)


def recent_box(prefix: str, box: gr.Textbox) -> gr.Dataset:
    """The owner's recent prompts under a prompt box: one click fills the box (hidden until there
    are some)."""
    return gr.Dataset(components=[box], samples=[], label=I18N("action.recent"), type="values", samples_per_page=8,
                      visible=False, elem_id=f"{prefix}-recent", elem_classes=["recent-prompts"])


def _short(text: str, limit: int = 60) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


class ResultActions:
    """The actions' events, bound to one :class:`AppContext` and the runs (variations are runs)."""

    def __init__(self, ctx: AppContext, runs: RunHandlers):
        self.ctx = ctx
        self.runs = runs

    def _owned(self, record_id: Any, request: gr.Request | None) -> Record | None:
        """The caller's stored result ``record_id`` with its file, or None (garbage, someone
        else's, deleted)."""
        rid = as_record_id(record_id)
        rec = caller_gallery(self.ctx, request).get(rid) if rid is not None else None
        return rec if rec is not None and rec.file is not None else None

    @staticmethod
    def _refusal(record_id: Any, lang: str) -> str:
        if record_id in (None, "") or (isinstance(record_id, (int, float)) and not record_id):
            return t(lang, "action.none")
        return t(lang, "action.not_yours", id=str(record_id)[:20])

    # --- which result the actions act on (private) -----------------------------------------------
    def result_picked(self, evt: gr.SelectData, request: gr.Request) -> tuple[Any, Any]:
        """The clicked thumbnail's record id (from its ``#id`` caption), and a line that says the
        actions now act on it."""
        value = evt.value if isinstance(evt.value, dict) else {}
        rid = caption_id(value.get("caption"))
        if rid is None:
            return gr.skip(), gr.skip()
        return rid, t(request_lang(request), "action.target", id=rid)

    def result_first(self, items: list | None) -> tuple[int | None, str]:
        """The first result of what the panel shows (new results reset the choice, and clear the
        line that named the old one)."""
        first = items[0] if items else None
        return (caption_id(first[1]) if isinstance(first, (list, tuple)) and len(first) > 1 else None), ""

    # --- the actions -----------------------------------------------------------------------------
    def edit_this(self, record_id: Any, request: gr.Request):
        """Make the result the edit tab's input and switch there (the confirmation shows there)."""
        lang = request_lang(request)
        rec = self._owned(record_id, request)
        if rec is None:
            return gr.skip(), gr.skip(), "⚠️ " + md(self._refusal(record_id, lang)), gr.skip()
        return str(rec.file), gr.Tabs(selected="edit"), "", "✓ " + t(lang, "action.edit_done", id=rec.id)

    def use_as(self, record_id: Any, slot: int, request: gr.Request):
        """Put the result into fusion slot ``slot`` (slot 1-slot 3), staying on this tab."""
        lang = request_lang(request)
        rec = self._owned(record_id, request)
        if rec is None or slot not in (1, 2, 3):
            return gr.skip(), "⚠️ " + md(self._refusal(record_id, lang))
        return str(rec.file), "✓ " + t(lang, "action.slot_done", id=rec.id, slot=slot)

    async def variations(self, record_id: float, request: gr.Request,
                         x_dashscope_api_key: gr.Header = None):  # type: ignore[assignment]
        """Make new images with the recipe of a stored result (prompt, model, size, options, input
        images) and new random seeds: as many as its run made.

        Your DashScope API key goes in the request header ``X-DashScope-API-Key`` (optional where
        the host provides one).

        Args:
            record_id: The result's id: the ``#id`` its caption starts with (yours only).
        Returns:
            The new images and a status message. Raises an error when nothing was made.
        """
        lang = request_lang(request)
        rec = self._owned(record_id, request)
        if rec is None:
            message = self._refusal(record_id, lang)
            yield gr.skip(), "⚠️ " + md(message)
            raise ui_error(lang, message, said=True)  # said in the status line: no toast
        try:
            var = variation_request(rec, caller_gallery(self.ctx, request).input_files(rec))
        except AliyunImageError as err:
            yield gr.skip(), error_md(err, lang)
            raise gr_error(err, lang, said=True) from None
        intro = t(lang, "action.variations_start", id=rec.id)
        async for gallery, status in self.runs.stream(request, x_dashscope_api_key, var.task, var.prompt,
                                                      var.images, var.options):
            yield gallery, f"{intro}\n\n{status}"

    def download_run(self, record_id: float, request: gr.Request):
        """All images of the run that made a stored result, as one zip of the original PNGs.

        Args:
            record_id: The id of any result of the run (yours only).
        Returns:
            The zip and a message. Raises an error for an id that is not yours.
        """
        lang = request_lang(request)
        rec = self._owned(record_id, request)
        gallery = caller_gallery(self.ctx, request)
        recs = gallery.run_of(rec.id) if rec is not None else []
        if not recs:
            raise ui_error(lang, self._refusal(record_id, lang))
        ids = [r.id for r in recs]
        dest = self.ctx.zip_path(f"aliyun-image-run-{ids[0]}.zip", ids)
        out = gallery.export_zip(ids, dest)
        if out is None:
            raise ui_error(lang, self._refusal(record_id, lang))
        return str(out), t(lang, "action.zip_done", n=len(ids), first=ids[0], last=ids[-1])

    # --- recent prompts (private) ----------------------------------------------------------------
    def recent_prompts(self, task: str, request: gr.Request) -> gr.Dataset:
        """The caller's recent distinct prompts for ``task``, newest first."""
        prompts = caller_gallery(self.ctx, request).recent_prompts(str(task or ""))
        return gr.Dataset(samples=[[p] for p in prompts], sample_labels=[_short(p) for p in prompts],
                          visible=bool(prompts))

    def recent_pick(self, sample: Any) -> Any:
        """The clicked recent prompt, for the prompt box."""
        return sample[0] if isinstance(sample, (list, tuple)) and sample and isinstance(sample[0], str) else gr.skip()

    # --- wiring ----------------------------------------------------------------------------------
    def wire(self, demo: gr.Blocks, tabs: gr.Tabs, t2i: Any, edit: Any, fuse: Any) -> None:
        """The actions of the three run panels (``edit`` and ``fuse`` also receive results)."""
        check_handler(self.variations, "variations")
        check_handler(self.download_run, "download_run")
        for task, panel, box in (("t2i", t2i, t2i.prompt), ("edit", edit, edit.instruction),
                                 ("fuse", fuse, fuse.instruction)):
            self._wire_panel(task, panel, box, tabs, edit, fuse, demo)

    def _wire_panel(self, task: str, panel: Any, box: gr.Textbox, tabs: gr.Tabs, edit: Any, fuse: Any,
                    demo: gr.Blocks) -> None:
        """One run panel's action row and recent prompts (the text-to-image panel's are public)."""
        a: ActionWidgets = panel.actions
        results, status = panel.results, panel.status
        results.select(self.result_picked, None, [a.current, a.note], **PRIVATE)
        recent = [gr.State(task)], panel.recent
        results.change(self.result_first, results, [a.current, a.note], **PRIVATE).then(
            self.recent_prompts, *recent, **PRIVATE)
        demo.load(self.recent_prompts, *recent, **PRIVATE)
        panel.recent.click(self.recent_pick, panel.recent, box, **PRIVATE)
        a.edit.click(self.edit_this, a.current, [edit.image, tabs, a.note, edit.status], **PRIVATE)
        for i, (button, slot) in enumerate(zip(a.slots, fuse.slots, strict=True), 1):
            button.click(self.use_as, [a.current, gr.State(i)], [slot, a.note], **PRIVATE)
        var = a.variations.click(self.variations, a.current, [results, status], **self.runs.queue(status),
                                 **_exposure(task, "variations"))
        # The panel's Stop (wired with its run) shows and stops the session's run of this task, a
        # variation included; this cancels the variation's event too.
        panel.stop.click(None, None, None, cancels=[var], api_visibility="private", queue=False)
        # One click: the zip downloads at once (and stays linked below, should the browser block it).
        a.zip_run.click(self.download_run, a.current, [a.zip_file, a.note], **ZIPS,
                        **_exposure(task, "download_run")).success(shown, None, a.zip_file, **PRIVATE).then(
            None, a.zip_file, None, js=SAVE_FILE_JS, **PRIVATE)


# Browser-only: save the file a gr.File holds (its value: Gradio's FileData) as a download.
SAVE_FILE_JS = """(f) => { const file = Array.isArray(f) ? f[0] : f; if (!file || !file.url) return;
  const a = document.createElement('a'); a.href = file.url; a.download = file.orig_name || '';
  document.body.appendChild(a); a.click(); a.remove(); }"""


def _exposure(task: str, api_name: str) -> dict[str, Any]:
    """The text-to-image panel's copy of an action is the public endpoint; the others are private."""
    return {"api_name": api_name} if task == "t2i" else {"api_visibility": "private"}
