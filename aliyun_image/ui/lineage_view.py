"""Lineage in the page (issue 18.5): the gallery details' chain ("edit of #12 · fusion of #3 + #5 · variations:
#20, #21") with a button per linked result that opens its details, and the memo that records "reuse of #9".

The chain is read through the caller's :class:`~aliyun_image.storage.Gallery` (:mod:`aliyun_image.storage.lineage`
walks it with the owner rule at every step), so a hosted visitor never sees another's result in it, and a
link click (a crafted one too) opens only the caller's own results.

"Reuse parameters" fills a form; the run that follows is a reuse of that result when it kept the result's
prompt or its seed: :class:`.lineage_memo.ReuseMemo`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..enums import Relation, Status
from ..generation import batch as batches, grid
from ..storage import Link
from ..runtime import AppContext
from .gallery_handlers import details_md, wording_button
from .page_text import as_record_id, md
from .request_info import caller_gallery, request_lang
from .strings import t
from .widgets import I18N, PRIVATE

MAX_LINKS = 24  # buttons under the chain (the text names more)


# --- the chain in words ----------------------------------------------------------------------------
def _ref(link: Link, lang: str) -> str:
    shown = f"#{link.id}"
    return t(lang, "lineage.trashed", id=shown) if link.status == Status.TRASHED else shown


def _grouped(links: list[Link]) -> dict[Relation, list[Link]]:
    out: dict[Relation, list[Link]] = {}
    for link in links:
        out.setdefault(link.relation, []).append(link)
    return out


BatchLabels = Mapping[tuple[str, int], Mapping[str, Any]]  # (batch id, item number) -> its labels


def _batch_item(link: Link, lang: str, labels: BatchLabels) -> str:
    """"item 3 of batch B (Model=qwen-image-max, Seed=1)": the labels (a grid's axes, a template's
    variables) when the batch has them, option axes by their titles in ``lang``."""
    given = labels.get((link.batch, link.position))
    if not given:
        return t(lang, "lineage.rel.batch", n=link.position, batch=md(link.batch))
    return t(lang, "grid_ux.rel_batch_labels", n=link.position, batch=md(link.batch),
             labels=md(grid.labels_text(given, lang)))


def _from_text(parents: list[Link], lang: str, labels: BatchLabels | None = None) -> str:
    """"edit of #12 · fusion of #3 + #5 · item 4 of batch B (Seed=1)": the direct parents by relation."""
    parts = []
    for relation, links in _grouped(parents).items():
        if relation == Relation.BATCH:
            parts += [_batch_item(link, lang, labels or {}) for link in links]
            continue
        joiner = " + " if relation == Relation.FUSE else ", "
        parts.append(t(lang, f"lineage.rel.{relation}", ids=joiner.join(_ref(link, lang) for link in links)))
    return " · ".join(parts)


def _made_text(children: list[Link], lang: str) -> str:
    """"edits: #20 · variations: #21, #22": what was made from it, by relation."""
    return " · ".join(t(lang, f"lineage.kids.{relation}", ids=", ".join(_ref(link, lang) for link in links))
                      for relation, links in _grouped(children).items())


def _ids(links: list[Link], lang: str) -> str:
    seen: dict[int, str] = {}
    for link in links:
        if link.id is not None and link.id not in seen:
            seen[link.id] = _ref(link, lang)
    return ", ".join(seen.values())


def chain_md(parents: list[Link], ancestors: list[Link], descendants: list[Link], lang: str,
             labels: BatchLabels | None = None) -> str:
    """The chain as Markdown lines: made from (direct parents, a batch item with its ``labels``), before
    that (older ancestors), made from it (direct children) and after that (later descendants); one line
    when it has neither."""
    lines = []
    if parents:
        lines.append(f"**{t(lang, 'lineage.from')}:** {_from_text(parents, lang, labels)}")
    older = [link for link in ancestors if link.depth > 1]
    if older:
        lines.append(f"**{t(lang, 'lineage.earlier')}:** {_ids(older, lang)}")
    children = [link for link in descendants if link.depth == 1]
    if children:
        lines.append(f"**{t(lang, 'lineage.made')}:** {_made_text(children, lang)}")
    later = [link for link in descendants if link.depth > 1]
    if later:
        lines.append(f"**{t(lang, 'lineage.later')}:** {_ids(later, lang)}")
    return "\n\n".join(lines) if lines else t(lang, "lineage.none")


def link_samples(ancestors: list[Link], descendants: list[Link]) -> tuple[list[list[int]], list[str]]:
    """One button per linked result that can be opened (not trashed), ancestors first: samples and labels."""
    samples: list[list[int]] = []
    labels: list[str] = []
    seen: set[int] = set()
    for arrow, links in (("↑", ancestors), ("↓", descendants)):
        for link in links:
            if link.id is None or link.id in seen or link.status != Status.DONE:
                continue
            seen.add(link.id)
            samples.append([link.id])
            labels.append(f"{arrow} #{link.id}")
    return samples[:MAX_LINKS], labels[:MAX_LINKS]


# --- widgets and events ----------------------------------------------------------------------------
@dataclass
class ChainWidgets:
    """The chain under the gallery's details: its text and a button per linked result."""

    text: gr.Markdown
    links: gr.Dataset


def build_chain() -> ChainWidgets:
    """The chain's widgets (call inside the details column)."""
    text = gr.Markdown(elem_id="gallery-lineage", elem_classes=["lineage"])
    holder = gr.Number(visible=False, render=False, precision=0)
    links = gr.Dataset(components=[holder], samples=[], label=I18N("lineage.title"), type="values",
                       samples_per_page=MAX_LINKS, visible=False, elem_id="gallery-lineage-links")
    return ChainWidgets(text, links)


class LineageView:
    """The chain's events, bound to one :class:`AppContext`."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    def _chain(self, rid: int | None, request: gr.Request | None) -> tuple[str, Any]:
        """The chain of result ``rid`` (the caller's only), and its link buttons; nothing for anything else."""
        lang = request_lang(request)
        gallery = caller_gallery(self.ctx, request)
        if rid is None or gallery.get(rid) is None:
            return "", gr.Dataset(samples=[], visible=False)
        up, down = gallery.ancestors(rid), gallery.descendants(rid)
        samples, labels = link_samples(up, down)
        parents = gallery.parents(rid)
        text = chain_md(parents, up, down, lang, self.batch_labels(parents, gallery.owner))
        return text, gr.Dataset(samples=samples, sample_labels=labels, visible=bool(samples))

    def batch_labels(self, links: list[Link], owner: str | None) -> dict[tuple[str, int], dict[str, Any]]:
        """The labels of the batch items among ``links``, read from their batches with the owner rule
        (``owner``'s batches only; every batch locally): a batch that is gone or not theirs names none."""
        out: dict[tuple[str, int], dict[str, Any]] = {}
        for batch_id in dict.fromkeys(link.batch for link in links if link.relation == Relation.BATCH and link.batch):
            found = batches.find(self.ctx.live_service, batch_id, owner)  # any service: the store is one
            for unit in found[1] if found is not None else ():
                if unit.labels:
                    out.setdefault((batch_id, unit.item + 1), unit.labels)  # item numbers are 1-based
        return out

    def chain_select(self, ids: list[int], evt: gr.SelectData, request: gr.Request) -> tuple[str, Any]:
        """A click on a thumbnail: its chain (``ids`` are the page's results, kept on the server)."""
        idx = evt.index if isinstance(evt.index, int) else (evt.index or [0])[0]
        rid = ids[idx] if ids and isinstance(idx, int) and 0 <= idx < len(ids) else None
        return self._chain(as_record_id(rid), request)

    def chain_clear(self) -> tuple[str, Any]:
        """No result selected (deleted): no chain."""
        return "", gr.Dataset(samples=[], visible=False)

    def open_linked(self, sample: Any, page_ids: Any, request: gr.Request):
        """Open a linked result's details, as a click on its thumbnail would (id, record, preview, download, a
        cleared action line) with its own chain, and mark its thumbnail when it is on the page shown (else
        no thumbnail: the details never sit beside another result's highlight); or a line that says it is
        gone. ``sample`` comes from the session's own list of links (Gradio refuses an index outside it)."""
        lang = request_lang(request)
        rid = as_record_id(sample[0] if isinstance(sample, (list, tuple)) and sample else None)
        gallery = caller_gallery(self.ctx, request)
        rec = gallery.get(rid) if rid is not None else None
        if rec is None or rec.file is None:
            return (*(gr.skip(),) * 4, t(lang, "lineage.gone", id=str(rid or "?")), gr.skip(), gr.skip(), gr.skip())
        shown = [as_record_id(i) for i in page_ids] if isinstance(page_ids, list) else []
        mark = gr.Gallery(selected_index=shown.index(rec.id) if rec.id in shown else None)
        return (rec.id, details_md(rec, lang, gallery), str(rec.file),
                gr.DownloadButton(value=str(rec.file), interactive=True), "", *self._chain(rec.id, request), mark)

    def wire(self, g: Any, chain: ChainWidgets) -> None:
        """Follow the gallery panel ``g``'s thumbnail clicks and deletes; a link button opens that result's
        details. (Its own listeners: a ``gr.State`` change is not sent back to the page by un-queued events.)"""
        shown = [chain.text, chain.links]
        g.grid.select(self.chain_select, g.page_ids, shown, **PRIVATE)
        g.delete.click(self.chain_clear, None, shown, **PRIVATE)
        chain.links.click(self.open_linked, [chain.links, g.page_ids],
                          [g.selected, g.details, g.preview, g.download, g.status, *shown, g.grid], **PRIVATE)
        if getattr(g, "keep_wording", None) is not None:
            chain.links.click(self.wording_linked, chain.links, g.keep_wording, **PRIVATE)

    def wording_linked(self, sample: Any, request: gr.Request) -> Any:
        """The "keep this wording" button for the linked result just opened (hidden for a grid)."""
        rid = as_record_id(sample[0] if isinstance(sample, (list, tuple)) and sample else None)
        return wording_button(caller_gallery(self.ctx, request).get(rid) if rid is not None else None)
