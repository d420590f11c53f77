"""One error tree, and every message a user can see, in Chinese and English.

Every failure anywhere in the package becomes an :class:`AliyunImageError` (or a subclass)
that carries what happened (HTTP status, DashScope code, the service's own message, request
id) and what the user should do next, in both languages. Callers render errors in one place:
the CLI prints :meth:`AliyunImageError.text`, the UI shows it in the page.

Messages never contain the API key: they are built from codes and templates, and the
service's own ``message`` is passed through :func:`scrub` first.
"""

from __future__ import annotations

import re

from .i18n import Message, t

ZH = "zh"
EN = "en"


def scrub(text: str) -> str:
    """Remove anything that looks like a DashScope key (``sk-...``) from ``text``."""
    return re.sub(r"sk-[A-Za-z0-9_\-]{4,}", "sk-***", str(text or ""))


def plural(n: int, word: str) -> str:
    """``word`` for ``n`` of it in an English message: "1 character", "2 characters"."""
    return word if n == 1 else word + "s"


class _Pair(Message):
    """TRANSITIONAL: a (zh, en) sentence pair from code not yet moved to the catalogue.

    Rendered as zh for Chinese and en for every other language. It goes away once every caller
    passes a catalogue :class:`Message`; a test counts the callers left.
    """

    def __init__(self, zh: str, en: str):
        super().__init__("", {"zh": zh, "en": en})

    def render(self, lang: str) -> str:
        return str(self.params["zh"] if lang == ZH else self.params["en"])


class AliyunImageError(Exception):
    """Base of every error this package raises.

    ``msg`` is what happened and what to do, as a catalogue :class:`~aliyun_image.i18n.Message`
    (key and parameters): the edge that shows the error renders it in its reader's language
    (:meth:`text`). ``code`` is DashScope's error code or one of ours (``Network.Timeout``...),
    ``status`` the HTTP status if there was a reply, ``request_id`` the service's id for support.
    """

    exit_code = 1
    # What an error says is fixed once it exists: the same error object may be shown to several
    # places (one failure event per wanted image), so a change would show up everywhere at once.
    # :meth:`with_text` and :meth:`replace` return a new error instead.
    _FIELDS = ("msg", "code", "status", "message", "request_id", "retries")

    def __init__(self, msg: Message | str, en: str | None = None, *, code: str = "", status: int | None = None,
                 message: str = "", request_id: str = "", retries: int = 0):
        if not isinstance(msg, Message):
            msg = _Pair(msg, msg if en is None else en)
        values = {"msg": msg, "code": code, "status": status, "message": scrub(message),
                  "request_id": request_id or "", "retries": retries}
        for name, value in values.items():
            object.__setattr__(self, name, value)
        super().__init__(msg.render(EN))

    # Declared for type checkers; set once in __init__.
    msg: Message
    code: str
    status: int | None
    message: str
    request_id: str
    retries: int

    @property
    def zh(self) -> str:
        """The message in Chinese, without code and request id."""
        return self.text(ZH, details=False)

    @property
    def en(self) -> str:
        """The message in English, without code and request id."""
        return self.text(EN, details=False)

    def __setattr__(self, name: str, value: object) -> None:
        # Python itself sets __traceback__, __cause__... on raise: only our fields are frozen.
        if name in self._FIELDS:
            raise AttributeError(f"{type(self).__name__} is immutable; use with_text() or replace()")
        super().__setattr__(name, value)

    def replace(self, **changes: object) -> AliyunImageError:
        """A copy of this error (same class) with some fields changed."""
        fields: dict = {name: getattr(self, name) for name in self._FIELDS}
        fields.update(changes)
        return type(self)(fields.pop("msg"), **fields)

    def with_text(self, msg: Message | str, en: str | None = None) -> AliyunImageError:
        """The same error (code, status, request id...) with a new message for the user."""
        return self.replace(msg=msg if isinstance(msg, Message) else _Pair(msg, msg if en is None else en))

    def text(self, lang: str = EN, details: bool = True) -> str:
        """The user's message in ``lang``, with code and request id unless ``details`` is off."""
        body = self.msg.render(lang)
        if not details:
            return body
        bits = []
        if self.code:
            bits.append(self.code if self.status is None else f"{self.code}, HTTP {self.status}")
        if self.request_id:
            bits.append(t(lang, "error.request_id", id=self.request_id))
        return f"{body} ({'; '.join(bits)})" if bits else body

    def both(self) -> str:
        """Chinese and English together, for places that cannot know the reader's language."""
        return f"{self.text(ZH)}\n{self.text(EN)}"

    def __str__(self) -> str:
        return self.text(EN)


class ValidationError(AliyunImageError):
    """The request was refused before any money was spent (bad prompt, size, image...)."""

    exit_code = 2


class InputImageError(ValidationError):
    """An input image could not be used (corrupt, not an image, too large...)."""


class ApiError(AliyunImageError):
    """DashScope answered with an error (or with a reply we cannot use)."""


class ThrottledError(ApiError):
    """HTTP 429 ``Throttling*``: the service refused the request (not accepted, so not billed).

    Raised at once (without the client's own retries) for requests sent through the
    :mod:`~aliyun_image.scheduler`, which lowers its limit and queues the request again.
    ``retry_after`` is the reply's ``Retry-After`` in seconds, if it gave one.
    """

    retry_after: float | None = None

    @classmethod
    def of(cls, err: AliyunImageError, retry_after: float | None) -> ThrottledError:
        """``err`` (a 429's :class:`ApiError`) as a ThrottledError waiting ``retry_after`` seconds."""
        out = cls(err.msg, code=err.code, status=err.status, message=err.message, request_id=err.request_id)
        out.retry_after = retry_after
        return out


class TaskFailedError(ApiError):
    """An async task that itself reported FAILED or CANCELED: the service's own answer, not billed."""


class TaskPendingError(ApiError):
    """An accepted async task whose end we did not see (polling timed out, or the polls failed):
    it most likely runs and is billed, so it counts as maybe billed and its row stays pending
    until ``resume`` collects it."""


class TaskGoneError(TaskPendingError):
    """The service no longer knows an async task (UNKNOWN: task ids live 24 h). That says nothing
    of the outcome: it stays maybe billed, but there is no result left to collect."""


class NetworkError(AliyunImageError):
    """No complete answer arrived: DNS, refused, reset, timeout, TLS."""


class OutcomeUnknownError(NetworkError):
    """A generation request was sent but its reply never came: it may have run (and been billed)."""


class DownloadError(AliyunImageError):
    """A result image could not be downloaded (expired URL, truncated, not an image, refused host)."""


class StorageError(AliyunImageError):
    """A result could not be written to disk (unwritable directory, disk full...)."""


class CancelledError(AliyunImageError):
    """The user stopped the work."""


# --- DashScope codes -> messages -------------------------------------------------------------
# Templates may use {region}, {retries}, {model}, {message}. Longest matching prefix wins, so
# "Throttling.RateQuota" uses its own row and "Throttling.Whatever" falls back to "Throttling".
_API_MESSAGES: dict[str, tuple[str, str]] = {
    "InvalidApiKey": (
        "API Key 无效或缺失（当前地域：{region}）。请检查 DASHSCOPE_API_KEY；"
        "北京与新加坡地域的 Key 互不通用，请确认 Key 与地域一致。",
        "The API key is invalid or missing (region used: {region}). Check DASHSCOPE_API_KEY; Beijing and Singapore "
        "keys are different, so make sure the key belongs to this region.",
    ),
    "InvalidParameter": (
        "请求参数不被接受：{message}。请检查尺寸、张数、种子等参数。",
        "The service rejected a parameter: {message}. Check size, number of images and seed.",
    ),
    "InvalidParameter.DataInspection": (
        "输入图片格式无法被内容审核识别。请换用 JPG 或 PNG 图片后重试。",
        "The input image format could not be inspected. Use a JPG or PNG image and try again.",
    ),
    "DataInspectionFailed": (
        "输入或输出内容未通过内容安全审核。请修改提示词或更换图片后重试。",
        "The input or output was flagged by content moderation. Change the prompt or the image and try again.",
    ),
    "BadRequest.EmptyInput": ("请求缺少输入内容。请填写提示词。", "The request has no input. Enter a prompt."),
    "BadRequest.EmptyParameters": ("请求缺少参数。", "The request has no parameters."),
    "BadRequest.EmptyModel": ("请求未指定模型。请选择一个模型。", "The request names no model. Choose a model."),
    "BadRequest.TooLarge": (
        "请求体过大。请使用更小的图片（本工具会自动压缩本地图片），或改用临时上传方式。",
        "The request is too large. Use smaller images (local files are compressed automatically) or the "
        "temporary-upload option.",
    ),
    "BadRequest.InputDownloadFailed": (
        "服务无法下载输入图片。请确认图片链接可以公开访问且未过期，或改为上传本地文件。",
        "The service could not download the input image. Make sure the URL is public and not expired, or upload the "
        "file instead.",
    ),
    "BadRequest.UnsupportedFileFormat": (
        "输入文件格式不受支持。请使用 JPG、PNG、BMP、TIFF、WEBP 或 GIF。",
        "The input file format is not supported. Use JPG, PNG, BMP, TIFF, WEBP or GIF.",
    ),
    "InvalidURL": (
        "请求中的图片链接无效。请检查链接是否完整、以 http(s):// 开头。",
        "An image URL in the request is invalid. Check that it is complete and starts with http(s)://.",
    ),
    "Arrearage": (
        "账户欠费，访问被拒绝。请在阿里云控制台充值后重试。",
        "Access denied because the account is in arrears. Top up your Alibaba Cloud account and try again.",
    ),
    "AccessDenied.Unpurchased": (
        "尚未开通模型 {model}。请在百炼控制台开通该模型后重试。",
        "Model {model} is not enabled for this account. Enable it in the Bailian (Model Studio) console and try again.",
    ),
    "Model.AccessDenied": (
        "当前账号无权使用模型 {model}。请在百炼控制台开通或申请权限。",
        "This account may not use model {model}. Enable it or request access in the Bailian console.",
    ),
    "Workspace.AccessDenied": (
        "无权访问该业务空间。请检查 Key 所属的业务空间。",
        "Access to the workspace was denied. Check which workspace the key belongs to.",
    ),
    "AccessDenied": (
        "访问被拒绝：{message}。请确认 Key 有权使用该模型，且与地域（{region}）一致。",
        "Access denied: {message}. Make sure the key may use this model and belongs to the region ({region}).",
    ),
    "ModelNotFound": (
        "模型 {model} 不存在或在当前地域（{region}）不可用。请换一个模型或地域。",
        "Model {model} does not exist or is not available in this region ({region}). Pick another model or region.",
    ),
    "WorkSpaceNotFound": ("业务空间不存在。请检查配置。", "The workspace does not exist. Check the configuration."),
    "RequestTimeOut": (
        "服务处理超时（已重试 {retries} 次）。请稍后重试。",
        "The service timed out (retried {retries} times). Try again later.",
    ),
    "Throttling": (
        "请求过于频繁，已自动重试 {retries} 次仍被限流。请稍等一分钟再试，或减少同时生成的张数。",
        "Rate limited: still throttled after {retries} automatic retries. Wait a minute and try again, or ask for "
        "fewer images at once.",
    ),
    "Throttling.AllocationQuota": (
        "已超出分配的额度（已重试 {retries} 次）。请稍后再试，或在控制台提高配额。",
        "The allocated quota is used up (retried {retries} times). Try later or raise the quota in the console.",
    ),
    "LimitRequests": (
        "请求数超出限制，已自动重试 {retries} 次。请稍后再试。",
        "Too many requests: retried {retries} times. Try again later.",
    ),
    "PrepaidBillOverdue": ("预付费账单已逾期。请在控制台处理账单。",
                           "The prepaid bill is overdue. Settle it in the console."),
    "PostpaidBillOverdue": ("后付费账单已逾期。请在控制台处理账单。",
                            "The postpaid bill is overdue. Settle it in the console."),
    "CommodityNotPurchased": ("尚未购买该服务。请在控制台开通。",
                              "The service has not been purchased. Enable it in the console."),
    "InternalError": (
        "服务内部错误（已自动重试 {retries} 次）。请稍后重试。",
        "The service had an internal error (retried {retries} times). Try again later.",
    ),
    "InternalError.Algo": (
        "模型处理出错：{message}。请更换图片或提示词后重试。",
        "The model failed: {message}. Try another image or prompt.",
    ),
    "SystemError": (
        "服务系统错误（已自动重试 {retries} 次）。请稍后重试。",
        "The service had a system error (retried {retries} times). Try again later.",
    ),
    "ModelUnavailable": (
        "模型暂时不可用（已自动重试 {retries} 次）。请稍后再试。",
        "The model is temporarily unavailable (retried {retries} times). Try again later.",
    ),
}

_BY_STATUS: dict[int, tuple[str, str]] = {
    400: ("请求被拒绝：{message}", "The request was rejected: {message}"),
    401: _API_MESSAGES["InvalidApiKey"],
    403: _API_MESSAGES["AccessDenied"],
    404: ("接口或模型不存在：{message}。请检查地址（{region}）与模型名。",
          "Endpoint or model not found: {message}. Check the address ({region}) and model name."),
    429: _API_MESSAGES["Throttling"],
}


# InvalidParameter covers many refusals; one of them has a remedy of its own: the service could
# not fetch an input image (a private or expired URL). Told by the service's message.
_INPUT_DOWNLOAD = re.compile(r"download|fetch|retriev|access.*(url|image)|url.*(invalid|unreachable)", re.I)


def _refine(code: str, message: str) -> str:
    """A more specific code for the message table, when the service's message says more."""
    if code == "InvalidParameter" and _INPUT_DOWNLOAD.search(message or ""):
        return "BadRequest.InputDownloadFailed"
    return code


def _lookup(code: str) -> tuple[str, str] | None:
    parts = code.split(".")
    for i in range(len(parts), 0, -1):
        hit = _API_MESSAGES.get(".".join(parts[:i]))
        if hit:
            return hit
    return None


def api_error(status: int | None, code: str, message: str = "", request_id: str = "", *,
              region: str | tuple[str, str] = "", model: str = "", retries: int = 0) -> ApiError:
    """Build the :class:`ApiError` for a DashScope error reply.

    Known codes get their own sentence and remedy; unknown codes still show the code, the
    service's message and the request id, so nothing is hidden from the user.
    """
    message = scrub(message).strip() or "-"
    region_zh, region_en = (region, region) if isinstance(region, str) else region
    fields = {"model": model or "?", "retries": retries, "message": message}
    tpl = _lookup(_refine(code, message)) if code else None
    if tpl is None and status is not None and status >= 500:
        tpl = ("服务暂时出错：{message}（已自动重试 {retries} 次）。请稍后重试。",
               "The service failed: {message} (retried {retries} times). Try again later.")
    if tpl is None:
        tpl = _BY_STATUS.get(status or 0) or (
            "服务返回错误：{message}", "The service returned an error: {message}")
    zh = tpl[0].format(region=region_zh or "?", **fields)
    en = tpl[1].format(region=region_en or "?", **fields)
    return ApiError(zh, en, code=code or "Unknown", status=status, message=message,
                    request_id=request_id, retries=retries)


def validation(zh: str, en: str, code: str = "Validation") -> ValidationError:
    """Shortcut for a :class:`ValidationError` with both messages."""
    return ValidationError(zh, en, code=code)


# --- Failures with no usable reply ---------------------------------------------------------------
def network_error(kind: str, target: str, *, retries: int = 0, detail: str = "") -> NetworkError:
    """A transport failure: ``kind`` is dns, refused, timeout, connect_timeout, tls, reset or other."""
    detail = scrub(detail)
    table = {
        "dns": ("无法解析服务地址 {t}。请检查网络连接和 DNS，或确认地域/Base URL 配置正确。",
                "Cannot resolve {t}. Check the network connection and DNS, or the region / base URL setting."),
        "refused": ("无法连接到 {t}（连接被拒绝，已重试 {r} 次）。请确认地址和端口正确、服务已启动。",
                    "Cannot connect to {t} (connection refused, retried {r} times). Check the address and port, and "
                    "that the service is running."),
        "connect_timeout": ("连接 {t} 超时（已重试 {r} 次）。请检查网络或代理设置。",
                            "Connecting to {t} timed out (retried {r} times). Check the network or proxy settings."),
        "timeout": ("等待 {t} 响应超时（已重试 {r} 次）。请稍后重试，或在设置中调大超时。",
                    "No reply from {t} in time (retried {r} times). Try again later or raise the timeout."),
        "tls": ("与 {t} 的安全连接（TLS）失败。请检查系统时间、证书或代理设置。",
                "The secure (TLS) connection to {t} failed. Check the system clock, certificates or proxy."),
        "reset": ("与 {t} 的连接被中断（已重试 {r} 次）。请检查网络后重试。",
                  "The connection to {t} was dropped (retried {r} times). Check the network and try again."),
        "other": ("网络错误：{d}。请检查网络后重试。", "Network error: {d}. Check the network and try again."),
    }
    zh, en = (s.format(t=target, r=retries, d=detail or kind) for s in table.get(kind, table["other"]))
    return NetworkError(zh, en, code=f"Network.{kind}", message=detail, retries=retries)


def outcome_unknown(target: str, request_sent: str = "timeout") -> OutcomeUnknownError:
    """A generation request left but no reply came back: do not retry blindly, tell the user."""
    what_zh = "等待响应超时" if request_sent == "timeout" else "连接在响应前中断"
    what_en = ("timed out waiting for the reply" if request_sent == "timeout"
               else "the connection dropped before the reply")
    return OutcomeUnknownError(
        f"生成请求已发送到 {target}，但{what_zh}。该请求可能已在服务端完成并计费，为避免重复扣费没有自动重试。"
        "请稍后在控制台查看用量后再决定是否重试。",
        f"The generation request reached {target} but {what_en}. It may have run and been billed, so it was "
        "not retried automatically. Check usage in the console before trying again.",
        code=f"Network.{'timeout' if request_sent == 'timeout' else 'reset'}",
    )


def task_timeout(task_id: str, limit: float, request_id: str = "") -> TaskPendingError:
    """An async task still running after ``limit`` seconds of polling: recorded, ``resume`` collects it."""
    return TaskPendingError(
        f"任务 {task_id} 在 {limit:.0f} 秒内未完成，可能仍在运行。任务已记录，"
        "稍后运行 python -m aliyun_image resume 即可取回结果。",
        f"Task {task_id} did not finish within {limit:.0f} s; it may still be "
        "running. It is recorded: run `python -m aliyun_image resume` later to collect it.",
        code="Task.Timeout", request_id=request_id)


def task_end_error(status: str, code: str, message: str, request_id: str, *,
                   region: str | tuple[str, str] = "", model: str = "") -> ApiError:
    """What an async task that ended without images (``status``) raises: FAILED or CANCELED is the
    task's own answer (:class:`TaskFailedError`, not billed); UNKNOWN (no such task any more) says
    nothing about whether it ran."""
    err = api_error(200, code, message, request_id, region=region, model=model)
    cls = TaskFailedError if status in ("FAILED", "CANCELED") else TaskGoneError if status == "UNKNOWN" else None
    if cls is None:
        return err
    return cls(err.msg, code=err.code, status=err.status, message=err.message,
                           request_id=err.request_id)


def task_unfollowed(task_id: str, err: AliyunImageError) -> TaskPendingError:
    """Polling the accepted task ``task_id`` failed with ``err``: the task still runs (and is
    billed) on the service, so it is kept for ``resume``; ``err`` keeps its code and status. The
    text does not say "try again": a second run would be billed again."""
    if isinstance(err, TaskPendingError):
        return err
    return TaskPendingError(
        f"任务 {task_id} 已被服务接受，但查询其进度失败（{(err.message or err.code)[:160]}），它可能仍在运行并计费。"
        "任务已记录，请勿重复生成；稍后运行 python -m aliyun_image resume 即可取回结果。",
        f"Task {task_id} was accepted, but checking on it failed ({(err.message or err.code)[:160]}); it may still be "
        "running and billed. It is recorded, so do not run it again: run `python -m aliyun_image resume` later "
        "to collect it.",
        code=err.code, status=err.status, message=err.message, request_id=err.request_id, retries=err.retries)


def bad_reply(status: int, what: str, request_id: str = "", body: str = "") -> ApiError:
    """A reply we cannot use: non-JSON body, or 200 with fields missing."""
    snippet = scrub(re.sub(r"\s+", " ", body or ""))[:160]
    return ApiError(
        f"服务返回了无法识别的响应（HTTP {status}，{what}）。请稍后重试；"
        "若持续出现，请检查 Base URL 是否指向 DashScope。"
        + (f" 响应开头：{snippet}" if snippet else ""),
        f"The service sent a reply we cannot read (HTTP {status}, {what}). Try again later; if it persists, check "
        "that the base URL points at DashScope." + (f" Reply starts: {snippet}" if snippet else ""),
        code="BadReply", status=status, message=what, request_id=request_id,
    )


def unexpected(exc: BaseException) -> AliyunImageError:
    """What the user sees for a bug: no traceback, the exception type only, and reassurance."""
    return AliyunImageError(
        f"发生了意外错误（{type(exc).__name__}）。已保存的结果不受影响；请重试，若反复出现请反馈。",
        f"Something unexpected went wrong ({type(exc).__name__}). Saved results are safe; try again and "
        "report it if it repeats.", code="Internal")


def may_be_billed(err: AliyunImageError) -> bool:
    """True when the image behind ``err`` may have been generated and billed.

    Bailian bills each image it generated. An image whose download or storing failed was
    generated; a request whose reply never came (or came as a 200 we could not read) may have
    been; a bug after sending may have been. Refusals, validation, Stop before sending and
    transport failures before the request left were not.
    """
    if isinstance(err, (OutcomeUnknownError, DownloadError, StorageError)):
        return True
    if isinstance(err, (ValidationError, CancelledError, TaskFailedError)):
        return False
    if isinstance(err, TaskPendingError):
        return True  # an accepted task we lost sight of: it runs
    if isinstance(err, ApiError):
        return err.status == 200  # a 200 we could not read; PartialResult images were never made
    if isinstance(err, NetworkError):
        return False
    return err.code == "Internal"


# --- Result downloads ----------------------------------------------------------------------------
def download_http_error(status: int, code: str, message: str, retries: int) -> DownloadError:
    """A result download answered with an error status (expired link, bad signature...)."""
    if status == 403 and ("expired" in message.lower() or code == "AccessDenied"):
        return DownloadError(
            "结果图片链接已过期（链接仅保留 24 小时），无法下载。请重新生成。",
            "The result URL has expired (they last 24 hours), so it cannot be downloaded. Generate it again.",
            code="Download.Expired", status=status, message=message)
    if status == 403 and code == "SignatureDoesNotMatch":
        return DownloadError(
            "结果链接的签名无效（链接可能被截断或改动过）。请复制完整的原始链接后重试。",
            "The result URL's signature does not match (the link may be cut short or altered). Copy the "
            "complete original URL and try again.", code="Download.BadSignature", status=status, message=message)
    if status == 404:
        return DownloadError("结果图片不存在（链接无效或已被删除）。请重新生成。",
                             "The result image does not exist (bad or deleted URL). Generate it again.",
                             code="Download.NotFound", status=status, message=message)
    return DownloadError(
        f"下载结果图片失败（HTTP {status}{'，' + code if code else ''}，已重试 {retries} 次）。"
        "稍后可用 download 命令重试。",
        f"Downloading the result failed (HTTP {status}{', ' + code if code else ''}, retried {retries} times). "
        "Retry later with the download command.",
        code=f"Download.HTTP{status}", status=status, message=message, retries=retries)


def download_truncated(got: int | None, declared: int | None, retries: int) -> DownloadError:
    """A download that ended before its declared length, after ``retries`` attempts."""
    size = f"（{got}/{declared} 字节）" if got is not None else ""
    size_en = f" ({got}/{declared} bytes)" if got is not None else ""
    return DownloadError(
        f"结果图片下载不完整{size}，已重试 {retries} 次。请检查网络后用 download 命令重试。",
        f"The result download was cut short{size_en}, retried {retries} times. Check the network and retry "
        "with the download command.", code="Download.Truncated", retries=retries)


def download_too_big(limit: int) -> DownloadError:
    """A result larger than the download limit (a hostile or broken reply)."""
    return DownloadError(
        f"结果文件超过 {limit // (1024 * 1024)} MB 上限，已停止下载。",
        f"The result file is larger than the {limit // (1024 * 1024)} MB limit; download stopped.",
        code="Download.TooLarge")

