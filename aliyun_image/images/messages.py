"""Every sentence about input images a user can see, in Chinese and English, as one table.

:data:`MESSAGES` maps a key to a (zh, en) pair of :meth:`str.format` templates, in three kinds:

* errors, keyed by their code (``"NotFound"``) or code and variant (``"BadURL.file"``): built
  by :func:`error`, which raises nothing itself and gives the code ``InputImage.<code>``;
* notes (``"note.rotated"``): what was changed about an image, built by :func:`note`;
* phrases (``"why.denied"``): pieces one template fills into another, built by :func:`phrase`.

Templates name the image with ``{label.zh}``, ``{label.en}`` or ``{label.En}`` (sentence start).
A field given as a (zh, en) pair - a phrase - is filled in per language. The service's limits
(``{min_side}``, ``{max_side}``, ``{max_aspect}``, ``{read_mb}``) and the shared phrases
``{formats}`` and ``{fetch}`` are always available.
"""

from __future__ import annotations

from ..errors import InputImageError
from .options import MAX_ASPECT, MAX_READ_BYTES, MAX_SIDE, MIN_SIDE, Label, mb

Pair = tuple[str, str]  #: (zh, en)

MESSAGES: dict[str, Pair] = {
    # --- Errors: no usable image --------------------------------------------------------------
    "Missing": ("没有提供图片。请选择或上传一张图片。",
                "No image was given. Choose or upload an image."),
    "Missing.indexed": ("图{index}为空：没有提供图片或路径。请选择或上传该图片。",
                        "Image {index} is empty: no image or path was given. Choose or upload it."),
    "Empty": ("{label.zh}是空文件（0 字节）。请重新选择或上传该图片。",
              "{label.En} is an empty file (0 bytes). Choose or upload the image again."),
    "UnsupportedFormat": (
        "无法读取{label.zh}：格式不受支持或无法识别。请换一张图片，或先转换为 JPG 或 PNG。支持的格式：{formats}。",
        "{label.En} cannot be used. It is in an unsupported or unrecognised format. Use another image or "
        "convert it to JPG or PNG first. Supported formats: {formats}."),
    "UnsupportedFormat.kind": (
        "无法读取{label.zh}：它看起来是{kind}，格式不受支持或无法识别。请先导出或另存为 PNG 或 JPG。"
        "支持的格式：{formats}。",
        "{label.En} cannot be used. It looks like {kind}: an unsupported or unrecognised format. "
        "Export or save it as PNG or JPG first. Supported formats: {formats}."),
    "UnsupportedFormat.ext": (
        "无法读取{label.zh}：文件名以 {label.ext} 结尾，但内容不是可读取的图片（格式不受支持或无法识别，"
        "可能已损坏或是改了扩展名的其他文件）。请用看图软件检查，或重新导出为 JPG 或 PNG。支持的格式：{formats}。",
        "{label.En} cannot be used. Its name ends in {label.ext} but its content is not a readable image "
        "(unsupported or unrecognised format: damaged, or another kind of file renamed). "
        "Check it in an image viewer or export it again as JPG or PNG. Supported formats: {formats}."),
    "Corrupt": (
        "{label.zh}已损坏或不完整，无法读取（{why}）。请重新下载或重新导出该图片后再试。支持的格式：{formats}。",
        "{label.En} is damaged or incomplete and cannot be read ({why}). Download or export the image "
        "again and retry. Supported formats: {formats}."),
    # --- Errors: sizes --------------------------------------------------------------------------
    "TooManyPixels": (
        "{label.zh}的尺寸为 {dims}，超过上限 {limit:,} 像素，为安全起见未解码。"
        "请先把图片缩小（例如长边不超过 {max_side} 像素）后再试。",
        "{label.En} is {dims}, more than the limit of {limit:,} pixels, so it was not decoded (a safety "
        "limit). Shrink it first (for example to at most {max_side} px on the long side) and try again."),
    "AspectRatio": (
        "{label.zh}的宽高比过于极端（{width}×{height}）。服务要求每边在 {min_side} 到 {max_side} 像素之间，"
        "所以长边最多是短边的 {max_aspect} 倍（{max_aspect}:1）。请裁剪图片后再试。",
        "{label.En} has an extreme aspect ratio ({width}x{height}). The service needs {min_side} to "
        "{max_side} px per side, so the long side may be at most {max_aspect} times the short side "
        "({max_aspect}:1). Crop the image and try again."),
    "TooLarge.compress": ("{label.zh}无法压缩到 {max_mb} 以内。请先裁剪或缩小图片后再试。",
                          "{label.En} cannot be compressed below {max_mb}. Crop or shrink it first and try again."),
    "TooLarge.read": (
        "{label.zh}有 {size_mb}，超过本工具可读取的上限 {read_mb}。请先缩小或压缩图片后再试。",
        "{label.En} is {size_mb}, more than the {read_mb} this tool reads. "
        "Shrink or compress the image first and try again."),
    # --- Errors: local files ----------------------------------------------------------------------
    "NotFound": ("找不到{label.zh}：{shown}。请检查路径是否正确。",
                 "{label.En} was not found: {shown}. Check the path and try again."),
    "IsDirectory": ("{label.zh}是一个文件夹，不是图片文件：{shown}。请选择其中的图片文件。",
                    "{label.En} is a folder, not an image file: {shown}. Choose an image file instead."),
    "NotAFile": ("{label.zh}不是普通文件：{shown}。请选择一个图片文件。",
                 "{label.En} is not a regular file: {shown}. Choose an image file instead."),
    "Unreadable": ("无法读取{label.zh}（{why}）：{shown}。请检查文件权限或换一个文件。",
                   "{label.En} cannot be read ({why}): {shown}. Check the file's permissions or "
                   "choose another file."),
    "LocalPathNotAllowed": (
        "此处不能使用本地文件路径（{label.zh}：{shown}）。请用上传按钮上传图片，或提供可公开访问的 http(s) 链接。",
        "Local file paths cannot be used here ({label.en}: {shown}). Upload the image with the upload "
        "button, or give a public http(s) URL."),
    "PathNotAllowed": (
        "不允许读取{label.zh}（{shown}）：它不在允许的文件夹内。请用上传按钮上传图片。",
        "{label.En} ({shown}) may not be read: it is outside the folders this service may read. "
        "Upload the image instead."),
    # --- Errors: links and data URIs ------------------------------------------------------------
    "BadURL": (
        "链接{label.zh}无效（缺少主机名或格式不对）。请检查链接是否完整，"
        "例如 https://example.com/photo.jpg 或 oss://bucket/key。",
        "The link {label.en} is not valid (no host name or malformed). Check that it is complete, "
        "e.g. https://example.com/photo.jpg or oss://bucket/key."),
    "BadURL.file": ("file:// 链接{label.zh}无效。请使用 file:///绝对路径 的形式，或直接填写本地路径。",
                    "The file:// URL {label.en} is not valid. Use file:///absolute/path or give the "
                    "local path directly."),
    "PrivateURL": (
        "链接{label.zh}指向本机或内网地址（{host}）。{fetch}请使用可公开访问的 http(s) 链接，或直接上传图片。",
        "The link {label.en} points to a local or private address ({host}). {fetch} "
        "Use a public http(s) URL or upload the image instead."),
    "UnsupportedScheme": (
        "不支持链接{label.zh}的类型（{scheme}://）。{fetch}"
        "请使用 http(s):// 或 oss:// 链接、data: URI，或直接上传图片。",
        "The link {label.en} uses an unsupported scheme ({scheme}://). {fetch} "
        "Use an http(s):// or oss:// URL, a data: URI, or upload the image."),
    "BadDataURI": ("{label.zh}{problem}。请使用 data:image/png;base64,... 的形式，或直接上传图片文件。",
                   "{label.En} {problem}. Use the form data:image/png;base64,... or upload the image file."),
    # --- Notes: what was changed ------------------------------------------------------------------
    "note.first_frame": ("{label.zh}包含多帧（动图或多页），只使用第一帧。",
                         "{label.En} has several frames (animation or pages); only the first one is used."),
    "note.rotated": ("{label.zh}：已按 EXIF 方向信息旋转为正向。",
                     "{label.En}: rotated upright according to its EXIF orientation."),
    "note.depth": ("{label.zh}：已从高位深（16 位或浮点）转换为每通道 8 位。",
                   "{label.En}: converted from high bit depth (16-bit or float) to 8 bits per channel."),
    "note.cmyk": ("{label.zh}：已从 CMYK 转换为 RGB 颜色，颜色可能略有差异。",
                  "{label.En}: converted from CMYK to RGB colours; colours may look slightly different."),
    "note.converted": ("{label.zh}：已从 {src} 转换为 {dst}，以减小上传体积。",
                       "{label.En}: converted from {src} to {dst} for a smaller upload."),
    "note.converted_unaccepted": ("{label.zh}：已从 {src} 转换为 {dst}（服务不接受 {src} 格式）。",
                                  "{label.En}: converted from {src} to {dst} (the service does not accept {src})."),
    "note.upscaled": ("{label.zh}：已从 {w0}×{h0} 放大到 {w1}×{h1}，因为服务要求每边至少 {min_side} 像素。",
                      "{label.En}: upscaled from {w0}x{h0} to {w1}x{h1} because the service needs at "
                      "least {min_side} px per side."),
    "note.downscaled": ("{label.zh}：已从 {w0}×{h0} 缩小到 {w1}×{h1}（{why}）。",
                        "{label.En}: downscaled from {w0}x{h0} to {w1}x{h1} ({why})."),
    "note.recompressed": ("{label.zh}：文件超过 {max_mb}，已重新编码为 {fmt}。",
                          "{label.En}: the file was over {max_mb}, so it was re-encoded as {fmt}."),
    "note.quality": ("{label.zh}：已以 JPEG 质量 {quality} 保存，以控制在 {max_mb} 以内。",
                     "{label.En}: saved as JPEG quality {quality} to stay under {max_mb}."),
    # --- Phrases ------------------------------------------------------------------------------------
    "formats": ("JPG、PNG、BMP、TIFF、WEBP 或 GIF", "JPG, PNG, BMP, TIFF, WEBP or GIF"),
    "fetch": ("阿里云服务需要能从互联网下载该链接。", "The service must be able to fetch the URL from the internet."),
    "why.truncated": ("文件不完整", "the file is truncated"),
    "why.undecodable": ("图像数据无法解码", "the image data cannot be decoded"),
    "why.denied": ("没有读取权限", "permission denied"),
    "why.read_error": ("读取失败", "read error"),
    "why.refit": ("以控制在 {max_mb} 以内", "to stay under {max_mb}"),
    "why.side": ("服务每边最多接受 {max_side} 像素", "the service accepts at most {max_side} px per side"),
    "why.bytes": ("文件超过 {max_mb}", "the file was over {max_mb}"),
    "dims.size": ("{width}×{height}（{pixels:,} 像素）", "{width}x{height} ({pixels:,} pixels)"),
    "dims.pixels": ("{pixels:,} 像素", "{pixels:,} pixels"),
    "dims.unknown": ("过大", "too large"),
    "kind.pdf": ("PDF 文档", "a PDF document"),
    "kind.ps": ("PostScript/EPS 文件", "a PostScript/EPS file"),
    "kind.svg": ("SVG 矢量图", "an SVG (vector) image"),
    "kind.html": ("网页（HTML）", "a web page (HTML)"),
    "kind.heic": ("HEIC/HEIF 照片", "a HEIC/HEIF photo"),
    "kind.avif": ("AVIF 图片", "an AVIF image"),
    "datauri.shape": ("格式不完整（缺少逗号分隔的数据部分）", "is incomplete (no comma before the data)"),
    "datauri.mime": ("声明的类型是 {mime}，不是图片", "declares the type {mime}, not an image"),
    "datauri.base64": ("不是 base64 编码", "is not base64-encoded"),
    "datauri.invalid": ("中的 base64 数据无效（可能被截断或损坏）",
                        "contains invalid base64 data (cut off or damaged)"),
}

# Fields every template may use without the caller passing them.
_ALWAYS: dict[str, object] = {
    "min_side": MIN_SIDE, "max_side": MAX_SIDE, "max_aspect": MAX_ASPECT, "read_mb": mb(MAX_READ_BYTES),
    "formats": MESSAGES["formats"], "fetch": MESSAGES["fetch"],
}


def phrase(key: str, **fields: object) -> Pair:
    """The (zh, en) pair for ``key`` with ``fields`` filled in; a (zh, en) field goes in per language."""
    zh, en = MESSAGES[key]
    values = {**_ALWAYS, **fields}
    return (zh.format(**{k: v[0] if isinstance(v, tuple) else v for k, v in values.items()}),
            en.format(**{k: v[1] if isinstance(v, tuple) else v for k, v in values.items()}))


def note(key: str, label: Label, **fields: object) -> Pair:
    """The note ``note.<key>`` about the image ``label``, e.g. ``note("rotated", label)``."""
    return phrase(f"note.{key}", label=label, **fields)


def error(key: str, label: Label | None = None, **fields: object) -> InputImageError:
    """The :class:`InputImageError` for ``key``; its code is ``InputImage.`` + the part before a dot."""
    zh, en = phrase(key, label=label, **fields)
    return InputImageError(zh, en, code=f"InputImage.{key.partition('.')[0]}")
