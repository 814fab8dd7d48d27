"""Signed links for one-click unsubscribe, the open pixel and click redirects.

A link is `{tracking_base_url}/{kind}/{token}` with kind `u` (unsubscribe), `o` (open) or
`c` (click). The token is `payload.mac`: payload = base64url(Message-ID without <>), plus
`~base64url(url)` for clicks; mac = HMAC-SHA256 under the per-install secret, over kind and
payload, so a token for one kind or message cannot be reused for another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from seqctl import config
from seqctl.files import install_secret

KINDS = ("u", "o", "c")


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()


def _mac(kind: str, payload: str) -> str:
    key = install_secret(config.home())
    return hmac.new(key, f"{kind}:{payload}".encode(), hashlib.sha256).hexdigest()[:32]


def link(base: str, kind: str, message_id: str, url: str | None = None) -> str:
    payload = _b64(message_id.strip("<>"))
    if url is not None:
        payload += "~" + _b64(url)
    return f"{base.rstrip('/')}/{kind}/{payload}.{_mac(kind, payload)}"


@dataclass(frozen=True)
class Token:
    kind: str
    message_id: str  # with <>
    url: str | None


def verify(kind: str, token: str) -> Token | None:
    """The token's content when its signature is right for `kind`, else None."""
    if kind not in KINDS or "." not in token:
        return None
    payload, _, mac = token.rpartition(".")
    if not hmac.compare_digest(mac, _mac(kind, payload)):
        return None
    try:
        parts = payload.split("~")
        message_id = "<" + _unb64(parts[0]) + ">"
        url = _unb64(parts[1]) if len(parts) > 1 else None
    except (ValueError, UnicodeDecodeError):
        return None
    return Token(kind, message_id, url)
