"""The recipe a result carries: what made it, written into its PNG as text chunks.

Two chunks: ``parameters`` in the A1111 style (prompt, negative prompt, then one line of
``Key: value`` pairs) so other tools show it, and ``aliyun-image`` with the full JSON. Never a
key: nothing here is given one.
"""

from __future__ import annotations

import json

from .store import Record


def png_texts(rec: Record) -> dict[str, str]:
    """The recipe written into the PNG: an A1111-style ``parameters`` chunk and a JSON one."""
    line = [f"Model: {rec.model}", f"Size: {rec.params.get('size') or 'auto'}", f"Seed: {rec.seed}",
            f"Prompt extend: {rec.params.get('prompt_extend')}", f"Watermark: {rec.params.get('watermark')}",
            f"Task: {rec.task}", f"Request id: {rec.request_id}"]
    text = rec.prompt + (f"\nNegative prompt: {rec.negative}" if rec.negative else "") + "\n" + ", ".join(line)
    recipe = {"task": rec.task, "model": rec.model, "prompt": rec.prompt, "negative_prompt": rec.negative,
              "seed": rec.seed, "parameters": rec.params, "inputs": rec.inputs, "request_id": rec.request_id,
              "actual_prompt": rec.actual_prompt, "generator": "aliyun-image"}
    return {"parameters": text, "aliyun-image": json.dumps(recipe, ensure_ascii=False)}
