"""The Gradio interface: the only part of the project that imports Gradio.

``build_demo(ctx)`` returns the Blocks; ``launch_kwargs(ctx)`` the launch settings every way of
starting it must use (run history off, allowed paths, i18n). ``app.py`` ties them together.
"""

from ..runtime import AppContext, AppOptions
from .layout import build_demo, launch_kwargs

__all__ = ["AppContext", "AppOptions", "build_demo", "launch_kwargs"]
