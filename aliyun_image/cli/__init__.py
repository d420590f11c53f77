"""The terminal: ``aliyun-image`` (``python -m aliyun_image``: generate, edit, fuse, history, spend,
models, check, resume, trash, recipe...) and ``aliyun-image-app`` (:mod:`.webapp`, the page's
launcher). Both render every text from the catalogue in the locale's language.
"""

from .commands import build_parser, main

__all__ = ["build_parser", "main"]
