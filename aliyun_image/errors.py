"""One error tree; what each error says is a catalogue message, rendered in the reader's language.

Every failure anywhere in the package becomes an :class:`AliyunImageError` (or a subclass)
that carries what happened (HTTP status, DashScope code, the service's own message, request
id) and what the user should do next, as a :class:`~aliyun_image.i18n.Message` (a key under
``error.`` and its parameters, never a sentence). Callers render errors in one place: the CLI
prints :meth:`AliyunImageError.text` in its locale's language, the page and the API in the
reader's.

Messages never contain the API key: they are built from codes and templates, and the
service's own ``message`` is passed through :func:`scrub` first.
"""

from __future__ import annotations

import re

from .i18n import DEFAULT, Message, catalogue, msg, t

ZH = "zh"
EN = "en"


def scrub(text: str) -> str:
    """Remove anything that looks like a DashScope key (``sk-...``) from ``text``."""
    return re.sub(r"sk-[A-Za-z0-9_\-]{4,}", "sk-***", str(text or ""))


def plural(n: int, word: str) -> str:
    """``word`` for ``n`` of it in an English message: "1 character", "2 characters"."""
    return word if n == 1 else word + "s"


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

    def __init__(self, msg: Message, *, code: str = "", status: int | None = None,
                 message: str = "", request_id: str = "", retries: int = 0):
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

    def with_text(self, msg: Message) -> AliyunImageError:
        """The same error (code, status, request id...) with a new message for the user."""
        return self.replace(msg=msg)

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
    :mod:`~aliyun_image.dashscope.scheduler`, which lowers its limit and queues the request again.
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
# Each code's text lives in the catalogue under ``error.api.<key>``; its placeholders are
# {region}, {retries}, {model}, {message}. Longest matching prefix wins, so
# "Throttling.AllocationQuota" uses its own row and "Throttling.Whatever" falls back to "Throttling".
_API_KEYS: dict[str, str] = {
    "InvalidApiKey": "invalid_api_key",
    "InvalidParameter": "invalid_parameter",
    "InvalidParameter.DataInspection": "data_inspection_format",
    "DataInspectionFailed": "data_inspection_failed",
    "BadRequest.EmptyInput": "empty_input",
    "BadRequest.EmptyParameters": "empty_parameters",
    "BadRequest.EmptyModel": "empty_model",
    "BadRequest.TooLarge": "too_large",
    "BadRequest.InputDownloadFailed": "input_download_failed",
    "BadRequest.UnsupportedFileFormat": "unsupported_file_format",
    "InvalidURL": "invalid_url",
    "Arrearage": "arrearage",
    "AccessDenied.Unpurchased": "unpurchased",
    "Model.AccessDenied": "model_access_denied",
    "Workspace.AccessDenied": "workspace_access_denied",
    "AccessDenied": "access_denied",
    "ModelNotFound": "model_not_found",
    "WorkSpaceNotFound": "workspace_not_found",
    "RequestTimeOut": "request_timeout",
    "Throttling": "throttling",
    "Throttling.AllocationQuota": "allocation_quota",
    "LimitRequests": "limit_requests",
    "PrepaidBillOverdue": "prepaid_bill_overdue",
    "PostpaidBillOverdue": "postpaid_bill_overdue",
    "CommodityNotPurchased": "commodity_not_purchased",
    "InternalError": "internal_error",
    "InternalError.Algo": "algo_error",
    "SystemError": "system_error",
    "ModelUnavailable": "model_unavailable",
}

# When the code is unknown (or absent), the HTTP status picks the text.
_BY_STATUS: dict[int, str] = {
    400: "http_400",
    401: "invalid_api_key",
    403: "access_denied",
    404: "http_404",
    429: "throttling",
}


# InvalidParameter covers many refusals; one of them has a remedy of its own: the service could
# not fetch an input image (a private or expired URL). Told by the service's message.
_INPUT_DOWNLOAD = re.compile(r"download|fetch|retriev|access.*(url|image)|url.*(invalid|unreachable)", re.I)


def is_moderation(code: str) -> bool:
    """True when ``code`` is the content moderation's refusal, however it is spelled
    (``DataInspectionFailed``, ``data_inspection_failed``, ``DataInspection.Failed``...; not
    ``InvalidParameter.DataInspection``, an image format the inspection could not read). Bailian
    bills nothing for it."""
    return "datainspectionfailed" in re.sub(r"[^a-z]", "", (code or "").lower())


def _refine(code: str, message: str) -> str:
    """A more specific code for the message table, when the service's message says more."""
    if is_moderation(code):
        return "DataInspectionFailed"
    if code == "InvalidParameter" and _INPUT_DOWNLOAD.search(message or ""):
        return "BadRequest.InputDownloadFailed"
    return code


def _lookup(code: str) -> str | None:
    """The catalogue key (``error.api.<key>``) of a DashScope code, by its longest known prefix."""
    parts = code.split(".")
    for i in range(len(parts), 0, -1):
        hit = _API_KEYS.get(".".join(parts[:i]))
        if hit:
            return f"error.api.{hit}"
    return None


def region_name(region: str) -> Message | str:
    """A region's name for people (``error.region.<id>``: Beijing, Singapore...); an id the
    catalogue does not name (``eu-central-1``) is shown as it is."""
    key = f"error.region.{region}"
    return msg(key) if region and key in catalogue(DEFAULT) else region


def region_label(region: str, host: str) -> Message:
    """How messages name the service a request went to: ``Singapore (dashscope-intl.aliyuncs.com)``."""
    return msg("error.region_label", name=region_name(region), host=host)


def api_error(status: int | None, code: str, message: str = "", request_id: str = "", *,
              region: Message | str = "", model: str = "", retries: int = 0) -> ApiError:
    """Build the :class:`ApiError` for a DashScope error reply.

    Known codes get their own sentence and remedy; unknown codes still show the code, the
    service's message and the request id, so nothing is hidden from the user. ``region`` names
    where the request went (:func:`region_label`, or a custom base URL as is).
    """
    message = scrub(message).strip() or "-"
    key = _lookup(_refine(code, message)) if code else None
    if key is None and status is not None and status >= 500:
        key = "error.api.server_error"
    if key is None:
        key = f"error.api.{_BY_STATUS.get(status or 0, 'unknown')}"
    text = msg(key, region=region or "?", model=model or "?", retries=retries, message=message)
    return ApiError(text, code=code or "Unknown", status=status, message=message,
                    request_id=request_id, retries=retries)


def validation(text: Message, code: str = "Validation") -> ValidationError:
    """Shortcut for a :class:`ValidationError`: ``validation(msg("job.prompt_empty"), code=...)``."""
    return ValidationError(text, code=code)


def cancelled() -> CancelledError:
    """The error for work the user stopped."""
    return CancelledError(msg("error.cancelled"), code="Cancelled")


# --- Failures with no usable reply ---------------------------------------------------------------
_NETWORK_KINDS = ("dns", "refused", "connect_timeout", "timeout", "tls", "reset", "other")


def network_error(kind: str, target: str, *, retries: int = 0, detail: str = "") -> NetworkError:
    """A transport failure: ``kind`` is dns, refused, timeout, connect_timeout, tls, reset or other."""
    detail = scrub(detail)
    key = f"error.network.{kind if kind in _NETWORK_KINDS else 'other'}"
    return NetworkError(msg(key, target=target, retries=retries, detail=detail or kind),
                        code=f"Network.{kind}", message=detail, retries=retries)


def outcome_unknown(target: str, request_sent: str = "timeout") -> OutcomeUnknownError:
    """A generation request left but no reply came back: do not retry blindly, tell the user."""
    kind = "timeout" if request_sent == "timeout" else "reset"
    return OutcomeUnknownError(msg("error.outcome_unknown", target=target, what=msg(f"error.outcome_{kind}")),
                               code=f"Network.{kind}")


def task_timeout(task_id: str, limit: float, request_id: str = "") -> TaskPendingError:
    """An async task still running after ``limit`` seconds of polling: recorded, ``resume`` collects it."""
    return TaskPendingError(msg("error.task_timeout", task_id=task_id, seconds=f"{limit:.0f}"),
                            code="Task.Timeout", request_id=request_id)


def task_end_error(status: str, code: str, message: str, request_id: str, *,
                   region: Message | str = "", model: str = "") -> ApiError:
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
        msg("error.task_unfollowed", task_id=task_id, reason=(err.message or err.code)[:160]),
        code=err.code, status=err.status, message=err.message, request_id=err.request_id, retries=err.retries)


def bad_reply(status: int, what: str, request_id: str = "", body: str = "") -> ApiError:
    """A reply we cannot use: non-JSON body, or 200 with fields missing."""
    snippet = scrub(re.sub(r"\s+", " ", body or ""))[:160]
    text = (msg("error.bad_reply_snippet", status=status, what=what, snippet=snippet) if snippet
            else msg("error.bad_reply", status=status, what=what))
    return ApiError(text, code="BadReply", status=status, message=what, request_id=request_id)


def unexpected(exc: BaseException) -> AliyunImageError:
    """What the user sees for a bug: no traceback, the exception type only, and reassurance."""
    return AliyunImageError(msg("error.unexpected", type=type(exc).__name__), code="Internal")


def may_be_billed(err: AliyunImageError) -> bool:
    """True when the image behind ``err`` may have been generated and billed.

    Bailian bills each image it generated. An image whose download or storing failed was
    generated; a request whose reply never came (or came as a 200 we could not read) may have
    been; a bug after sending may have been. Refusals, validation, Stop before sending and
    transport failures before the request left were not.
    """
    if isinstance(err, (OutcomeUnknownError, DownloadError, StorageError)):
        return True
    if is_moderation(err.code):  # refused by content moderation, sync or in a task: never billed
        return False
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
        return DownloadError(msg("error.download.expired"), code="Download.Expired", status=status, message=message)
    if status == 403 and code == "SignatureDoesNotMatch":
        return DownloadError(msg("error.download.bad_signature"), code="Download.BadSignature", status=status,
                             message=message)
    if status == 404:
        return DownloadError(msg("error.download.not_found"), code="Download.NotFound", status=status,
                             message=message)
    text = (msg("error.download.http_code", status=status, code=code, retries=retries) if code
            else msg("error.download.http", status=status, retries=retries))
    return DownloadError(text, code=f"Download.HTTP{status}", status=status, message=message, retries=retries)


def download_truncated(got: int | None, declared: int | None, retries: int) -> DownloadError:
    """A download that ended before its declared length, after ``retries`` attempts."""
    text = (msg("error.download.truncated_size", got=got, declared=declared, retries=retries) if got is not None
            else msg("error.download.truncated", retries=retries))
    return DownloadError(text, code="Download.Truncated", retries=retries)


def download_too_big(limit: int) -> DownloadError:
    """A result larger than the download limit (a hostile or broken reply)."""
    return DownloadError(msg("error.download.too_large", limit_mb=limit // (1024 * 1024)), code="Download.TooLarge")
