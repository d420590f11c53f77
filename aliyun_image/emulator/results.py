"""Result images: signed, expiring download URLs and a bounded render cache.

A result is a *token* (random, in the URL) mapped to a :class:`~.render.RenderSpec`. Rendered
bytes live in an LRU keyed by the recipe hash, bounded by entry count and total bytes; when
evicted they are rendered again from the recipe, which gives the same bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
import uuid
from collections import OrderedDict
from urllib.parse import urlencode

from .render import InputThumbs, RenderSpec, render

ACCESS_KEY_ID = "LTAI-emulator"


class ServedImages:
    """The result images the emulator serves: tokens -> recipes, URL signing, and the
    rendered-bytes LRU (thread-safe). Not :class:`aliyun_image.storage.store.ResultStore`, the app's gallery."""

    def __init__(self, inputs: InputThumbs, secret: bytes, *, fixed_image: bytes | None = None,
                 max_entries: int = 512, max_bytes: int = 512 * 1024 * 1024,
                 max_recipes: int = 200_000):
        self.inputs = inputs
        self.fixed_image = fixed_image
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_recipes = max_recipes
        self._secret = secret
        self._recipes: OrderedDict[str, RenderSpec] = OrderedDict()
        self._png: OrderedDict[str, bytes] = OrderedDict()
        self._png_bytes = 0
        self._lock = threading.Lock()

    def add(self, recipe: RenderSpec) -> str:
        """Register ``recipe`` and return its new token (rendering happens on first download)."""
        token = uuid.uuid4().hex
        with self._lock:
            self._recipes[token] = recipe
            while len(self._recipes) > self.max_recipes:
                self._recipes.popitem(last=False)
        return token

    def __len__(self) -> int:
        """How many result images have been produced (tokens minted) and are still known."""
        with self._lock:
            return len(self._recipes)

    def recipe(self, token: str) -> RenderSpec | None:
        """The recipe behind ``token``, or None when unknown."""
        with self._lock:
            return self._recipes.get(token)

    def png(self, token: str) -> bytes | None:
        """PNG bytes for ``token`` (cached, else rendered), or None when the token is unknown."""
        recipe = self.recipe(token)
        if recipe is None:
            return None
        if self.fixed_image is not None:
            return self.fixed_image
        key = recipe.key
        with self._lock:
            data = self._png.get(key)
            if data is not None:
                self._png.move_to_end(key)
                return data
        # Render outside the lock: two threads may render the same recipe once each, which
        # costs a little CPU but never blocks other downloads behind a render.
        data = render(recipe, self.inputs)
        with self._lock:
            if key not in self._png:
                self._png[key] = data
                self._png_bytes += len(data)
            while self._png and (len(self._png) > self.max_entries or self._png_bytes > self.max_bytes):
                _, old = self._png.popitem(last=False)
                self._png_bytes -= len(old)
        return data

    def signature(self, token: str, expires: int) -> str:
        """HMAC of token and expiry: a URL cannot be extended or pointed at another result."""
        return hmac.new(self._secret, f"{token}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def url(self, origin: str, token: str, ttl: float, now: float | None = None) -> str:
        """The OSS-style signed download URL for ``token``, valid ``ttl`` seconds from ``now``."""
        expires = int((time.time() if now is None else now) + ttl)
        query = urlencode({"Expires": expires, "OSSAccessKeyId": ACCESS_KEY_ID,
                           "Signature": self.signature(token, expires)})
        return f"{origin}/results/{token}.png?{query}"

    def check(self, token: str, query: dict[str, str], now: float | None = None) -> tuple[int, str, str] | None:
        """None if the URL may be served, else ``(status, OSS code, message)``."""
        now = time.time() if now is None else now
        expires = query.get("Expires", "")
        if not expires or "Signature" not in query or "OSSAccessKeyId" not in query:
            return 403, "AccessDenied", "You have no right to access this object because of bucket acl."
        try:
            exp = int(expires)
        except ValueError:
            return 403, "AccessDenied", "Invalid Expires parameter."
        if now > exp:
            return 403, "AccessDenied", "Request has expired."
        if self.recipe(token) is None:
            return 404, "NoSuchKey", "The specified key does not exist."
        good = self.signature(token, exp)
        given = query["Signature"].encode("utf-8", "replace")
        if query.get("OSSAccessKeyId") != ACCESS_KEY_ID or not hmac.compare_digest(good.encode(), given):
            return 403, "SignatureDoesNotMatch", (
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method.")
        return None
