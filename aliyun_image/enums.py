"""The small closed vocabularies every layer shares: tasks, row statuses, event kinds, payers.

They are string enums, so they are stored in SQLite and JSON as their plain values and compare
equal to them, while code that names them gets a typo caught by the type checker instead of a
silently false comparison across modules.
"""

from __future__ import annotations

import sys
from enum import Enum

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # Python 3.10 (the Space's default): the same behaviour, spelled out
    class StrEnum(str, Enum):
        """A ``str`` whose ``str()`` and ``format()`` are its value (as 3.11's StrEnum)."""

        def __str__(self) -> str:
            return str(self.value)

        def __format__(self, spec: str) -> str:
            return format(str(self.value), spec)


class Task(StrEnum):
    """What the user asked for; stored with each result."""

    T2I = "t2i"  # text-to-image
    EDIT = "edit"  # one image and an instruction
    FUSE = "fuse"  # 2-3 ordered images (the fusion slots, named by number) and an instruction


class Status(StrEnum):
    """Where a stored result stands."""

    PENDING = "pending"  # URL (or async task) recorded, file not yet downloaded
    DONE = "done"  # file stored and verified
    FAILED = "failed"  # will not be retried (not an image, refused host, task failed)
    EXPIRED = "expired"  # the URL's 24 h ran out before the download
    MISSING = "missing"  # the row says done but its file is gone
    TRASHED = "trashed"  # deleted by the user, restorable; ``updated`` is when (see aliyun_image.storage.trash)


class EventKind(StrEnum):
    """What a running job reports (see :class:`aliyun_image.generation.service.Event`)."""

    RESULT = "result"  # one image stored
    FAILURE = "failure"  # one wanted image will not come
    STATUS = "status"  # a progress sentence (uploading, waiting...)
    DONE = "done"  # the last event of every job, whatever happened


class Endpoint(StrEnum):
    """How a model is called."""

    SYNC = "sync"  # POST .../multimodal-generation/generation, answer in the reply
    ASYNC = "async"  # POST .../text2image/image-synthesis, then poll /tasks/{id}


class Payer(StrEnum):
    """Whose bill a call goes on: a result's and a charge's ``paid_by``, a route's kind, a quota's kind.

    Keys themselves are never recorded, only which of these paid.
    """

    CONFIGURED = ""  # paid_by: the configured key (the user's locally, the host's when hosted)
    OWN = "own"  # a key the visitor gave with the call
    HOST = "host"  # a route or quota on the host's configured key (hosted demo); its results record CONFIGURED
    OFFLINE = "offline"  # the offline demo's emulator: stand-in images, free


class Relation(StrEnum):
    """How a result came from another (its lineage: :mod:`aliyun_image.storage.lineage`)."""

    EDIT = "edit"  # an edit whose input image was the parent
    FUSE = "fuse"  # a fusion with the parent in slot ``position`` (1-based, the order sent)
    VARIATION = "variation"  # the parent's recipe again with new seeds
    REUSE = "reuse"  # a run started from the parent's parameters ("Reuse parameters")
    BATCH = "batch"  # item ``position`` of batch ``batch``: no parent result (the batch is not one)
    GRID = "grid"  # an X/Y grid image with the parent in cell ``position`` (1-based, row by row)
