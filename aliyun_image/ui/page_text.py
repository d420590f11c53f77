"""The page's own texts added for "one language per page": the header, the banners, help, style
names, the template note, prompt rewriting, and fusion's slot check, in Chinese and English.

:mod:`.strings` merges these into its tables, so ``gr.I18n`` (static text, by the browser's
locale) and :func:`.strings.t` (run-time text, by Accept-Language) both see them. Every block is
in one language: the visitor's (``zh-*`` reads Chinese, anything else English).
"""

from __future__ import annotations

EN_PAGE: dict[str, str] = {
    "title_block": "# aliyun-image · Qwen-Image studio\n"
                   "Text to image, image edit and multi-image fusion with Alibaba Cloud Bailian Qwen-Image. "
                   "Every result is saved to the gallery at once.",
    "banner_offline": "**Offline demo.** Results are stand-in images from the built-in emulator, not Qwen-Image "
                      "output. For the real models enter a key under *API key*, or restart with "
                      "`DASHSCOPE_API_KEY=sk-... python app.py`.",
    "banner_hosted": "**Shared demo: stand-in results until you enter a key.** Without a key of your own, results "
                     "are stand-in images from a built-in emulator, not Qwen-Image output. Your own DashScope key "
                     "(below) stays in this page and goes out with each call only, never stored. Your results are "
                     "visible only to you, in this session.",
    # {region} is filled in when the page is built (gr.I18n formats nothing).
    "banner_own": "**Live: your key.** Calls go to Qwen-Image in {region} with the key you typed and are billed "
                  "to it. The key stays in this page and goes out with each call only, never stored.",
    "fuse_instruction": "Instruction",
    "slot_not_image": "✗ {slot}: “{name}” is not an image this app can read (JPG, PNG, BMP, TIFF, WEBP or GIF). "
                      "Drop an image file into this slot instead.",
    "slot_ok": "✓ {slot}: {w}×{h} px",
    "slot_sets_ratio": "the output follows this image's aspect ratio",
    "tpl_kept": "Your instruction was kept. The template would write: “{text}”. Press *{button}* to use it.",
    "replace_instruction": "Replace instruction",
    "rw_keep": "Keep this wording",
    "rw_keep_run": "Keep this wording and run again",
    "rw_keep_gallery": "Reuse with the rewritten wording (rewriting off)",
    "rw_kept": "The rewritten prompt is now in the box and rewriting is off: a run with the same seed reproduces "
               "this result.",
    "rw_none": "No rewritten prompt to keep: run with prompt rewriting on first.",
}

ZH_PAGE: dict[str, str] = {
    "title_block": "# aliyun-image · 通义千问图像工作台\n"
                   "基于阿里云百炼 Qwen-Image 的文生图、图像编辑与多图融合。"
                   "每张结果到达即保存到图库。",
    "banner_offline": "**离线演示。** 结果是内置模拟器生成的替代图片，并非 Qwen-Image 的输出。"
                      "要使用真实模型，请在“API Key”中填写 Key，"
                      "或用 `DASHSCOPE_API_KEY=sk-... python app.py` 重启。",
    "banner_hosted": "**共享演示：填写 Key 之前结果都是替代图片。** "
                     "没有自己的 Key 时，结果由内置模拟器生成，并非 Qwen-Image 输出。"
                     "你自己的 DashScope Key（下方）只留在本页面，仅随每次调用发送，从不保存。"
                     "你的结果只在本会话中对你可见。",
    "banner_own": "**真实调用：使用你的 Key。** 调用发往{region}的 Qwen-Image，"
                  "使用你填写的 Key 并由其计费。Key 只留在本页面，仅随每次调用发送，从不保存。",
    "fuse_instruction": "融合指令",
    "slot_not_image": "✗ {slot}：“{name}”不是本应用能读取的图片（JPG、PNG、BMP、TIFF、WEBP 或 GIF）。"
                      "请在这个位置放入图片文件。",
    "slot_ok": "✓ {slot}：{w}×{h} 像素",
    "slot_sets_ratio": "输出比例跟随这张图片",
    "tpl_kept": "已保留你写的指令。模板会写成：“{text}”。如要使用，请点击“{button}”。",
    "replace_instruction": "替换指令",
    "rw_keep": "保留这个措辞",
    "rw_keep_run": "保留这个措辞并重新运行",
    "rw_keep_gallery": "用改写后的措辞复用参数（关闭智能改写）",
    "rw_kept": "改写后的提示词已填入输入框，并已关闭智能改写：用相同的种子再次运行即可复现这个结果。",
    "rw_none": "没有可保留的改写提示词：请先在开启智能改写的情况下运行一次。",
}

# The edit templates' style choices: the value (what the instruction builder reads) stays the
# same in every language, only the label the visitor sees changes.
STYLE_LABELS = {
    "en": ["watercolor", "oil painting", "Ghibli anime", "cyberpunk", "Chinese ink", "pixel art", "pencil sketch",
           "3D clay"],
    "zh": ["水彩", "油画", "吉卜力动画", "赛博朋克", "水墨", "像素", "素描", "3D 黏土"],
}
for _i, (_en, _zh) in enumerate(zip(STYLE_LABELS["en"], STYLE_LABELS["zh"], strict=True)):
    EN_PAGE[f"style:{_i}"], ZH_PAGE[f"style:{_i}"] = _en, _zh
