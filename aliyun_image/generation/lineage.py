"""Where a run's results come from: the stored results among its inputs, named (``#12``) or recognised.

Two ways a stored result becomes an input:

- named: the CLI's ``edit '#12' ...`` (and any caller of :meth:`~.service.ImageService.plan` with an owner):
  :func:`resolve_refs` swaps ``#12`` for the result's file, refusing with a clear message an id that is not
  there, not the caller's, trashed or without its file;
- recognised: the page's *edit this*, *use as slot 2*, an upload of a downloaded result: the input's bytes
  are a PNG whose recipe names the result (:func:`aliyun_image.recipes.recipe_origin`). The claim is believed
  only when the owner's stored file has exactly those bytes (same SHA-256 as the prepared input, which a
  result sent unchanged keeps), so a forged recipe, a file from another data folder or another visitor's
  result never links. See :func:`recognise`.

The relation is the job's task: an edit's input is "edit of", a fusion's slot ``k`` is "fusion of ... in
slot k". The rows are written with the results (:mod:`aliyun_image.storage.lineage`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from ..enums import Relation, Status, Task
from ..errors import ValidationError
from ..i18n import msg
from ..jobs import Job, Parent, merge_parents
from ..recipes import recipe_origin
from ..storage import Record, ResultStore

_REF = re.compile(r"^\s*#(\d{1,12})\s*$")


def input_relation(task: str) -> Relation:
    """What a stored input image makes of the result: edit of it, or fusion of it."""
    return Relation.FUSE if task == Task.FUSE else Relation.EDIT


def is_ref(value: Any) -> bool:
    """True for a stored result written as an input: ``#12``."""
    return isinstance(value, str) and _REF.match(value) is not None


def stored_input(store: ResultStore, ref: str, owner: str | None, hosted: bool) -> Record:
    """The stored result ``ref`` (``#12``) names, with its file; a ValidationError saying what to do when it is
    not there, not the caller's (the same words: nobody learns that someone else's exists), trashed or has
    no file. In hosted mode a call without an owner sees none."""
    m = _REF.match(ref)
    assert m is not None
    rid = int(m.group(1))
    rec = None if hosted and owner is None else store.get(rid, owner)
    if rec is None:
        raise ValidationError(msg("lineage.ref_missing", ref=f"#{rid}"), code="Validation.ResultRef")
    if rec.status == Status.TRASHED:
        raise ValidationError(msg("lineage.ref_trashed", ref=f"#{rid}", id=rid), code="Validation.ResultRef")
    if rec.file is None or not rec.file.is_file():
        raise ValidationError(msg("lineage.ref_no_file", ref=f"#{rid}", status=str(rec.status)),
                              code="Validation.ResultRef")
    return rec


def resolve_refs(store: ResultStore, task: str, images: Sequence[Any], owner: str | None,
                 hosted: bool) -> tuple[list[Any], list[Parent]]:
    """``images`` with each ``#12`` replaced by that result's file (a path locally; its bytes when hosted,
    where server paths are not inputs), and the parents they name, in slot order."""
    out: list[Any] = []
    parents: list[Parent] = []
    position = 0
    for image in images:
        if image is None or image == "":
            out.append(image)  # an empty slot: build_job skips it, so it takes no position
            continue
        position += 1
        if not is_ref(image):
            out.append(image)
            continue
        rec = stored_input(store, image, owner, hosted)
        assert rec.file is not None
        out.append(rec.file.read_bytes() if hosted else str(rec.file))
        parents.append(Parent(rec.id, input_relation(task), position))
    return out, parents


def _digest(rec: Record) -> str | None:
    try:
        return hashlib.sha256(rec.file.read_bytes()).hexdigest() if rec.file is not None else None
    except OSError:
        return None


def recognise(store: ResultStore, job: Job, owner: str | None, hosted: bool) -> list[Parent]:
    """The owner's stored results among ``job``'s input images (see the module docstring), in slot order."""
    if hosted and owner is None:
        return []
    found: list[Parent] = []
    for position, image in enumerate(job.images, 1):
        if image.kind != "local" or not image.data or image.mime != "image/png" or not image.sha256:
            continue  # a URL, or re-encoded on the way (its recipe chunk is gone): nothing to recognise
        origin = recipe_origin(image.data)
        if origin is None:
            continue
        rid, request_id = origin
        if rid is not None:
            rec = store.get(rid, owner)
            candidates = [rec] if rec is not None else []
        else:
            candidates = store.records.by_request(request_id, owner)
        for rec in candidates:
            if rec.status == Status.DONE and _digest(rec) == image.sha256:
                found.append(Parent(rec.id, input_relation(job.task), position))
                break
    return found


def job_parents(store: ResultStore, job: Job, owner: str | None, hosted: bool) -> list[dict]:
    """Every parent of ``job``'s results: the ones the caller named first (a variation, ``#12``), then the
    recognised inputs, each stored result once; as the plain data a result row carries."""
    return [p.as_dict() for p in merge_parents(job.parents, recognise(store, job, owner, hosted))]
