"""aliyun-image: Alibaba Cloud Bailian (DashScope) Qwen-Image from a browser or a terminal.

The library API::

    import aliyun_image as ai

    service = ai.ImageService(ai.Settings.from_env())
    batch = service.generate("an orange cat on a sunny windowsill", n=2)
    for record in batch.results:   # stored PNGs with their recipe
        print(record.file, record.seed)
    for err in batch.failures:     # AliyunImageError, rendered in the reader's language
        print(err.text("en"))

Every failure is an :class:`AliyunImageError` (the tree below it says what happened); its text
is rendered in the reader's language from the message catalogue (:mod:`aliyun_image.i18n`).

Packages, top to bottom (each imports only those below it): ``cli`` and ``ui`` (the two front
ends), ``runtime`` (composition shared by both), ``generation`` (the use cases), ``money`` and
``recipes``, ``storage``, ``dashscope`` and ``emulator``, then ``jobs``, ``catalog`` and ``images``,
``config``, ``errors`` and ``enums``, and ``i18n``. Only ``ui`` imports Gradio.
"""

import logging

# Set before anything else is imported: the client and the CLI read it.
__version__ = "0.1.0"

from .config import Settings
from .errors import (
    AliyunImageError,
    ApiError,
    CancelledError,
    DownloadError,
    InputImageError,
    NetworkError,
    OutcomeUnknownError,
    StorageError,
    TaskFailedError,
    TaskGoneError,
    TaskPendingError,
    ThrottledError,
    ValidationError,
)
from .generation import Batch, Event, ImageService, Outcome
from .i18n import Message
from .jobs import Job, build_job

__all__ = [
    "AliyunImageError",
    "ApiError",
    "Batch",
    "CancelledError",
    "DownloadError",
    "Event",
    "ImageService",
    "InputImageError",
    "Job",
    "Message",
    "NetworkError",
    "Outcome",
    "OutcomeUnknownError",
    "Settings",
    "StorageError",
    "TaskFailedError",
    "TaskGoneError",
    "TaskPendingError",
    "ThrottledError",
    "ValidationError",
    "__version__",
    "build_job",
]

# A library stays quiet unless the application configures logging: without this, Python's
# last-resort handler would print warnings (and tracebacks) straight to a CLI user's terminal.
logging.getLogger(__name__).addHandler(logging.NullHandler())
