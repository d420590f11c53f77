"""The data directory: the SQLite index of results (records: all SQL lives here) and their files, composed in
the result store; the charges table, kept input images, the trash, one owner's view of the gallery, the disk
reserve and the paid-result journal; stored batches and their units (:mod:`.batches`).
"""

from __future__ import annotations

from .diskspace import saved_later, storage_error
from .gallery import Gallery
from .inputs import InputStore, keep_job_inputs
from .journal import Journaled
from .batches import BatchBook, BatchRow, UnitRow, expire_batches
from .lineage import Link
from .charges import ChargeBook
from .files import ResultFiles
from .records import NewResult, Page, Record, ResultRecords
from .store import ResultStore
from .trash import KEEP_DAYS, Trash

__all__ = [
    "BatchBook",
    "BatchRow",
    "ChargeBook",
    "Gallery",
    "InputStore",
    "Journaled",
    "KEEP_DAYS",
    "Link",
    "NewResult",
    "Page",
    "Record",
    "ResultFiles",
    "ResultRecords",
    "ResultStore",
    "Trash",
    "UnitRow",
    "expire_batches",
    "keep_job_inputs",
    "saved_later",
    "storage_error",
]
