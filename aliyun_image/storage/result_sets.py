"""Read-only queries over the result index that the gallery and a run's actions need beyond
:meth:`ResultStore.page <aliyun_image.storage.store.ResultStore.page>`: the results of one run, the
owner's recent prompts, and everything that matches a filter (for one zip). Their SQL is the records' named
queries (:class:`~aliyun_image.storage.records.ResultRecords`). Owner rules are the store's: ``owner=None`` is
the local single-user view, which sees every result; any other owner sees only their own.
"""

from __future__ import annotations

from .store import Record, ResultStore

RECENT_PROMPTS = 8  # how many recent prompts a prompt box offers
MATCH_ZIP_CAP = 200  # the most results one "everything that matches" zip holds (newest first)


def run_records(store: ResultStore, rid: int, owner: str | None) -> list[Record]:
    """The stored results of the run that made result ``rid`` (one service call: one batch), in
    request order; empty when ``rid`` is not ``owner``'s."""
    rec = store.get(int(rid), owner)
    if rec is None:
        return []
    found = (store.get(i, owner) for i in store.records.batch_ids(rec.batch_id, owner))
    return [r for r in found if r is not None and r.file is not None]


def recent_prompts(store: ResultStore, owner: str | None, task: str, limit: int = RECENT_PROMPTS) -> list[str]:
    """The owner's distinct prompts (instructions) for ``task``, most recently used first."""
    return store.records.recent_prompts(owner, task, limit)


def matching(store: ResultStore, owner: str | None, *, query: str | None, task: str | None, model: str | None,
             cap: int = MATCH_ZIP_CAP) -> tuple[list[Record], int]:
    """The newest ``cap`` results that match the gallery's search and filters, and how many match."""
    return store.page(offset=0, limit=cap, query=query or None, task=task or None, model=model or None,
                      owner=owner)
