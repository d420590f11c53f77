"""The recipe a result carries: what made it, written into its PNG as text chunks.

Two chunks: ``parameters`` in the A1111 style (prompt, negative prompt, then one line of
``Key: value`` pairs) so other tools show it, and ``aliyun-image`` with the full JSON. Never a
key: nothing here is given one. The price is the unit price the result was recorded at (see
:mod:`aliyun_image.money.ledger`); ``alias_of`` is what the catalogue says an alias points at (the
service's reply does not name the snapshot it used).
"""

from __future__ import annotations

import json

from ..catalog import get_model
from ..storage import Record


def png_texts(rec: Record) -> dict[str, str]:
    """The recipe written into the PNG: an A1111-style ``parameters`` chunk and a JSON one."""
    spec = get_model(rec.model)
    alias_of = spec.alias_of if spec is not None else ""
    price = f"{rec.price} {rec.currency or 'CNY'}/image" if rec.price is not None else "unknown"
    line = [f"Model: {rec.model}", f"Size: {rec.params.get('size') or 'auto'}", f"Seed: {rec.seed}",
            f"Prompt extend: {rec.params.get('prompt_extend')}", f"Watermark: {rec.params.get('watermark')}",
            f"Task: {rec.task}", f"Request id: {rec.request_id}", f"Region: {rec.region or 'unknown'}",
            f"Price: {price}"]
    text = rec.prompt + (f"\nNegative prompt: {rec.negative}" if rec.negative else "") + "\n" + ", ".join(line)
    recipe = {"task": rec.task, "model": rec.model, "alias_of": alias_of or None, "prompt": rec.prompt,
              "negative_prompt": rec.negative, "seed": rec.seed, "parameters": rec.params, "inputs": rec.inputs,
              "request_id": rec.request_id, "actual_prompt": rec.actual_prompt,
              "rewrite_status": rec.params.get("rewrite_status"), "region": rec.region,
              "unit_price": rec.price, "currency": rec.currency, "generator": "aliyun-image",
              "id": rec.id}  # which stored result it is: an edit of this very file records it (lineage)
    return {"parameters": text, "aliyun-image": json.dumps(recipe, ensure_ascii=False)}
