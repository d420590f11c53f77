"""A local DashScope (Qwen-Image) emulator: offline demo backend and test double.

>>> with Emulator() as emu:          # doctest: +SKIP
...     requests.post(emu.base_url + "/services/aigc/multimodal-generation/generation", ...)

See :class:`Emulator` for the Python API and :mod:`.control` for the HTTP control surface.
"""

from .records import Recorded
from .server import Emulator

__all__ = ["Emulator", "Recorded"]
