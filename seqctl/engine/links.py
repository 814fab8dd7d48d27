"""Signed links for one-click unsubscribe, the open pixel and click redirects (pure: the key
is passed in).

A link is `{tracking_base_url}/{kind}/{token}` with kind `u` (unsubscribe), `o` (open) or
`c` (click). The token is `payload.mac`: payload = base64url(Message-ID without <>), plus
`~base64url(url)` for clicks; mac = HMAC-SHA256 under the per-install secret, over kind and
payload, so a token for one kind or message cannot be reused for another.

What following a verified link does is in `seqctl.engine.tracking`.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import hmac
import html
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from seqctl.engine.message import find_links
from seqctl.errors import SeqctlError

KINDS = ("u", "o", "c")


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(value: str) -> str:
    """The `tracking_base_url` setting as stored (no trailing slash), or a SeqctlError.

    It must be https (RFC 8058: One-Click is only ever advertised over https); http is
    accepted for loopback hosts only (`http://127.0.0.1:8080`, local use). A path
    (`https://t.example.com/seq`) is kept: `seqctl serve` serves under it."""
    example = "e.g. https://t.example.com or https://t.example.com/seq"
    try:
        parts = urlsplit(value.strip())
        host = parts.hostname or ""
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError:
        raise SeqctlError(f"tracking_base_url '{value}' is not a URL ({example})") from None
    if parts.scheme not in ("https", "http") or not host:
        raise SeqctlError(f"tracking_base_url must start with https:// ({example})")
    if parts.scheme == "http" and not _is_loopback(host):
        raise SeqctlError(
            "tracking_base_url must be https:// (RFC 8058 one-click unsubscribe needs https; "
            f"http is only for 127.0.0.1 or localhost): {example}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise SeqctlError(
            f"tracking_base_url takes no query, fragment or user name ({example})")
    return urlunsplit((parts.scheme, parts.netloc.lower(), parts.path.rstrip("/"), "", ""))


def base_path(base_url: str) -> str:
    """The path of the base URL (`/seq` for `https://t.example.com/seq`), '' for none."""
    return urlsplit(base_url).path.rstrip("/") if base_url else ""


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()


def _mac(key: bytes, kind: str, payload: str) -> str:
    return hmac.new(key, f"{kind}:{payload}".encode(), hashlib.sha256).hexdigest()[:32]


def link(base: str, kind: str, message_id: str, url: str | None = None, *, key: bytes) -> str:
    payload = _b64(message_id.strip("<>"))
    if url is not None:
        payload += "~" + _b64(url)
    return f"{base.rstrip('/')}/{kind}/{payload}.{_mac(key, kind, payload)}"


@dataclass(frozen=True)
class Token:
    kind: str
    message_id: str  # with <>
    url: str | None


def verify(kind: str, token: str, *, key: bytes) -> Token | None:
    """The token's content when its signature is right for `kind`, else None."""
    if kind not in KINDS or "." not in token or not token.isascii():
        return None
    payload, _, mac = token.rpartition(".")
    if not hmac.compare_digest(mac, _mac(key, kind, payload)):
        return None
    try:
        parts = payload.split("~")
        message_id = "<" + _unb64(parts[0]) + ">"
        url = _unb64(parts[1]) if len(parts) > 1 else None
    except (ValueError, UnicodeDecodeError):
        return None
    if len(parts) > 2 or (kind == "c") != (url is not None):
        return None
    return Token(kind, message_id, url)


def is_unsubscribe_link(url: str, *, key: bytes) -> bool:
    path = urlsplit(url).path.rstrip("/")
    head, _, token = path.rpartition("/")
    return head.endswith("/u") and verify("u", token, key=key) is not None


def normalise_url(url: str) -> str:
    """The form two URLs are compared in: scheme and host lower case, default port and
    entity escapes removed, an empty path as `/`."""
    url = html.unescape(url.strip())
    if "://" not in url:
        url = "https://" + url
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    netloc = parts.netloc.lower()
    default_port = {"http": ":80", "https": ":443"}.get(scheme)
    if default_port and netloc.endswith(default_port):
        netloc = netloc[: -len(default_port)]
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, parts.fragment))


def email_links(raw: bytes) -> list[str]:
    """The links in the text part of a sent message, as the HTML part made them clickable
    (the same URL pattern), first occurrence first."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    part = message.get_body(preferencelist=("plain",))
    if part is None:
        return []
    links: list[str] = []
    for url in find_links(part.get_content()):  # the one definition of "a link"
        if url.lower() in ("http://", "https://", "www."):
            continue
        target = url if "://" in url else f"https://{url}"
        if target not in links:
            links.append(target)
    return links
