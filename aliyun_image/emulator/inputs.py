"""Resolving the ``image`` values of an edit request, as the service would fetch them.

Accepted: ``data:<mime>;base64,...`` (decoded; must be an image), ``oss://<key>`` (uploaded
through the temporary-upload flow, and only with ``X-DashScope-OssResourceResolve: enable``),
and ``http(s)://`` URLs. The emulator cannot reach the internet, so a URL to one of its own
``/results/`` files uses that image, and any other URL becomes a deterministic 1:1
placeholder derived from the URL.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from ..catalog import get_model
from .errors import ServiceError
from .oss import OssBucket
from .render import InputThumbs, decode_image, make_thumb, placeholder
from .results import ServedImages
from .validate import MSG_DATA_INSPECTION, MSG_INVALID_URL

MAX_INPUT_BYTES = 10 * 1024 * 1024
URL_PLACEHOLDER_SIZE = (1024, 1024)  # what a fetched internet image is assumed to be (1:1)
_DATA_RE = re.compile(r"^data:([^,;]*)((?:;[^,;]*)*);base64,(.*)$", re.S | re.I)
_RESULT_PATH = re.compile(r"^/results/([0-9a-f]{32})\.png$")


@dataclass(frozen=True)
class InputImage:
    """A resolved input: content hash (names its thumbnail) and original size."""

    sha: str
    width: int
    height: int


def _bad_url() -> ServiceError:
    return ServiceError(400, "InvalidURL", MSG_INVALID_URL)


def _bad_media() -> ServiceError:
    return ServiceError(400, "InvalidParameter.DataInspection", MSG_DATA_INSPECTION)


class Resolver:
    """Turns image references into :class:`InputImage` entries of an :class:`InputThumbs`."""

    def __init__(self, store: InputThumbs, results: ServedImages, bucket: OssBucket, own_hosts: set[str]):
        self.store = store
        self.results = results
        self.bucket = bucket
        self.own_hosts = own_hosts  # "127.0.0.1:PORT", "localhost:PORT"...

    def _from_bytes(self, data: bytes) -> InputImage:
        if len(data) > MAX_INPUT_BYTES:
            raise ServiceError(400, "InvalidParameter", "The input image exceeds the 10 MB limit.")
        sha = hashlib.sha256(data).hexdigest()
        known = self.store.size(sha)
        if known is not None:
            return InputImage(sha, *known)
        try:
            thumb, (w, h) = decode_image(data)
        except ValueError:
            raise _bad_media() from None
        self.store.put(sha, thumb, (w, h))
        return InputImage(sha, w, h)

    def resolve(self, ref: str, *, model: str, oss_resolve: bool) -> InputImage:
        """Resolve one ``image`` value or raise :class:`ServiceError` (InvalidURL, DataInspection...)."""
        head = ref[:16].lower()
        if head.startswith("data:"):
            return self._from_data_uri(ref)
        if head.startswith("oss://"):
            return self._from_oss(ref, model, oss_resolve)
        if head.startswith(("http://", "https://")):
            return self._from_url(ref)
        raise _bad_url()

    def _from_data_uri(self, ref: str) -> InputImage:
        m = _DATA_RE.match(ref)
        if not m:
            raise _bad_media()
        try:
            raw = base64.b64decode(re.sub(r"\s+", "", m.group(3)), validate=True)
        except (binascii.Error, ValueError):
            raise _bad_media() from None
        return self._from_bytes(raw)

    def _from_oss(self, ref: str, model: str, oss_resolve: bool) -> InputImage:
        obj = self.bucket.get(ref[len("oss://"):])
        if not oss_resolve or obj is None:
            raise _bad_url()
        # Uploads are bound to the model named at getPolicy (snapshots count as that model).
        a, b = get_model(obj.model), get_model(model)
        if a is None or b is None or a.name != b.name:
            raise _bad_url()
        return self._from_bytes(obj.data)

    def _from_url(self, ref: str) -> InputImage:
        try:
            parts = urlsplit(ref)
        except ValueError:
            raise _bad_url() from None
        if not parts.hostname:
            raise _bad_url()
        m = _RESULT_PATH.match(parts.path)
        if m and parts.netloc.lower() in self.own_hosts:
            return self._from_own_result(m.group(1), parts.query)
        # Not reachable offline: a deterministic placeholder named by the URL stands in.
        sha = hashlib.sha256(b"url:" + ref.encode("utf-8", "replace")).hexdigest()
        if self.store.size(sha) is None:
            self.store.put(sha, make_thumb(placeholder(ref)), URL_PLACEHOLDER_SIZE)
        return InputImage(sha, *URL_PLACEHOLDER_SIZE)

    def _from_own_result(self, token: str, query: str) -> InputImage:
        if self.results.check(token, dict(parse_qsl(query))) is not None:
            raise _bad_url()  # the service could not download it either
        data = self.results.png(token)
        if data is None:
            raise _bad_url()
        return self._from_bytes(data)
