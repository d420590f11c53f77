"""Input images kept: a content-addressed store of the bytes each edit or fusion sent.

"Reuse parameters" can only bring an edit back whole if its input images still exist: the
upload Gradio held is gone after a while, and a data URI is never stored. So the service keeps
every local input it sends, once per content::

    inputs/<sha256>.<ext>            locally (one shared store)
    inputs/<owner>/<sha256>.<ext>    hosted: per visitor, removed with the visitor's results

A result row's ``inputs`` JSON names the stored copy (``"stored": "inputs/ab12….png"``, relative
to the data directory). Files are written atomically (temp file, rename) and never rewritten: the
name is the digest of the content, so the same picture used fifty times is stored once.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import time
import uuid
from pathlib import Path

from .store import ResultStore

log = logging.getLogger(__name__)

DIR = "inputs"
_EXT = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/bmp": "bmp", "image/tiff": "tiff"}
_OWNER = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # owners are hex digests or "call-<hex>" (ui.context)
_STORED = re.compile(r"^inputs/(?:[A-Za-z0-9_-]{1,64}/)?[0-9a-f]{64}\.[a-z]{3,4}$")


class InputStore:
    """The kept input images of one data directory."""

    def __init__(self, root: Path | str, *, fsync: bool = True):
        self.root = Path(root)
        self.fsync = fsync

    def put(self, data: bytes, mime: str | None, owner: str | None = None) -> str:
        """Keep ``data`` (once per content and owner); return its path relative to the data dir."""
        digest = hashlib.sha256(data).hexdigest()
        ext = _EXT.get((mime or "").lower(), "bin")
        rel = f"{DIR}/{_owner_dir(owner)}{digest}.{ext}"
        final = self.root / rel
        if final.is_file() and final.stat().st_size == len(data):
            with contextlib.suppress(OSError):
                os.utime(final)  # fresh again: collect() spares it until its row is written
            return rel  # already kept: same name means same bytes
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{digest}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                if self.fsync:
                    os.fsync(fh.fileno())
            os.replace(tmp, final)  # atomic: a reader sees no file or the whole file
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        return rel

    def path(self, stored: str | None, owner: str | None = None) -> Path | None:
        """The file of a ``stored`` reference, if it exists and ``owner`` may read it.

        ``owner=None`` is the local (single-user) view and reads any kept input; a hosted
        owner reads only their own folder. A reference of any other shape (a crafted row, a
        ``..``) gives None.
        """
        if not stored or not _STORED.match(stored):
            return None
        if owner is not None and not stored.startswith(f"{DIR}/{_owner_dir(owner)}"):
            return None
        file = self.root / stored
        return file if file.is_file() else None

    def find(self, sha256: str | None, owner: str | None = None) -> Path | None:
        """The kept input with this digest in ``owner``'s store (a PNG's recipe names its inputs by
        digest), or None."""
        if not sha256 or not re.fullmatch(r"[0-9a-f]{64}", sha256):
            return None
        for file in sorted((self.root / DIR / _owner_dir(owner)).glob(f"{sha256}.*")):
            found = self.path(file.relative_to(self.root).as_posix(), owner)
            if found is not None:
                return found
        return None

    def collect(self, store: ResultStore, *, grace: float = 3600.0) -> int:
        """Remove kept inputs no result row refers to any more (after a purge); return how many.

        Files touched in the last ``grace`` seconds stay: a run keeps its inputs before its rows
        exist, and must not lose them to a collection running at the same moment.
        """
        used = _referenced(store)
        cutoff = time.time() - grace
        removed = 0
        base = self.root / DIR
        if not base.is_dir():
            return 0
        for file in base.rglob("*"):
            rel = file.relative_to(self.root).as_posix()
            if file.is_file() and _STORED.match(rel) and rel not in used and file.stat().st_mtime < cutoff:
                with contextlib.suppress(OSError):
                    file.unlink()
                    removed += 1
        for sub in base.iterdir():
            if sub.is_dir():
                with contextlib.suppress(OSError):
                    sub.rmdir()  # only when empty
        return removed


def _owner_dir(owner: str | None) -> str:
    """The owner's sub-folder (with its slash), "" locally; an odd owner id is hashed into shape."""
    if owner is None:
        return ""
    if not _OWNER.match(owner):
        owner = hashlib.sha256(owner.encode()).hexdigest()[:24]
    return owner + "/"


def _referenced(store: ResultStore) -> set[str]:
    """Every ``stored`` reference in any row, whatever its status (trashed ones come back)."""
    out: set[str] = set()
    offset = 0
    while True:
        recs, _ = store.page(offset=offset, limit=500, status=None)
        for rec in recs:
            out.update(str(i["stored"]) for i in rec.inputs if isinstance(i, dict) and i.get("stored"))
        if len(recs) < 500:
            return out
        offset += 500


def keep_job_inputs(inputs: InputStore, images: list, owner: str | None) -> None:
    """Keep the bytes of each local input of a job before it is sent, and note the stored copy on
    the image (``PreparedImage.stored``, which the job's ``input_refs`` records with the result).

    A failure to keep one (full or read-only disk) does not stop the run: the result itself
    matters more than the means to reuse it, and the store reports its own disk errors.
    """
    for im in images:
        if im.kind != "local" or im.data is None:
            continue
        try:
            im.stored = inputs.put(im.data, im.mime, owner)
        except OSError:
            log.warning("could not keep an input image", exc_info=True)
