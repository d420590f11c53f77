"""Downloaded files: checking that a download is an image, and fetching a URL to a path.

Used by the service for results and by the CLI's ``download`` command for any allowed URL.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from PIL import Image

from ..dashscope import DashScopeClient
from ..storage import storage_error
from ..errors import DownloadError, validation
from ..i18n import msg


def download_to(client: DashScopeClient, url: str, dest: Path | str | None, default_dir: Path) -> Path:
    """Download ``url`` to ``dest`` (a file, or a folder keeping the URL's file name; None:
    ``default_dir``). A ``dest`` string ending in ``/`` is a folder even before it exists (so
    it is kept a string: ``Path`` would drop the slash). The file appears only when complete and
    verified to be an image."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise validation(msg("error.bad_image_url", url=url[:80]), code="Validation.URL")
    target = Path(dest) if dest else default_dir
    name = Path(parts.path).name or "image.png"
    if target.is_dir() or dest is None or str(dest).endswith(("/", os.sep)):
        target = target / name
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".part-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb+") as fh:
            client.download(url, fh)
            fh.flush()
            os.fsync(fh.fileno())
        verify_image(Path(tmp))
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def verify_image(path: Path, request_id: str = "", show_path: bool = True) -> tuple[int, int]:
    """Check a downloaded file decodes as an image; return its size.

    A file that vanished or cannot be read is a storage problem (the row stays pending and
    is retried), not a bad image.
    """
    try:
        with Image.open(path) as im:
            size = im.size
            im.verify()  # CRCs and structure, without decoding all pixels
        return size
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        raise storage_error(path.parent, exc, show_path) from None
    except Exception:  # noqa: BLE001 - Pillow raises many types for bad data
        raise DownloadError(msg("error.download.not_image"), code="Download.NotImage",
                            request_id=request_id) from None
