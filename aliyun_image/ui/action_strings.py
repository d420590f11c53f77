"""Texts of the actions on a run's results and of the gallery's search and selection, in Chinese
and English. :mod:`.strings` merges them into its tables (labels through ``gr.I18n``, messages
through ``t``)."""

from __future__ import annotations

ACTION_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "act_edit": "Edit this",
        "act_slot1": "Use as 图1",
        "act_slot2": "Use as 图2",
        "act_slot3": "Use as 图3",
        "act_variations": "Variations (new seeds)",
        "act_zip_run": "Download this run (zip)",
        "act_zip_file": "This run as a zip",
        "recent": "Recent prompts (click to fill in)",
        "act_target": "The buttons above act on #{id}.",
        "act_none": "Run something first: the actions work on this panel's results.",
        "act_not_yours": "Result #{id} is not one of yours (or it was deleted): pick a result shown here.",
        "act_edit_done": "#{id} is the input image now. Write an instruction and press Edit.",
        "act_slot_done": "#{id} is 图{slot} on the fusion tab now.",
        "act_zip_done": "Zip of this run: {n} image(s) (#{first}…#{last}).",
        "act_var_start": "Variations of #{id}: same recipe, new random seeds.",
        "sel_mode": "Select on the thumbnails (click to tick, for the zip)",
        "sel_all": "Select all on this page",
        "sel_none": "Select none",
        "sel_count": "{n} selected: {ids}",
        "sel_zero": "Nothing selected.",
        "zip_matching": "Download everything that matches (zip)",
        "zip_matching_done": "Zip of everything that matches: {n} image(s).",
        "zip_matching_capped": "{total} results match: the zip holds the newest {n}. Narrow the search or "
                               "filters (or use the CLI's `history`) for the rest.",
        "zip_matching_none": "Nothing matches this search or filter: nothing to zip.",
    },
    "zh": {
        "act_edit": "编辑这张",
        "act_slot1": "用作 图1",
        "act_slot2": "用作 图2",
        "act_slot3": "用作 图3",
        "act_variations": "再来几张（新种子）",
        "act_zip_run": "打包下载本次结果",
        "act_zip_file": "本次结果压缩包",
        "recent": "最近的提示词（点击填入）",
        "act_target": "上方按钮将作用于 #{id}。",
        "act_none": "请先运行一次：这些操作作用于本面板的结果。",
        "act_not_yours": "结果 #{id} 不是您的（或已被删除）：请选择这里显示的结果。",
        "act_edit_done": "#{id} 已设为输入图片。请填写编辑指令后点击编辑。",
        "act_slot_done": "#{id} 已放入多图融合的 图{slot}。",
        "act_zip_done": "本次结果已打包：{n} 张（#{first}…#{last}）。",
        "act_var_start": "#{id} 的变体：相同配方，新的随机种子。",
        "sel_mode": "在缩略图上选择（点击勾选，用于打包）",
        "sel_all": "全选本页",
        "sel_none": "全不选",
        "sel_count": "已选 {n} 张：{ids}",
        "sel_zero": "未选择任何图片。",
        "zip_matching": "打包下载全部匹配结果",
        "zip_matching_done": "已打包全部匹配结果：{n} 张。",
        "zip_matching_capped": "共有 {total} 张匹配，压缩包包含最新的 {n} 张。其余请缩小搜索或筛选范围（或使用命令行 "
                               "`history`）。",
        "zip_matching_none": "没有匹配当前搜索或筛选的结果，无可打包。",
    },
}
