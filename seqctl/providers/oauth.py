"""What the OAuth providers (Gmail, Outlook) share: endpoints read from the environment at call
time, token file paths, HTTP calls with a timeout, and turning HTTP failures into the provider
errors of base.py (429/5xx/timeouts transient with Retry-After, the rest permanent; for a send,
a 5xx or a timeout after the request went out is undecidable), and `redact`, which every
provider applies to error text built from a response body or a library exception."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from seqctl import clock
from seqctl.files import write_private
from seqctl.providers.base import ProviderError, TransientError, UndecidableError

DEFAULT_TIMEOUT = 30.0          # seconds per HTTP request; a hung API must not hang a tick

# OAuth error codes meaning the grant itself is gone: the user must connect the inbox again.
REVOKED_GRANT_ERRORS = frozenset(
    {"invalid_grant", "unauthorized_client", "interaction_required", "consent_required"}
)

# 408/429 and 5xx are worth retrying later; 501 (not implemented) never gets better.
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# For an unsafe request (a send) only these say "not processed, try again": 408 (the request
# never fully arrived), 429 (throttled before processing), 503 (the service did not take it).
# Any other 5xx came after the message was handed over: it may have gone out.
UNSAFE_RETRYABLE_STATUSES = frozenset({408, 429, 503})
NOT_IMPLEMENTED = 501

_SECRET_NAMES = (r"(?:\w*token|client_secret|password|passwd|device_code|auth_code"
                 r"|authorization_code|code_verifier|assertion)")
_REDACTIONS = (
    # Authorization header values, also inside XOAUTH2 strings ("auth=Bearer ...").
    (re.compile(r"""(?i)\b(Bearer)(\s+)[^\s'",]+"""), r"\1\2***"),
    (re.compile(r"(?i)\b(Basic)(\s+)[A-Za-z0-9+/=]{8,}"), r"\1\2***"),
    # A SASL XOAUTH2 string, base64 ("user=...\x01auth=Bearer ..." encodes to "dXNlcj..."),
    # whether after the mechanism name or on its own.
    (re.compile(r"(?i)\b(XOAUTH2)(\s+)[A-Za-z0-9+/=]{8,}"), r"\1\2***"),
    (re.compile(r"\bdXNlcj[A-Za-z0-9+/=]{8,}"), "***"),
    # JSON / Python-repr pairs: "access_token": "...", 'password': '...', "token": "..."
    (re.compile(rf"""(?i)(["']{_SECRET_NAMES}["']\s*:\s*)(["'])(?:\\.|(?!\2).)*\2"""),
     r"\1\2***\2"),
    # form / query / key=value pairs: access_token=...&, password: ...
    (re.compile(rf"""(?i)(\b{_SECRET_NAMES}\b["']?\s*[=:]\s*)(?!["'])[^\s&,;"'}}]+"""),
     r"\1***"),
    # an authorization code in a query or form (?code=4/0AX...&state=); "code=500" stays
    (re.compile(r"""(?i)(\bcode=)[^\s&,;"'}]{8,}"""), r"\1***"),
    # An OAuth authorization code as a JSON value ("code": "4/0AX4Xf..."): long and not
    # a plain word, unlike Graph's error codes ("code": "ErrorExceededMessageLimit").
    (re.compile(r"""(?i)(["']code["']\s*:\s*)(["'])(?=[^"']*[^A-Za-z"'])[^"']{20,}\2"""),
     r"\1\2***\2"),
)


def redact(text: object) -> str:
    """`text` (an exception, a response body...) with credentials masked: Bearer/Basic
    header values, XOAUTH2 strings, the values of token, access_token, refresh_token,
    id_token, client_secret, password and device_code fields, and OAuth authorization codes,
    in JSON, form, query and key=value notation. Error codes such as Graph's stay readable."""
    result = str(text)
    for pattern, replacement in _REDACTIONS:
        result = pattern.sub(replacement, result)
    return result


def _env_url(name: str, default: str) -> str:
    return (os.environ.get(name) or default).rstrip("/")


def gmail_api_url() -> str:
    return _env_url("SEQCTL_GMAIL_API_URL", "https://gmail.googleapis.com")


def google_token_uri() -> str:
    return os.environ.get("SEQCTL_GOOGLE_TOKEN_URI") or "https://oauth2.googleapis.com/token"


def gcal_api_url() -> str:
    return _env_url("SEQCTL_GCAL_API_URL", "https://www.googleapis.com")


def graph_api_url() -> str:
    return _env_url("SEQCTL_GRAPH_API_URL", "https://graph.microsoft.com/v1.0")


def ms_authority_host() -> str:
    return _env_url("SEQCTL_MS_AUTHORITY", "https://login.microsoftonline.com")


def ms_authority(tenant: str | None) -> str:
    """The MSAL authority URL: the identity host with `/<tenant>` appended."""
    return f"{ms_authority_host()}/{tenant or 'common'}"


def token_file_name(kind: str, address: str) -> str:
    """`<kind>-<address>.json` with the address percent-encoded: letters, digits and
    `@ . _ + -` stay (an ordinary address keeps its readable name), everything else,
    `/` `\\` `%` and control characters included, becomes %XX. Distinct addresses give
    distinct names, and no name can leave the tokens folder."""
    name = quote(address.strip().lower(), safe="@+")
    if len(name) > 200:        # file names stop at 255 bytes; keep such a name unique
        name = name[:136] + "." + hashlib.sha256(name.encode()).hexdigest()
    return f"{kind}-{name}.json"


def token_path(home: Path, kind: str, address: str) -> Path:
    """`$SEQCTL_HOME/tokens/<kind>-<address>.json`, the address safely encoded. A token
    saved under the older raw name (an address with a quote or similar) is moved to it."""
    folder = Path(home) / "tokens"
    path = folder / token_file_name(kind, address)
    legacy = f"{kind}-{address.lower()}.json"
    if legacy != path.name and "/" not in legacy and "\0" not in legacy and not path.exists():
        with suppress(OSError):
            (folder / legacy).rename(path)
    return path


def save_json_private(path: Path, data: dict[str, Any]) -> None:
    write_private(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date (RFC 9110).
    None when absent or unreadable; never negative."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or clock.now()
    return max(0.0, (when - now).total_seconds())


# Google puts the end of a sending limit in its words: "... Retry after 2026-12-02T15:04:05.000Z".
_RETRY_AFTER_TEXT = re.compile(
    r"retry after\s+(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
    r"(?:Z|[+-]\d{2}:?\d{2})?)", re.I)


def retry_after_in_text(text: str) -> datetime | None:
    """The time named by "Retry after TIME" in an error message (UTC), else None."""
    match = _RETRY_AFTER_TEXT.search(text or "")
    if not match:
        return None
    value = match.group(1).replace(" ", "T")
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)


def api_error_message(response: requests.Response) -> str:
    """The API's own words for a failed response: Google `{"error": {"message"}}`, Graph
    `{"error": {"code", "message"}}`, OAuth `{"error", "error_description"}`, else the text."""
    try:
        body = response.json()
    except ValueError:
        text = (response.text or "").strip()
        return text[:200] or f"HTTP {response.status_code}"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = error.get("code")
        message = error.get("message") or ""
        if isinstance(code, str) and code and code not in message:
            return f"{code}: {message}".rstrip(": ")
        return message or f"HTTP {response.status_code}"
    if isinstance(error, str):
        description = body.get("error_description")
        return f"{error}: {description}" if description else error
    return f"HTTP {response.status_code}"


def google_error_reasons(response: requests.Response) -> set[str]:
    """The `reason` values of a Google error body (`rateLimitExceeded`, ...)."""
    try:
        error = response.json().get("error", {})
        return {item.get("reason", "") for item in error.get("errors", [])}
    except (ValueError, AttributeError, TypeError):
        return set()


def error_for_response(
    response: requests.Response, what: str, *, unsafe: bool = False
) -> ProviderError:
    """The provider error for a failed (non-2xx) response. Transient ones carry Retry-After.

    With `unsafe` (a send): 408/429/503 are transient (not processed), other 5xx answers
    are UndecidableError: the server had the whole message, so it may have gone out, and a
    blind retry could send it twice."""
    status = response.status_code
    detail = redact(api_error_message(response))
    message = f"{what}: HTTP {status}: {detail}"
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if unsafe and status >= 500 and status != NOT_IMPLEMENTED:
        if status in UNSAFE_RETRYABLE_STATUSES:
            return TransientError(message, retry_after=retry_after)
        return UndecidableError(
            f"{what}: the server answered {status} after the message was handed over; "
            f"it may have been sent ({detail})"
        )
    if status in TRANSIENT_STATUSES:
        return TransientError(message, retry_after=retry_after)
    return ProviderError(message)


def json_body(response: requests.Response, what: str) -> Any:
    """The JSON of a successful response; an unreadable body (an HTML page from a proxy)
    is a ProviderError, not a stray ValueError."""
    try:
        return response.json()
    except ValueError:
        kind = response.headers.get("Content-Type") or "no content type"
        raise ProviderError(
            f"{what}: HTTP {response.status_code} with a body that is not JSON ({kind})"
        ) from None


def _never_reached_server(exc: requests.RequestException) -> bool:
    """True when the request certainly never got to the server (refused, DNS, connect
    timeout), False when it may have been received (read timeout, connection dropped)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if not isinstance(exc, requests.ConnectionError) or isinstance(exc, requests.ReadTimeout):
        return False
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError | ConnectTimeoutError | NameResolutionError)


def http_request(
    session: requests.Session,
    method: str,
    url: str,
    *,
    what: str,
    timeout: float = DEFAULT_TIMEOUT,
    unsafe: bool = False,
    **kwargs: Any,
) -> requests.Response:
    """One HTTP call; timeouts and refused connections become TransientError. With
    `unsafe` (a send), a failure after the request may have reached the server raises
    UndecidableError instead: retrying blindly could send twice. Error messages are
    redacted: a requests exception can quote the Authorization header."""
    try:
        return session.request(method, url, timeout=timeout, **kwargs)
    except (requests.Timeout, requests.ConnectionError) as exc:
        if unsafe and not _never_reached_server(exc):
            raise UndecidableError(
                f"{what}: the connection failed after the request was sent, so it may have "
                f"gone through ({type(exc).__name__})"
            ) from None
        raise TransientError(f"{what}: {type(exc).__name__}: {redact(exc)}") from None
    except requests.RequestException as exc:
        raise ProviderError(f"{what}: {type(exc).__name__}: {redact(exc)}") from None
    except (UnicodeError, ValueError) as exc:
        # http.client encodes header values as latin-1: a token with other characters
        # fails here, before anything was sent.
        raise ProviderError(
            f"{what}: the request could not be encoded ({type(exc).__name__}); "
            "a stored token or a header holds characters HTTP cannot carry"
        ) from None


def with_bcc(raw: bytes, bcc: Iterable[str]) -> bytes:
    """`raw` with a Bcc header prepended for the API to deliver to (Gmail and Exchange take
    Bcc recipients from the header and never show it to the other recipients)."""
    addresses = [re.sub(r"[\r\n,]+", "", address).strip() for address in bcc]
    addresses = [address for address in addresses if address]
    if not addresses:
        return raw
    return f"Bcc: {', '.join(addresses)}\r\n".encode() + raw


def poll(
    attempt: Callable[[], Any],
    *,
    tries: int,
    delay: float,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """Call `attempt` up to `tries` times, `delay` seconds apart, until it returns non-None."""
    for index in range(max(1, tries)):
        result = attempt()
        if result is not None:
            return result
        if index + 1 < tries and delay > 0:
            sleep(delay)
    return None
