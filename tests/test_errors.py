"""Every error code has a message in every language of the catalogue, with its remedy."""

import pytest

from aliyun_image import errors
from aliyun_image.errors import api_error, network_error, scrub
from aliyun_image.i18n import msg

PROTOCOL_CODES = [
    "InvalidParameter", "DataInspectionFailed", "InvalidParameter.DataInspection", "BadRequest.EmptyInput",
    "BadRequest.EmptyParameters", "BadRequest.EmptyModel", "InvalidURL", "Arrearage", "InternalError.Algo",
    "InvalidApiKey", "AccessDenied", "Workspace.AccessDenied", "Model.AccessDenied", "AccessDenied.Unpurchased",
    "ModelNotFound", "WorkSpaceNotFound", "RequestTimeOut", "BadRequest.TooLarge", "BadRequest.InputDownloadFailed",
    "BadRequest.UnsupportedFileFormat", "Throttling", "Throttling.RateQuota", "Throttling.AllocationQuota",
    "LimitRequests", "PrepaidBillOverdue", "PostpaidBillOverdue", "CommodityNotPurchased", "InternalError",
    "InternalError.Timeout", "SystemError", "ModelUnavailable",
]


@pytest.mark.parametrize("code", PROTOCOL_CODES)
def test_every_protocol_code_has_own_bilingual_message(code):
    e = api_error(400, code, "msg", "rid-1", region=errors.region_label("beijing", "h"), model="qwen-image-plus",
                  retries=3)
    assert errors._lookup(code) is not None, code
    assert e.msg.key == errors._lookup(code)
    texts = {lang: e.text(lang, details=False) for lang in ("en", "zh", "ja")}
    assert len(set(texts.values())) == 3, texts  # a text of its own in every language
    assert any("\u4e00" <= ch <= "\u9fff" for ch in texts["zh"])
    assert any("\u3040" <= ch <= "\u30ff" for ch in texts["ja"])
    assert "rid-1" in e.text("en") and code in e.text("zh") and code in e.text("ja")


def test_specific_remedies():
    key = api_error(401, "InvalidApiKey", region=errors.region_label("singapore", "x"))
    assert "Singapore (x)" in key.en and "Beijing" in key.en and "新加坡 (x)" in key.zh
    assert "シンガポール (x)" in key.text("ja")
    assert "xx-north-9 (y)" in api_error(401, "InvalidApiKey", region=errors.region_label("xx-north-9", "y")).en
    frankfurt = errors.region_label("eu-central-1", "y")
    assert "Germany (Frankfurt) (y)" in api_error(401, "InvalidApiKey", region=frankfurt).en
    assert "top up" in api_error(400, "Arrearage").en.lower()
    assert "3" in api_error(429, "Throttling.RateQuota", retries=3).en
    assert "enable" in api_error(403, "AccessDenied.Unpurchased", model="qwen-image-max").en.lower()
    assert "prompt" in api_error(400, "DataInspectionFailed").en.lower()


def test_unknown_code_still_shows_code_message_and_request_id():
    e = api_error(418, "Teapot.Brewing", "short and stout", "rid-9")
    t = e.text("en")
    assert "Teapot.Brewing" in t and "short and stout" in t and "rid-9" in t


def test_keys_are_scrubbed_from_service_messages():
    e = api_error(401, "InvalidApiKey", "Invalid key sk-abcdef1234567890 provided")
    assert "sk-abcdef1234567890" not in e.text("en") + e.text("zh") + e.message
    assert scrub("x sk-live_ABC-123 y") == "x sk-*** y"


@pytest.mark.parametrize("kind", ["dns", "refused", "connect_timeout", "timeout", "tls", "reset", "other"])
def test_network_messages(kind):
    e = network_error(kind, "dashscope.aliyuncs.com", retries=2)
    assert e.msg.key == f"error.network.{kind}" and e.code == f"Network.{kind}"
    assert e.zh and e.en and e.zh != e.en != e.text("ja")


def test_exit_codes():
    assert errors.validation(msg("error.cancelled")).exit_code == 2
    assert errors.validation(msg("error.cancelled")).exit_code == 2
    assert api_error(500, "InternalError").exit_code == 1


def test_every_error_key_the_code_names_is_in_the_catalogue():
    # A key missing from the catalogue would show as the key itself: check the tables that name keys.
    from aliyun_image import i18n
    from aliyun_image.images import messages as image_messages

    en = i18n.catalogue("en")
    keys = [f"error.api.{k}" for k in (*errors._API_KEYS.values(), *errors._BY_STATUS.values(), "server_error",
                                       "unknown")]
    keys += [f"error.network.{k}" for k in errors._NETWORK_KINDS]
    keys += [f"image.error.{k}" for k in image_messages.CODES]
    missing = [k for k in keys if k not in en]
    assert not missing, missing


def test_region_names_and_labels_render_per_language():
    assert errors.region_name("singapore").render("ja") == "シンガポール"
    assert errors.region_name("xx-north-9") == "xx-north-9"  # an id the catalogue does not name
    label = errors.region_label("us", "dashscope-us.aliyuncs.com")
    assert label.render("zh") == "美国（弗吉尼亚） (dashscope-us.aliyuncs.com)"
    assert label.render("en") == "US (Virginia) (dashscope-us.aliyuncs.com)"
