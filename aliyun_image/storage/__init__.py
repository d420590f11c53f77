"""The data directory: the SQLite index of results and its files (all SQL lives here), the charges table,
kept input images, the trash, one owner's view of the gallery, the disk reserve and the paid-result journal.
"""

from __future__ import annotations

from .diskspace import saved_later, storage_error
from .gallery import Gallery
from .inputs import InputStore, keep_job_inputs
from .journal import Journaled
from .store import NewResult, Record, ResultStore
from .trash import KEEP_DAYS, Trash

__all__ = [
    "Gallery",
    "InputStore",
    "Journaled",
    "KEEP_DAYS",
    "NewResult",
    "Record",
    "ResultStore",
    "Trash",
    "keep_job_inputs",
    "saved_later",
    "storage_error",
]
