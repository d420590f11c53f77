"""The size the emulator answers with when a request names none.

Four cases, as the models document describes the service: a model with a default size uses
it (``qwen-image-plus``: ``1664*928``); a model whose pick was seen (``picked``: ``qwen-image-3.0``
answered 2048*2048) answers that; another whose default is "the service picks" picks from the
prompt; an edit follows the last input image.
"""

from __future__ import annotations

import math
import re

from ..catalog import SizeRule

EDIT_TARGET_PIXELS = 1024 * 1024
FALLBACK_PIXELS = 1024 * 1024  # a rule with neither a default nor presets (unknown models)

# Words that ask for a wide or a tall picture. The real model reads the whole prompt; the
# emulator only needs a deterministic, explainable stand-in for "the model picks".
_WIDE = re.compile(r"横|宽屏|全景|风景|landscape|wide|panoram|banner|16:9|cinematic", re.IGNORECASE)
_TALL = re.compile(r"竖|竖屏|竖版|人像|海报|portrait|tall|vertical|poster|9:16", re.IGNORECASE)


def prompt_aspect(prompt: str) -> float:
    """The aspect (width / height) a prompt asks for: 16/9 wide, 9/16 tall, else 1 (square).

    When both kinds of words occur, the first one in the prompt wins.
    """
    wide, tall = _WIDE.search(prompt), _TALL.search(prompt)
    if wide and (not tall or wide.start() <= tall.start()):
        return 16 / 9
    if tall:
        return 9 / 16
    return 1.0


def default_size(rule: SizeRule, prompt: str) -> tuple[int, int]:
    """The text-to-image size for a request without one: the rule's default, else the preset
    nearest the aspect the prompt asks for (:func:`prompt_aspect`), else about 1024*1024."""
    if rule.default:
        w, h = rule.default.split("*")
        return int(w), int(h)
    if rule.picked:  # what the service was seen to pick (3.0: 2048*2048, whatever the prompt)
        w, h = rule.picked.split("*")
        return int(w), int(h)
    aspect = prompt_aspect(prompt)
    if rule.presets:
        best = min(rule.presets, key=lambda p: abs(math.log(p.width / p.height / aspect)))
        return best.width, best.height
    return _at_aspect(FALLBACK_PIXELS, aspect, rule.step or 16)


def edit_default_size(rule: SizeRule, width: int, height: int) -> tuple[int, int]:
    """About 1024*1024 pixels at ``width:height``, sides multiples of 16, within ``rule``."""
    ratio = min(max(width / max(1, height), 1 / 8), 8)
    w, h = _at_aspect(EDIT_TARGET_PIXELS, ratio, rule.step or 16)
    if rule.kind == "sides":
        w = min(max(w, rule.min_side), rule.max_side)
        h = min(max(h, rule.min_side), rule.max_side)
    return w, h


def _at_aspect(pixels: int, ratio: float, step: int) -> tuple[int, int]:
    w = math.sqrt(pixels * ratio)
    h = w / ratio
    return max(step, round(w / step) * step), max(step, round(h / step) * step)
