"""Write text chunks into a PNG *while it streams to disk*, without decoding it.

A result file should carry its own recipe (prompt, model, seed...) the way other image tools
write a ``parameters`` text chunk. Re-encoding the image with Pillow to add that chunk would
cost tens of milliseconds per image and touch the pixels; instead :class:`PngTextWriter` lets
the download pass through and slips an ``iTXt`` chunk (UTF-8, so Chinese prompts survive) in
right after the ``IHDR`` header chunk. Non-PNG data passes through untouched.
"""

from __future__ import annotations

import struct
import zlib
from typing import IO

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_HEAD = len(PNG_SIGNATURE) + 8 + 13 + 4  # signature + IHDR (length, type, 13 data bytes, CRC)


def itxt_chunk(keyword: str, text: str) -> bytes:
    """One uncompressed ``iTXt`` chunk (keyword Latin-1, 1-79 chars; text UTF-8)."""
    key = keyword.encode("latin-1")[:79]
    data = key + b"\x00" + b"\x00\x00" + b"\x00" + b"\x00" + text.encode("utf-8")
    return struct.pack(">I", len(data)) + b"iTXt" + data + struct.pack(">I", zlib.crc32(b"iTXt" + data))


class PngTextWriter:
    """File-like wrapper: bytes written through it land in ``raw`` with text chunks inserted.

    Supports what a retrying downloader needs: ``write``, ``flush``, ``seek(0)`` and
    ``truncate()`` (start over). ``is_png`` tells afterwards whether chunks were inserted.
    """

    def __init__(self, raw: IO[bytes], texts: dict[str, str]):
        self.raw = raw
        self._chunks = b"".join(itxt_chunk(k, v) for k, v in texts.items())
        self._head = b""
        self._passing = False
        self.is_png = False

    def write(self, data: bytes) -> int:
        """Write ``data``; the first bytes are held until the IHDR chunk is complete."""
        if self._passing:
            self.raw.write(data)
            return len(data)
        self._head += data
        if len(self._head) >= _HEAD or not PNG_SIGNATURE.startswith(self._head[: len(PNG_SIGNATURE)]):
            self._release()
        return len(data)

    def _release(self) -> None:
        head, self._head = self._head, b""
        self._passing = True
        if head[: len(PNG_SIGNATURE)] == PNG_SIGNATURE and head[12:16] == b"IHDR" and len(head) >= _HEAD:
            self.is_png = True
            self.raw.write(head[:_HEAD] + self._chunks + head[_HEAD:])
        else:
            self.raw.write(head)

    def flush(self) -> None:
        """Push held bytes (a tiny file shorter than a PNG header) and flush."""
        if not self._passing and self._head:
            self._release()
        self.raw.flush()

    def seek(self, pos: int, whence: int = 0) -> int:
        """Only ``seek(0)`` (restart) is meaningful; the wrapper forgets what it held."""
        self._head = b""
        self._passing = False
        self.is_png = False
        return self.raw.seek(pos, whence)

    def truncate(self, size: int | None = None) -> int:
        """Truncate the underlying file (used with ``seek(0)`` before a retry)."""
        return self.raw.truncate(size)
