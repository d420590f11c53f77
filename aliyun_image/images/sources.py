"""Reading sources: URLs, data URIs, local paths and streams, under the hosted-mode policy.

URLs are only checked (the service fetches them, not us); everything else becomes bytes for
:mod:`.pipeline`. The hosted-mode rules (:class:`~.options.Options`: no local paths, only some
folders, no private URLs) are enforced here, before the file system or the network is touched.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
import socket
import stat
import urllib.parse
import urllib.request
from typing import Any

from ..errors import InputImageError
from .messages import error, phrase
from .options import MAX_READ_BYTES, Label, Options, mb

# Host names that can only mean "this machine" or "this network" (RFC 6761, RFC 8375, common
# cloud conventions). The service fetches URLs from Alibaba Cloud, so these can never work.
_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")


# --- URLs -------------------------------------------------------------------------------------------
def check_http_url(url: str, label: Label, opts: Options) -> None:
    """Refuse a malformed http(s) URL, or (hosted mode) one the service could not fetch."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        raise error("bad_url", label) from None
    if not host:
        raise error("bad_url", label)
    if not opts.allow_private_urls and _is_private_host(host):
        raise error("private_url", label, host=host)


def _is_private_host(host: str) -> bool:
    """True when ``host`` can only be reached from inside this machine or network.

    This is a usability check, not an SSRF defence: the service (not this process) fetches the
    URL, so we do not resolve DNS; a public name that resolves to a private address simply fails
    at the service with its own download error.
    """
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(_PRIVATE_SUFFIXES):
        return True
    ip = _parse_ip(host)
    if ip is None:
        return "." not in host  # a single-label name ("nas", "intranet") is a LAN name
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_unspecified
            or ip.is_reserved or ip.is_multicast or not ip.is_global)


def _parse_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    # Fetchers built on inet_aton also accept "127.1", "2130706433" and "0x7f.0.0.1".
    if re.fullmatch(r"[0-9a-fx.]+", host) and any(c.isdigit() for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def file_url_to_path(url: str, label: Label) -> str:
    """The local path a ``file://`` URL names (only ``file:///...`` and ``file://localhost/...``)."""
    parts = urllib.parse.urlsplit(url)
    if parts.netloc not in ("", "localhost") or not parts.path:
        raise error("bad_url_file", label)
    return urllib.request.url2pathname(parts.path)


# --- data: URIs -------------------------------------------------------------------------------------
def _bad_data_uri(label: Label, problem: str, mime: str = "") -> InputImageError:
    return error("bad_data_uri", label, problem=phrase(f"data_uri.{problem}", mime=mime))


def decode_data_uri(uri: str, label: Label) -> bytes:
    """The bytes of a ``data:image/...;base64,`` URI, forgiving what copy-and-paste does to it."""
    header, sep, payload = uri[len("data:"):].partition(",")
    if not sep:
        raise _bad_data_uri(label, "shape")
    params = [p.strip().lower() for p in header.split(";")]
    mime = params[0]
    if mime and not mime.startswith("image/"):
        raise _bad_data_uri(label, "mime", mime)
    if "base64" not in params[1:]:
        raise _bad_data_uri(label, "base64")
    try:
        return base64.b64decode(payload, validate=True)  # the usual case: one pass, no copies
    except (binascii.Error, ValueError):
        pass
    # Tolerate what copy-and-paste does to long URIs: line breaks, %-escapes, lost padding.
    payload = re.sub(r"\s+", "", urllib.parse.unquote(payload))
    payload += "=" * (-len(payload) % 4)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise _bad_data_uri(label, "invalid") from None


# --- Local files and streams ------------------------------------------------------------------------
def read_path(path: str, label: Label, opts: Options, shown: str | None = None) -> bytes:
    """Read a local file, enforcing the hosted-mode rules before touching the file system.

    ``shown`` is how messages quote the path (the ``file://`` URL the user gave, say).
    """
    shown = shown or path
    if not opts.allow_local_paths:
        raise error("local_path_not_allowed", label, shown=shown)
    try:
        expanded = os.path.expanduser(path)
        real = os.path.realpath(expanded)
    except (ValueError, OSError):
        raise _unreadable(label, shown) from None
    # Check the allow-list before existence, so a refused path reveals nothing about the disk.
    if opts.allowed_dirs is not None and not _inside_any(real, opts.allowed_dirs):
        raise error("path_not_allowed", label, shown=shown)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        raise error("not_found", label, shown=shown) from None
    except (OSError, ValueError):
        raise _unreadable(label, shown) from None
    if stat.S_ISDIR(st.st_mode):
        raise error("is_directory", label, shown=shown)
    if not stat.S_ISREG(st.st_mode):  # FIFOs and devices could block or never end
        raise error("not_a_file", label, shown=shown)
    if st.st_size > MAX_READ_BYTES:
        raise _too_big_to_read(label, st.st_size)
    try:
        # Open the resolved path: a symlink swapped in after the check cannot redirect us.
        with open(real, "rb") as fh:
            return fh.read(MAX_READ_BYTES + 1)
    except PermissionError:
        raise _unreadable(label, shown, denied=True) from None
    except OSError:
        raise _unreadable(label, shown) from None


def _unreadable(label: Label, shown: str, denied: bool = False) -> InputImageError:
    return error("unreadable", label, shown=shown, why=phrase("why.denied" if denied else "why.read_error"))


def _too_big_to_read(label: Label, size: int) -> InputImageError:
    return error("too_large_read", label, size_mb=mb(size))


def _inside_any(real: str, roots: tuple[str, ...]) -> bool:
    norm = os.path.normcase(real)
    for root in roots:
        root = os.path.normcase(root)
        try:
            if os.path.commonpath([norm, root]) == root:
                return True
        except ValueError:  # different drives on Windows
            continue
    return False


def read_stream(stream: Any, label: Label) -> bytes:
    """Read a binary file-like object from its current position, up to the read limit."""
    try:
        data = stream.read(MAX_READ_BYTES + 1)
    except OSError:
        raise _unreadable(label, label.name) from None
    if isinstance(data, str):
        raise TypeError("the file object must be opened in binary mode ('rb')")
    data = bytes(data or b"")
    if len(data) > MAX_READ_BYTES:
        raise _too_big_to_read(label, len(data))
    return data
