"""Lineage: where each result came from (edit of #12, fusion of #3 + #5, variation of #7, reuse of #9, item 4
of batch B), one row per (child, parent) in the ``lineage`` table, and the queries that walk it.

A row is written in the same transaction as its child's result row (:meth:`.records.ResultRecords.insert_pending`),
so a result never exists without its lineage. A parent is recorded only when the child's owner may see it (the
same owner; any owner for a local result): a hosted visitor cannot make their result claim to descend from
someone else's. Walking the graph filters by owner at *every* step too, so another owner's result never
appears in a chain, not even as a link in the middle (a chain simply stops there). Walks are bounded in depth
and rows: a long chain of edits stays a cheap query.

Parents are always older results (a result's id is larger than its parents'), so the graph has no cycles;
the depth bound is what keeps a walk short, not a guard against loops.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from ..enums import Relation, Status

SCHEMA = """
CREATE TABLE IF NOT EXISTS lineage (
    child     INTEGER NOT NULL,           -- results.id of the new result
    parent    INTEGER,                    -- results.id it came from; NULL for a batch item (no parent result)
    relation  TEXT NOT NULL,              -- enums.Relation
    position  INTEGER NOT NULL DEFAULT 0, -- fusion slot (1-based, as sent), batch item number; else 0
    batch     TEXT NOT NULL DEFAULT ''    -- a batch item's batch id
);
CREATE INDEX IF NOT EXISTS lineage_child ON lineage(child, position);
CREATE INDEX IF NOT EXISTS lineage_parent ON lineage(parent);
"""
MAX_DEPTH = 8  # generations a walk follows (a chain longer than this shows its nearest 8)
MAX_ROWS = 200  # links a walk returns at most


@dataclass(frozen=True)
class Link:
    """One edge of a chain: result ``id`` is the ``relation`` parent (ancestors) or child (descendants) of
    ``via``, ``depth`` generations away from the result asked about. ``id`` is None for a batch item's
    link (``batch`` and ``position`` say which)."""

    id: int | None
    relation: Relation
    position: int = 0
    batch: str = ""
    via: int = 0
    depth: int = 1
    status: Status = Status.DONE

    def as_json(self) -> dict:
        """``{"id", "relation"}`` (and ``position``/``batch`` when they say something), for ``history --json``."""
        out: dict = {"id": self.id, "relation": str(self.relation)}
        if self.position:
            out["position"] = self.position
        if self.batch:
            out["batch"] = self.batch
        return out


def _seen(alias: str, owner: str | None) -> tuple[str, list[str]]:
    """The owner rule on the results row ``alias``: nothing locally, the same owner otherwise."""
    return ("1", []) if owner is None else (f"{alias}.owner=?", [owner])


def record(db: sqlite3.Connection, child: int, owner: str | None, parents: list[dict]) -> None:
    """Write ``child``'s lineage (call inside its result's transaction): each parent row only when ``owner``
    may see that result; a batch item's row (no parent) as given."""
    rule, args = _seen("r", owner)
    for p in parents:
        try:
            relation = Relation(str(p.get("relation")))
            position = int(p.get("position") or 0)
            batch = str(p.get("batch") or "")[:64]
            parent = None if p.get("id") is None else int(p["id"])
        except (TypeError, ValueError, AttributeError):
            continue  # a malformed entry (from an old journal, say) is left out, never fails the result
        if parent is None:
            if relation == Relation.BATCH:
                db.execute("INSERT INTO lineage (child, parent, relation, position, batch) VALUES (?,NULL,?,?,?)",
                           (child, relation, position, batch))
            continue
        if parent >= child:
            continue  # a parent is always older: anything else is a forged or confused claim
        db.execute(f"INSERT INTO lineage (child, parent, relation, position, batch) SELECT ?, r.id, ?, ?, ? "
                   f"FROM results r WHERE r.id=? AND {rule}", (child, relation, position, batch, parent, *args))


def _link(row: sqlite3.Row) -> Link:
    return Link(id=row["id"], relation=Relation(row["relation"]), position=int(row["position"]),
                batch=row["batch"], via=int(row["via"]), depth=int(row["depth"]),
                status=Status(row["status"]) if row["status"] else Status.DONE)


def parents_of(db: sqlite3.Connection, ids: list[int], owner: str | None) -> dict[int, list[Link]]:
    """The direct parents of each result in ``ids`` that ``owner`` may see (batch items included), in slot
    order; every id is a key (an empty list: made from nothing stored)."""
    out: dict[int, list[Link]] = {int(i): [] for i in ids}
    if not out:
        return out
    rule, args = _seen("r", owner)
    marks = ",".join("?" * len(out))
    rows = db.execute(
        f"SELECT l.parent AS id, l.relation, l.position, l.batch, l.child AS via, 1 AS depth, r.status "
        f"FROM lineage l LEFT JOIN results r ON r.id=l.parent "
        f"WHERE l.child IN ({marks}) AND (l.parent IS NULL OR (r.id IS NOT NULL AND {rule})) "
        f"ORDER BY l.child, l.position, l.rowid", (*out, *args)).fetchall()
    for row in rows:
        out[int(row["via"])].append(_link(row))
    return out


def ancestors(db: sqlite3.Connection, rid: int, owner: str | None, depth: int = MAX_DEPTH) -> list[Link]:
    """Every result ``rid`` came from, up to ``depth`` generations (nearest first; each link names the child
    it leads to in ``via``), seen by ``owner`` at every step. Batch items are direct links only."""
    return _walk(db, rid, owner, depth, up=True)


def descendants(db: sqlite3.Connection, rid: int, owner: str | None, depth: int = MAX_DEPTH) -> list[Link]:
    """Every result made from ``rid``, up to ``depth`` generations (nearest first; ``via`` is the parent each
    link was made from), seen by ``owner`` at every step."""
    return _walk(db, rid, owner, depth, up=False)


def _walk(db: sqlite3.Connection, rid: int, owner: str | None, depth: int, *, up: bool) -> list[Link]:
    """The recursive walk: ``up`` follows child -> parent, else parent -> child. The owner rule joins the
    results row of every node reached, so a node that is not the owner's ends that branch."""
    far, near = ("parent", "child") if up else ("child", "parent")
    rule, args = _seen("r", owner)
    depth = max(1, min(int(depth), MAX_DEPTH))
    sql = (
        f"WITH RECURSIVE walk(id, relation, position, batch, via, depth) AS ("
        f" SELECT l.{far}, l.relation, l.position, l.batch, l.{near}, 1 FROM lineage l"
        f"  JOIN results r ON r.id=l.{far} WHERE l.{near}=? AND {rule}"
        f" UNION"
        f" SELECT l.{far}, l.relation, l.position, l.batch, l.{near}, w.depth + 1 FROM walk w"
        f"  JOIN lineage l ON l.{near}=w.id JOIN results r ON r.id=l.{far} WHERE w.depth < ? AND {rule}"
        # Breadth first (the queue ordered by depth) and capped: a dense graph (fusions of fusions, each of
        # ten inputs) has paths without number, and the walk must stay a bounded amount of work.
        f"  ORDER BY 6 LIMIT ?"
        f") SELECT w.*, r.status FROM walk w JOIN results r ON r.id=w.id"
        f" ORDER BY w.depth, w.via, w.position, w.id LIMIT ?")
    rows = db.execute(sql, (rid, *args, depth, *args, 4 * MAX_ROWS, MAX_ROWS)).fetchall()
    links, seen = [], set()
    for row in rows:  # two paths to one ancestor (a fusion of two edits of it): the nearest is kept
        key = (row["id"], row["via"], row["relation"])
        if key not in seen:
            seen.add(key)
            links.append(_link(row))
    return links
