"""Input images on the wire: URLs as given, local images inline (``data:`` URIs) or through the
temporary OSS upload (Beijing only), chosen by the ``upload`` setting and their size."""

from __future__ import annotations

from collections.abc import Callable

from .client import DashScopeClient
from ..config import Settings
from ..errors import validation
from ..i18n import msg
from ..jobs import Job


def image_refs(settings: Settings, client: DashScopeClient, job: Job, key: str,
               on_upload: Callable[[], None]) -> list[str]:
    """Wire references for the job's images (``on_upload`` is called once before uploading)."""
    locals_ = [im for im in job.images if im.kind == "local"]
    inline_bytes = sum(len(im.data or b"") * 4 // 3 for im in locals_)
    mode = settings.uploads.upload
    too_big_inline = inline_bytes > settings.uploads.inline_max_bytes
    upload = bool(locals_) and (mode == "always" or (mode == "auto" and too_big_inline))
    if upload and not settings.supports_temp_upload:
        if mode == "always":
            raise validation(msg("error.upload_beijing_only"), code="Validation.Upload")
        upload = False
    policy = None
    refs = []
    for i, im in enumerate(job.images):
        if im.kind != "local":
            refs.append(im.ref or "")
        elif upload:
            if policy is None:
                on_upload()
                policy = client.upload_policy(key, job.model)  # one policy for all files
            refs.append(client.upload(policy, f"{i + 1}-{im.filename}", im.data or b"", im.mime or ""))
        else:
            refs.append(im.data_uri())
    return refs
