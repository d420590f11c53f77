"""The temporary-upload flow (protocol section 5): getPolicy data and the OSS form POST.

:meth:`OssBucket.issue` hands out a policy like DashScope's ``/uploads?action=getPolicy``;
:meth:`OssBucket.upload` checks a multipart POST against it the way OSS does (policy issued
and unexpired, signature, key prefix, equality conditions, size, no overwrite) and stores
the object, which generation requests can then name as ``oss://<key>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from xml.sax.saxutils import escape

from .errors import ServiceError
from .multipart import Part

OSS_ACCESS_KEY_ID = "LTAI5tEmulatorOssKey"
MAX_FILE_MB = 100
CST = timezone(timedelta(hours=8))  # DashScope reports times in UTC+8


def error_xml(code: str, message: str, request_id: str, extra: dict[str, str] | None = None) -> bytes:
    """OSS's XML error document."""
    fields = [("Code", code), ("Message", message), ("RequestId", request_id),
              ("HostId", "dashscope-file-emulator.oss-cn-beijing.aliyuncs.com"), *(extra or {}).items()]
    inner = "".join(f"  <{k}>{escape(str(v))}</{k}>\n" for k, v in fields)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n{inner}</Error>\n'.encode()


@dataclass
class Policy:
    """One issued upload policy."""

    policy: str
    signature: str
    upload_dir: str
    model: str
    expires_at: float  # unix seconds
    max_bytes: int
    acl: str = "private"
    forbid_overwrite: str = "true"


@dataclass
class StoredObject:
    """An uploaded object: its bytes, the model its policy was issued for, its content type."""

    data: bytes
    model: str
    content_type: str


class OssBucket:
    """Issued policies and uploaded objects (thread-safe, bounded by total bytes)."""

    def __init__(self, secret: bytes, max_total_bytes: int = 1024 * 1024 * 1024, max_policies: int = 10_000):
        self._secret = secret
        self.max_total_bytes = max_total_bytes
        self.max_policies = max_policies
        self._policies: OrderedDict[str, Policy] = OrderedDict()
        self._objects: OrderedDict[str, StoredObject] = OrderedDict()
        self._total = 0
        self._lock = threading.Lock()

    def issue(self, model: str, upload_host: str, ttl: float) -> dict:
        """The ``data`` object of a getPolicy reply, for uploads bound to ``model``."""
        now = time.time()
        day = datetime.fromtimestamp(now, CST).strftime("%Y-%m-%d")
        upload_dir = f"dashscope-instant/emulator/{day}/{uuid.uuid4()}"
        expires_at = now + ttl
        max_bytes = MAX_FILE_MB * 1024 * 1024
        doc = {
            "expiration": datetime.fromtimestamp(expires_at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "conditions": [
                ["content-length-range", 0, max_bytes],
                ["starts-with", "$key", upload_dir],
                {"bucket": "dashscope-file-emulator"},
                {"x-oss-object-acl": "private"},
                {"x-oss-forbid-overwrite": "true"},
            ],
        }
        policy = base64.b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode()
        signature = base64.b64encode(hmac.new(self._secret, policy.encode(), hashlib.sha1).digest()).decode()
        with self._lock:
            self._policies[policy] = Policy(policy, signature, upload_dir, model, expires_at, max_bytes)
            while len(self._policies) > self.max_policies:
                self._policies.popitem(last=False)
        return {
            "policy": policy,
            "signature": signature,
            "upload_dir": upload_dir,
            "upload_host": upload_host,
            "expire_in_seconds": int(ttl),
            "max_file_size_mb": MAX_FILE_MB,
            "capacity_limit_mb": 999999999,
            "oss_access_key_id": OSS_ACCESS_KEY_ID,
            "x_oss_object_acl": "private",
            "x_oss_forbid_overwrite": "true",
        }

    def upload(self, parts: list[Part]) -> tuple[str, int]:
        """Check and store one form POST. Returns ``(key, success_action_status)``.

        Raises :class:`.errors.ServiceError` exactly where OSS would refuse the upload, checking
        in OSS's order: form, credentials, policy, key, conditions, size, overwrite.
        """
        fields, file_part = _form_fields(parts)
        pol = self._policy_for(fields)
        key = _checked_key(fields, pol)
        if len(file_part.data) > pol.max_bytes:
            raise ServiceError(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
        status = {"200": 200, "201": 201}.get(fields.get("success_action_status", ""), 204)
        content_type = fields.get("x-oss-content-type") or file_part.content_type or "application/octet-stream"
        self._store(key, StoredObject(file_part.data, pol.model, content_type), pol.forbid_overwrite == "true")
        return key, status

    def _policy_for(self, fields: dict[str, str]) -> Policy:
        """The issued, unexpired policy the form's credentials name and sign."""
        if not fields.get("policy") or not fields.get("signature") or not fields.get("ossaccesskeyid"):
            raise ServiceError(403, "AccessDenied", "You have no right to access this object because of bucket acl.")
        if fields["ossaccesskeyid"] != OSS_ACCESS_KEY_ID:
            raise ServiceError(403, "InvalidAccessKeyId",
                               "The OSS Access Key Id you provided does not exist in our records.",
                               extra={"OSSAccessKeyId": fields["ossaccesskeyid"]})
        with self._lock:
            pol = self._policies.get(fields["policy"])
        if pol is None or not hmac.compare_digest(pol.signature.encode(), fields["signature"].encode()):
            raise ServiceError(403, "SignatureDoesNotMatch",
                               "The request signature we calculated does not match the signature you provided. "
                               "Check your key and signing method.")
        if time.time() > pol.expires_at:
            raise ServiceError(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
        return pol

    def _store(self, key: str, obj: StoredObject, forbid_overwrite: bool) -> None:
        """Keep ``obj`` under ``key``, evicting the oldest objects beyond the byte budget."""
        with self._lock:
            if key in self._objects and forbid_overwrite:
                raise ServiceError(409, "FileAlreadyExists",
                                   "The object you specified already exists and can not be overwritten.")
            old = self._objects.pop(key, None)
            self._total -= len(old.data) if old else 0
            self._objects[key] = obj
            self._total += len(obj.data)
            while self._total > self.max_total_bytes and len(self._objects) > 1:
                _, gone = self._objects.popitem(last=False)
                self._total -= len(gone.data)

    def get(self, key: str) -> StoredObject | None:
        """The object stored under ``key``, or None."""
        with self._lock:
            return self._objects.get(key)


def _form_fields(parts: list[Part]) -> tuple[dict[str, str], Part]:
    """The form's fields (lower-cased names, first value wins) and its file part."""
    fields: dict[str, str] = {}
    for part in parts:
        if part.name == "file":
            return fields, part  # OSS ignores every field after the file
        fields.setdefault(part.name.lower(), part.text)
    raise ServiceError(400, "InvalidArgument", "The form does not contain a file field.")


def _checked_key(fields: dict[str, str], pol: Policy) -> str:
    """The object key, once it and the equality conditions satisfy ``pol``."""
    key = fields.get("key", "")
    if not key:
        raise ServiceError(400, "InvalidArgument", "The form does not contain a key field.")
    if not key.startswith(pol.upload_dir + "/") or len(key) <= len(pol.upload_dir) + 1:
        raise ServiceError(403, "AccessDenied", "Invalid according to Policy: Policy Condition failed: "
                           f'["starts-with", "$key", "{pol.upload_dir}"]')
    for name, want in (("x-oss-object-acl", pol.acl), ("x-oss-forbid-overwrite", pol.forbid_overwrite)):
        if fields.get(name) != want:
            raise ServiceError(403, "AccessDenied", "Invalid according to Policy: Policy Condition failed: "
                               f'["eq", "${name}", "{want}"]')
    return key
