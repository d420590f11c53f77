"""Every piece of interface text, in Chinese and English.

Static labels go to the browser through ``gr.I18n`` (it follows the browser's locale).
Messages built at run time (status lines, errors) use :func:`t` with the language taken from
the request's ``Accept-Language`` header (:func:`lang_of`), so both follow the same setting.
"""

from __future__ import annotations

from .keep_strings import KEEP_TEXTS
from .. import catalog
from ..model_info import picker_label
from .action_strings import ACTION_TEXTS
from .page_text import EN_PAGE, ZH_PAGE

EN: dict[str, str] = {
    "banner_hosted_hostkey": "**Shared demo.** Without a key of your own, the host's key is used within "
                             "{session} images per visitor per hour. Your own key (below) stays in this page and "
                             "goes out with each call only, never stored; your results are visible only to you, "
                             "in this session (reloading the page starts a new one).",
    "banner_hosted_offline": "**Shared demo, offline.** This demo runs on a built-in emulator: results are stand-in "
                             "images, not Qwen-Image output, and no API key is used. Your results are visible only to "
                             "you, in this browser session (reloading the page starts a new one).",
    "key_box": "API key",
    "key_label": "DashScope API key (optional; stays in this page and goes out with each call only, never stored)",
    "key_placeholder": "sk-...  (a key of the region in use: Beijing by default)",
    "tab_t2i": "Text to image",
    "tab_edit": "Image edit",
    "tab_fuse": "Multi-image fusion",
    "tab_gallery": "Gallery",
    "prompt": "Prompt",
    "prompt_ph": "Describe the picture, e.g. an orange cat napping on a sunny windowsill, warm tones",
    "fuse_ph": "e.g. the person in image 1 wears the clothes from image 2, standing in the scene of image 3",
    "negative": "Negative prompt",
    "quality": "Quality",
    "q_plus": "Standard (Plus)",
    "q_max": "Best (Max, slower)",
    "advanced": "Advanced",
    "model": "Model (overrides quality)",
    "model_auto": "Automatic (by quality)",
    "size": "Size",
    "n": "Number of images",
    "seed": "Seed (-1 = random)",
    "extend": "Prompt rewriting (prompt_extend)",
    "watermark": "Watermark",
    "generate": "Generate (Ctrl+Enter)",
    "stop": "Stop",
    "results": "Results",
    "status": "Status",
    "edit_image": "Input image",
    "edit_url": "…or an image URL",
    "edit_url_ph": "https://…",
    "instruction": "Instruction",
    "instruction_ph": "e.g. replace the background with a starry sky",
    "presets": "Quick templates",
    "preset": "Template",
    "style": "Style",
    "object": "Object / text",
    "apply_preset": "Fill instruction",
    "size_mode": "Output size",
    "size_auto": "Automatic (follows the input's aspect ratio)",
    "size_preset": "Preset",
    "size_preset_mode": "Preset size",
    "size_custom": "Custom",
    "width": "Width (512-2048)",
    "height": "Height (512-2048)",
    "compare": "Before / after",
    "run_edit": "Edit (Ctrl+Enter)",
    "fuse_help": "Add 2 or 3 images. Refer to them in the instruction as 图1 / 图2 / 图3 (image 1/2/3). "
                 "Without a chosen size, the output follows the **last** image's aspect ratio.",
    "img1": "图1 · image 1",
    "img2": "图2 · image 2",
    "img3": "图3 · image 3",
    "swap12": "⇄ Swap 1 and 2",
    "swap23": "⇄ Swap 2 and 3",
    "run_fuse": "Fuse (Ctrl+Enter)",
    "search": "Search prompts",
    "filter_task": "Task",
    "filter_model": "Model",
    "all": "All",
    "refresh": "Refresh",
    "prev": "‹ Previous",
    "next": "Next ›",
    "details": "Details",
    "download_png": "Download original PNG",
    "reuse": "Reuse parameters",
    "to_edit": "Send to edit",
    "to_fuse": "Add to fusion",
    "delete": "Delete",
    "select_zip": "Select for zip",
    "zip": "Download selection as zip",
    "zip_file": "Zip",
    "task_t2i": "Text to image",
    "task_edit": "Image edit",
    "task_fuse": "Multi-image fusion",
    # run-time messages
    "working": "Working… {done}/{total}",
    "uploading": "Uploading input images…",
    "stopping": "Stopping… waiting for requests already sent ({done}/{total}); they are paid for, so their "
                "images are kept.",
    "page": "Page {page} of {pages} · {total} result(s)",
    "empty_gallery": "No results yet. Generate something!",
    "no_match": "Nothing matches this search or filter.",
    "not_url": "“{text}” is not an image URL: it must start with http:// or https://.",
    "both_inputs": "Both an upload and a URL were given: the uploaded image was used.",
    "yes": "yes",
    "no": "no",
    "no_selection": "Select an image in the gallery first.",
    "deleted": "Deleted #{id}.",
    "sent_edit": "Sent #{id} to the edit panel.",
    "sent_fuse": "Added #{id} to fusion slot 图{slot}.",
    "fuse_full": "All three fusion slots are full; clear one first.",
    "reused": "Parameters of #{id} loaded into the {panel} panel.",
    "zip_ready": "Zip with {n} image(s) ready.",
    "zip_empty": "Tick at least one image to zip.",
    "fuse_gap": "Empty slots skipped: the images are sent in the order {order}.",
    "no_input": "Add an input image (upload, paste a URL, or send one from the gallery).",
    "unexpected": "Something unexpected went wrong. Saved results are safe; try again.",
}

ZH: dict[str, str] = {
    "banner_hosted_hostkey": "**共享演示。** 未填写自己的 Key 时使用主办方的 Key，每位访客每小时最多 {session} 张。"
                             "你自己的 Key（下方）只留在本页面，仅随每次调用发送，从不保存；"
                             "你的结果只在本会话中对你可见（刷新页面即开始新会话）。",
    "banner_hosted_offline": "**共享演示（离线）。** 本演示运行在内置模拟器上：结果是替代图片，并非 Qwen-Image 输出，"
                             "也不会使用任何 API Key。你的结果只在本浏览器会话中对你可见（刷新页面即开始新会话）。",
    "key_box": "API Key",
    "key_label": "DashScope API Key（可选；只留在本页面，仅随每次调用发送，从不保存）",
    "key_placeholder": "sk-...（需与所用地域一致，默认北京）",
    "tab_t2i": "文生图",
    "tab_edit": "图像编辑",
    "tab_fuse": "多图融合",
    "tab_gallery": "图库",
    "prompt": "提示词",
    "prompt_ph": "描述画面，例如：一只橘猫在洒满阳光的窗台上打盹，暖色调",
    "fuse_ph": "例如：图1的人物穿上图2的衣服，站在图3的场景里",
    "negative": "反向提示词",
    "quality": "质量",
    "q_plus": "标准（Plus）",
    "q_max": "最佳（Max，较慢）",
    "advanced": "高级选项",
    "model": "模型（优先于质量选项）",
    "model_auto": "自动（按质量选择）",
    "size": "尺寸",
    "n": "生成张数",
    "seed": "种子（-1 为随机）",
    "extend": "提示词智能改写（prompt_extend）",
    "watermark": "水印",
    "generate": "生成（Ctrl+Enter）",
    "stop": "停止",
    "results": "结果",
    "status": "状态",
    "edit_image": "输入图片",
    "edit_url": "……或图片链接",
    "edit_url_ph": "https://…",
    "instruction": "编辑指令",
    "instruction_ph": "例如：把背景换成星空",
    "presets": "快捷模板",
    "preset": "模板",
    "style": "风格",
    "object": "物体 / 文字",
    "apply_preset": "填入指令",
    "size_mode": "输出尺寸",
    "size_auto": "自动（跟随输入图片比例）",
    "size_preset": "预设",
    "size_preset_mode": "预设尺寸",
    "size_custom": "自定义",
    "width": "宽（512-2048）",
    "height": "高（512-2048）",
    "compare": "前后对比",
    "run_edit": "编辑（Ctrl+Enter）",
    "fuse_help": "添加 2 或 3 张图片，在指令中用 图1 / 图2 / 图3 指代。未选择尺寸时，输出比例跟随**最后一张**图片。",
    "img1": "图1",
    "img2": "图2",
    "img3": "图3",
    "swap12": "⇄ 交换图1和图2",
    "swap23": "⇄ 交换图2和图3",
    "run_fuse": "融合（Ctrl+Enter）",
    "search": "搜索提示词",
    "filter_task": "任务",
    "filter_model": "模型",
    "all": "全部",
    "refresh": "刷新",
    "prev": "‹ 上一页",
    "next": "下一页 ›",
    "details": "详情",
    "download_png": "下载原始 PNG",
    "reuse": "复用参数",
    "to_edit": "发送到编辑",
    "to_fuse": "加入融合",
    "delete": "删除",
    "select_zip": "选择打包",
    "zip": "打包下载所选",
    "zip_file": "压缩包",
    "task_t2i": "文生图",
    "task_edit": "图像编辑",
    "task_fuse": "多图融合",
    "working": "处理中… {done}/{total}",
    "uploading": "正在上传输入图片…",
    "stopping": "正在停止…等待已发出的请求完成（{done}/{total}）；它们已计费，图片会被保留。",
    "page": "第 {page}/{pages} 页 · 共 {total} 张",
    "empty_gallery": "还没有结果，先去生成一张吧！",
    "no_match": "没有符合搜索或筛选条件的结果。",
    "not_url": "“{text}”不是图片链接：应以 http:// 或 https:// 开头。",
    "both_inputs": "同时提供了上传图片和链接：已使用上传的图片。",
    "yes": "是",
    "no": "否",
    "no_selection": "请先在图库中选中一张图片。",
    "deleted": "已删除 #{id}。",
    "sent_edit": "已将 #{id} 发送到图像编辑。",
    "sent_fuse": "已将 #{id} 加入融合的 图{slot}。",
    "fuse_full": "三个融合位置都已占用，请先清除一个。",
    "reused": "已将 #{id} 的参数填入{panel}面板。",
    "zip_ready": "已打包 {n} 张图片。",
    "zip_empty": "请至少勾选一张图片再打包。",
    "fuse_gap": "已跳过空位置：图片按 {order} 的顺序发送。",
    "no_input": "请添加输入图片（上传、粘贴链接，或从图库发送）。",
    "unexpected": "发生了意外错误。已保存的结果不受影响，请重试。",
}


def _add_model_labels() -> None:
    """One label per catalogue model and language (family, id, badge), for the model picker:
    gr.I18n translates whole strings only, so each model gets its own key."""
    for spec in catalog.models().values():
        EN[f"model:{spec.name}"] = picker_label(spec, "en")
        ZH[f"model:{spec.name}"] = picker_label(spec, "zh")


_add_model_labels()
for _lang, _texts in KEEP_TEXTS.items():  # undoable delete, reuse with inputs, PNG info (keep_strings.py)
    (EN if _lang == "en" else ZH).update(_texts)
EN["model_auto"], ZH["model_auto"] = "auto (quality switch above)", "自动（按上方质量选项）"
EN["size_auto_model"], ZH["size_auto_model"] = "auto (the model picks)", "自动（由模型决定）"
EN["key_check"], ZH["key_check"] = "Check which region this key belongs to", "检查这个 Key 属于哪个地域"
EN["key_check_none"], ZH["key_check_none"] = "Enter a key first.", "请先填写 Key。"
EN["key_valid"], ZH["key_valid"] = "valid", "有效"
EN["key_invalid"], ZH["key_invalid"] = "not accepted", "不接受"
EN["key_unreachable"], ZH["key_unreachable"] = "unreachable", "无法连接"
EN["key_error"], ZH["key_error"] = "no clear answer", "无明确回答"
EN["key_found"], ZH["key_found"] = "This key belongs to the {region} region.", "这个 Key 属于{region}地域。"
EN["key_other_region"] = "This app calls another region: start it with `--region` set to that one."
ZH["key_other_region"] = "本应用调用的是另一个地域：请用 `--region` 指定该地域后重启。"
EN["key_nowhere"] = "No region accepts this key. Copy it again from the Bailian console."
ZH["key_nowhere"] = "没有地域接受这个 Key。请从百炼控制台重新复制。"
EN["extend_price"], ZH["extend_price"] = "turning it on doubles this model's price", "开启后本模型价格翻倍"

EN.update(ACTION_TEXTS["en"])  # result actions and gallery selection (action_strings.py)
ZH.update(ACTION_TEXTS["zh"])
# One language per page (page_text.py): header, banners, help, style names, rewriting, slot checks.
EN.update(EN_PAGE)
ZH.update(ZH_PAGE)

# The batch summary's texts are in the catalogue's [run] table (i18n.t(lang, "run.offline_note")).
STRINGS = {"en": EN, "zh": ZH}

# Instruction templates for the edit presets: (key, zh template, en template). {x} = style/object.
PRESETS: list[tuple[str, str, str]] = [
    ("background", "把背景换成{x}", "Replace the background with {x}"),
    ("style", "把这张图片转换成{x}风格", "Turn this image into {x} style"),
    ("add", "在画面中添加{x}", "Add {x} to the picture"),
    ("remove", "去掉画面中的{x}", "Remove {x} from the picture"),
    ("text", "把图中的文字改成“{x}”", "Change the text in the image to \"{x}\""),
    ("enhance", "增强细节，提高清晰度，保持构图不变", "Enhance details and sharpness, keep the composition"),
]
PRESET_LABELS = {
    "en": {"background": "Replace background", "style": "Style transfer", "add": "Add an object",
           "remove": "Remove an object", "text": "Change text", "enhance": "Enhance details"},
    "zh": {"background": "更换背景", "style": "风格迁移", "add": "添加物体", "remove": "移除物体",
           "text": "修改文字", "enhance": "增强细节"},
}
STYLES = ["水彩 watercolor", "油画 oil painting", "吉卜力动画 Ghibli anime", "赛博朋克 cyberpunk",
          "水墨 Chinese ink", "像素 pixel art", "素描 pencil sketch", "3D 黏土 clay"]
for _key in PRESET_LABELS["en"]:  # the template names for gr.I18n (the dropdown's values stay the keys)
    EN[f"preset:{_key}"], ZH[f"preset:{_key}"] = PRESET_LABELS["en"][_key], PRESET_LABELS["zh"][_key]
PRESET_DEFAULT_X = {"background": ("星空", "a starry sky"), "add": ("一只猫", "a cat"),
                    "remove": ("路人", "the passers-by"), "text": ("新文字", "New text")}


def t(lang: str, key: str, **fmt: object) -> str:
    """Interface text ``key`` in ``lang`` (``zh`` or ``en``), formatted with ``fmt``."""
    table = STRINGS.get(lang, STRINGS["en"])
    text = table.get(key) or STRINGS["en"].get(key) or key
    return text.format(**fmt) if fmt else text


def lang_of(accept_language: str | None) -> str:
    """``zh`` if the browser prefers Chinese (first language in Accept-Language), else ``en``."""
    first = (accept_language or "").split(",")[0].strip().lower()
    return "zh" if first.startswith("zh") else "en"


def preset_instruction(preset: str, x: str, lang: str) -> str:
    """The instruction for an edit preset, with ``x`` (style, object, text) filled in."""
    for key, zh, en in PRESETS:
        if key == preset:
            default = PRESET_DEFAULT_X.get(key, ("", ""))
            value = (x or "").strip() or (default[0] if lang == "zh" else default[1])
            if key == "style" and " " in value:
                value = value.split(" ", 1)[0] if lang == "zh" else value.split(" ", 1)[1]
            return (zh if lang == "zh" else en).format(x=value)
    return ""
