"""What a result carries: the recipe written into its PNG, reading it back (ours or A1111's), reuse of a
result's parameters, variations with fresh seeds and two recipes compared.
"""

from __future__ import annotations

from .compare import FieldDiff, recipe_diff, word_diff
from .read import read_png_recipe, recipe_origin
from .recipe import png_texts
from .reuse import ReusePlan, reuse_values
from .variations import variation_request

__all__ = [
    "FieldDiff",
    "ReusePlan",
    "png_texts",
    "read_png_recipe",
    "recipe_diff",
    "recipe_origin",
    "reuse_values",
    "variation_request",
    "word_diff",
]
