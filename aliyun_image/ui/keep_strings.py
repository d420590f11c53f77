"""Texts of the "nothing is lost" features: undoable delete, reuse with input images, PNG info.

Kept apart from :mod:`.strings` (which merges them into its tables) so these features change
one small file; every text in both languages, saying what to do next.
"""

from __future__ import annotations

KEEP_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "trashed": "Moved #{id} to the trash. Undo brings it back; the trash empties after 30 days.",
        "undo": "Undo delete",
        "undone": "#{id} is back in the gallery.",
        "undo_nothing": "Nothing to undo: the result is no longer in the trash.",
        "reused_all": "Loaded #{id} into this panel: instruction, parameters and {inputs} input image(s).",
        "reused_some": "Loaded #{id} into this panel. {restored} of {inputs} input image(s) came back; "
                       "add the others before running.",
        "reused_plain": "Loaded the parameters of #{id} into this panel. Check them and press Run.",
        "png_info": "PNG info: drop a PNG to reuse its recipe",
        "png_drop": "PNG made by this app (or with an A1111 'parameters' text)",
        "png_loaded": "Loaded the recipe of {name} ({source}) into this panel. Check it and press Run.",
        "png_source_ours": "made by aliyun-image",
        "png_source_a1111": "A1111-style parameters",
        "png_inputs": "Input images: {restored} of {inputs} found among the kept inputs.",
    },
    "zh": {
        "trashed": "已将 #{id} 移入回收站。点“撤销删除”可恢复；回收站 30 天后自动清空。",
        "undo": "撤销删除",
        "undone": "#{id} 已恢复到图库。",
        "undo_nothing": "没有可撤销的删除：该结果已不在回收站中。",
        "reused_all": "已将 #{id} 载入本面板：指令、参数和 {inputs} 张输入图片。",
        "reused_some": "已将 #{id} 载入本面板。{inputs} 张输入图片中恢复了 {restored} 张；请补上其余图片后再运行。",
        "reused_plain": "已将 #{id} 的参数载入本面板。请检查后点击运行。",
        "png_info": "PNG 信息：拖入 PNG 以复用其配方",
        "png_drop": "本应用生成的 PNG（或带 A1111 “parameters” 文本的 PNG）",
        "png_loaded": "已将 {name} 的配方（{source}）载入本面板。请检查后点击运行。",
        "png_source_ours": "由 aliyun-image 生成",
        "png_source_a1111": "A1111 风格参数",
        "png_inputs": "输入图片：在已保存的输入中找到 {restored}/{inputs} 张。",
    },
}
