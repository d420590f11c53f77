"""Which place (platform and region) an emulator plays and which place a key belongs to.

A DashScope key works only in its own region; a call to another region's service fails with
401 ``InvalidApiKey`` (models document, section 3). The two newer platforms, the Qianwen AI
platform (``qianwen``) and QwenCloud (``qwencloud``), have keys of their own: a Bailian key
does not work there, nor the reverse (models document 7.4). The emulator plays one place: a
public region (``beijing``, ``singapore``, ``us``), a region only a workspace host reaches
(``eu-central-1``, ``ap-northeast-1``, ``cn-hongkong``) or a platform. It learns a key's place
in one of two ways:

* explicitly: ``Emulator(region_keys={"sk-abc...": "singapore"})``;
* by a test-key prefix: ``sk-bj-...`` / ``sk-cn-...`` (Beijing), ``sk-sg-...`` /
  ``sk-intl-...`` (Singapore), ``sk-us-...`` (US), ``sk-eu-...``, ``sk-jp-...``, ``sk-hk-...``
  (the workspace regions), ``sk-qianwen-...``, ``sk-qwencloud-...`` (the platforms). Real keys
  are ``sk-`` and hex digits, so no real key looks like this.

A key with no known place (``sk-test-123...``) is a Bailian key that works in every Bailian
region, so tests that do not care about regions keep working. The platforms refuse it, except
that the Qianwen AI platform takes ``sk-ws-`` keys, the form its keys usually have.
"""

from __future__ import annotations

from ..config import PLACES, PLATFORMS

BEIJING = "beijing"
SINGAPORE = "singapore"
US = "us"
QIANWEN = "qianwen"
QWENCLOUD = "qwencloud"
# Every place the emulator can play; us: the 3.0 line only (the legacy family is not offered there).
REGIONS = PLACES

KEY_PREFIXES = {"sk-bj-": BEIJING, "sk-cn-": BEIJING, "sk-sg-": SINGAPORE, "sk-intl-": SINGAPORE,
                "sk-us-": US, "sk-eu-": "eu-central-1", "sk-jp-": "ap-northeast-1", "sk-hk-": "cn-hongkong",
                "sk-qianwen-": QIANWEN, "sk-qwencloud-": QWENCLOUD}
PLATFORM_KEY_FORMS = {QIANWEN: ("sk-ws-",)}  # prefixes a platform takes from keys of no known place


def region_name(value: str) -> str:
    """``value`` as one of :data:`REGIONS` (case and spaces ignored), else ValueError."""
    name = (value or "").strip().lower()
    if name not in REGIONS:
        raise ValueError(f"unknown region {value!r}; choose one of: {', '.join(REGIONS)}")
    return name


def key_region(key: str, region_keys: dict[str, str] | None = None) -> str | None:
    """The place ``key`` belongs to: from ``region_keys``, else from its prefix
    (:data:`KEY_PREFIXES`), else None (any Bailian region)."""
    if region_keys and key in region_keys:
        return region_keys[key]
    lowered = key.lower()
    for prefix, region in KEY_PREFIXES.items():
        if lowered.startswith(prefix):
            return region
    return None


def key_belongs(key: str, place: str, region_keys: dict[str, str] | None = None) -> bool:
    """True when ``key`` may be used at ``place`` as far as places go: its own place, or, for a
    key of no known place, any Bailian region and the platform forms of :data:`PLATFORM_KEY_FORMS`."""
    own = key_region(key, region_keys)
    if own is not None:
        return own == place
    if place in PLATFORMS:
        return key.lower().startswith(PLATFORM_KEY_FORMS.get(place, ()))
    return True
