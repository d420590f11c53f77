"""Which region an emulator plays and which region a key belongs to.

A DashScope key works only in its own region; a call to another region's service fails with
401 ``InvalidApiKey`` (models document, section 3). The emulator learns a key's region in
one of two ways:

* explicitly: ``Emulator(region_keys={"sk-abc...": "singapore"})``;
* by a test-key prefix: ``sk-bj-...`` / ``sk-cn-...`` (Beijing), ``sk-sg-...`` /
  ``sk-intl-...`` (Singapore), ``sk-us-...`` (US). Real keys are ``sk-`` and hex digits, so
  no real key looks like this.

A key with no known region (``sk-test-123...``) is accepted in every region, so tests that do
not care about regions keep working.
"""

from __future__ import annotations

BEIJING = "beijing"
SINGAPORE = "singapore"
US = "us"
REGIONS = (BEIJING, SINGAPORE, US)  # us: the Qwen-Image family is not offered there

KEY_PREFIXES = {"sk-bj-": BEIJING, "sk-cn-": BEIJING, "sk-sg-": SINGAPORE, "sk-intl-": SINGAPORE,
                "sk-us-": US}


def region_name(value: str) -> str:
    """``value`` as one of :data:`REGIONS` (case and spaces ignored), else ValueError."""
    name = (value or "").strip().lower()
    if name not in REGIONS:
        raise ValueError(f"unknown region {value!r}; choose one of: {', '.join(REGIONS)}")
    return name


def key_region(key: str, region_keys: dict[str, str] | None = None) -> str | None:
    """The region ``key`` belongs to: from ``region_keys``, else from its prefix
    (:data:`KEY_PREFIXES`), else None (any region)."""
    if region_keys and key in region_keys:
        return region_keys[key]
    lowered = key.lower()
    for prefix, region in KEY_PREFIXES.items():
        if lowered.startswith(prefix):
            return region
    return None
