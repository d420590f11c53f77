"""One owner's view of the result store.

Hosted visitors must never see each other's results. The UI gets a :class:`Gallery` bound to
the caller's owner id for every call instead of the store itself, so no handler can forget to
pass the owner: isolation holds by construction.
"""

from __future__ import annotations

import os
import uuid
import zipfile
from pathlib import Path

from . import result_sets
from .records import Page
from .store import Record, ResultStore
from .inputs import InputStore
from .lineage import Link
from ..enums import Status
from .trash import Trash

COUNT_CAP = 1000  # the gallery's search counts this many matches at most ("more than 1000"): counting tens of
#                   thousands is what made a broad search slow, and nobody pages through them


class Gallery:
    """One owner's results: every read, delete and export is limited to ``owner``.

    The UI gets one of these per call instead of the store, so a handler cannot forget to
    pass the owner. ``owner=None`` is the single-user (local) gallery, which sees everything.
    """

    def __init__(self, store: ResultStore, owner: str | None):
        self.store = store
        self.owner = owner

    def page(self, *, offset: int = 0, limit: int = 24, query: str | None = None, task: str | None = None,
             model: str | None = None) -> tuple[list[Record], int]:
        """A page of done results, newest first, and how many match."""
        return self.store.page(offset=offset, limit=limit, query=query, task=task, model=model, owner=self.owner)

    def browse(self, *, offset: int = 0, limit: int = 24, query: str | None = None, task: str | None = None,
               model: str | None = None, count_cap: int | None = COUNT_CAP) -> Page:
        """:meth:`page` for the gallery tab: a search counts at most ``count_cap`` matches (or to the
        page's end, when further), and the page says whether a next one exists."""
        return self.store.browse(offset=offset, limit=limit, query=query, task=task, model=model, owner=self.owner,
                                 count_cap=count_cap)

    def get(self, rid: int) -> Record | None:
        """One of the owner's results, or None (also for someone else's id, or a trashed one)."""
        rec = self.store.get(rid, self.owner)
        return rec if rec is not None and rec.status != Status.TRASHED else None

    def delete(self, rid: int) -> bool:
        """Move one of the owner's results to the trash (undoable); False when it is not theirs
        or not there."""
        return Trash(self.store).put(rid, self.owner)

    def restore(self, rid: int) -> Record | None:
        """Undo a delete: one of the owner's trashed results back in the gallery (None otherwise)."""
        return Trash(self.store).restore(rid, self.owner)

    def input_files(self, rec: Record) -> list[Path | None]:
        """The kept copy of each input image of one of the owner's results, in order (None for an
        input that was a URL or was not kept, and for anyone else's result)."""
        if self.owner is not None and rec.owner != self.owner:
            return [None for _ in rec.inputs]
        inputs = InputStore(self.store.root)
        return [inputs.path(i.get("stored"), self.owner) if isinstance(i, dict) else None for i in rec.inputs]

    def kept_inputs(self, digests: list[str | None]) -> list[Path | None]:
        """The owner's kept input images with these digests (those a PNG's recipe names), in order."""
        inputs = InputStore(self.store.root)
        return [inputs.find(d, self.owner) for d in digests]

    def export_zip(self, ids: list[int], dest: Path) -> Path | None:
        """Zip the originals of the owner's results among ``ids`` into ``dest``; None when none of them is theirs."""
        files = [r.file for r in (self.store.get(i, self.owner) for i in ids) if r is not None and r.file is not None]
        files = [f for f in files if f is not None and f.is_file()]
        if not files:
            return None
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f"{dest.name}.{uuid.uuid4().hex[:8]}.part")  # two requests for one zip race
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:  # PNGs are already compressed
            for f in files:
                zf.write(f, arcname=f.name)
        os.replace(tmp, dest)
        return dest

    def models(self) -> list[str]:
        """Models the owner has results of."""
        return self.store.records.models(self.owner)

    def thumbnail(self, rec: Record) -> Path | None:
        """The preview of one of the owner's results (None for anyone else's)."""
        return self.store.files.thumbnail(rec) if rec.owner == self.owner or self.owner is None else None

    def run_of(self, rid: int) -> list[Record]:
        """Every stored result of the run that made ``rid`` (none when ``rid`` is not the owner's)."""
        return result_sets.run_records(self.store, rid, self.owner)

    def recent_prompts(self, task: str, limit: int = result_sets.RECENT_PROMPTS) -> list[str]:
        """The owner's recent distinct prompts for ``task``, newest first."""
        return result_sets.recent_prompts(self.store, self.owner, task, limit)

    def matching(self, *, query: str | None = None, task: str | None = None, model: str | None = None,
                 cap: int = result_sets.MATCH_ZIP_CAP) -> tuple[list[Record], int]:
        """The newest ``cap`` of the owner's results that match, and how many match."""
        return result_sets.matching(self.store, self.owner, query=query, task=task, model=model, cap=cap)

    # --- lineage (see lineage.py: the owner rule holds at every step of a walk) ---------------------
    def parents(self, rid: int) -> list[Link]:
        """The direct parents of one of the owner's results (edit of #12, fusion of #3 + #5...), in slot order."""
        return self.store.records.parents_of([rid], self.owner).get(rid, []) if self.get(rid) else []

    def ancestors(self, rid: int) -> list[Link]:
        """Everything the owner's result ``rid`` came from, nearest generation first."""
        return self.store.records.ancestors(rid, self.owner) if self.get(rid) else []

    def descendants(self, rid: int) -> list[Link]:
        """Everything the owner made from their result ``rid``, nearest generation first."""
        return self.store.records.descendants(rid, self.owner) if self.get(rid) else []
