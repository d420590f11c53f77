"""Where calls go when there is no DashScope: the offline backend, for the CLI and the web app.

One place builds it: an in-process :class:`~aliyun_image.emulator.Emulator` on 127.0.0.1 and
settings that point at it with the offline key. ``--offline`` in the CLI and the app, and the
app's keyless demo mode, all use :class:`OfflineBackend`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..config import OFFLINE_KEY, Settings

if TYPE_CHECKING:
    from ..emulator import Emulator


class OfflineBackend:
    """A running emulator and the settings overrides that send calls to it. Stop with :meth:`close`."""

    def __init__(self) -> None:
        # Imported here: the emulator (an HTTP server and an image renderer) costs start-up time
        # that a run against the real API should not pay.
        from ..emulator import Emulator

        self.emulator: Emulator = Emulator().start()

    @property
    def overrides(self) -> dict[str, Any]:
        """Settings fields that point a call at the emulator."""
        return {"base_url": self.emulator.base_url, "api_key": OFFLINE_KEY}

    def settings(self, base: Settings) -> Settings:
        """``base`` (data dir, timeouts, limits) with calls going to the emulator."""
        return base.with_(**self.overrides)

    def close(self) -> None:
        """Stop the emulator."""
        self.emulator.stop()

    def __enter__(self) -> OfflineBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def backend_settings(offline: bool, **overrides: Any) -> Iterator[Settings]:
    """Settings from the environment with ``overrides`` (None values ignored) for the length of
    the block; with ``offline``, pointing at an emulator that runs until the block ends."""
    if not offline:
        yield Settings.from_env(**overrides)
        return
    with OfflineBackend() as backend:
        # Overridden before the settings are checked: a configured base URL is not used offline.
        yield Settings.from_env(**{**overrides, **backend.overrides})
