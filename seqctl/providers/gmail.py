"""Gmail through the Gmail API, authorized with the rep's own OAuth grant.

Send: users.messages.send with the raw MIME (threadId for replies), then the stored message is
read back for its final Message-ID. Sync: users.history.list from the stored historyId; a 404
(history too old) triggers a bounded resync of the last 7 days of the inbox.

Scopes (docs/providers.md explains each): gmail.send to send; gmail.readonly to look a
Message-ID up in Sent (the exactly-once reconcile) and to read the body of bounces, auto-replies
and invitations. A grant holding gmail.metadata instead of gmail.readonly still works: messages
are classified from their headers and a Sent lookup that finds nothing is undecidable.
"""

from __future__ import annotations

import base64
import json
import re
import socket
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from google.auth import exceptions as google_exceptions
from google.auth.transport.requests import Request as GoogleRequest
from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import InstalledAppFlow

from seqctl.errors import SeqctlError
from seqctl.providers.base import (
    AuthRevokedError,
    FetchResult,
    InboundMessage,
    InboxInfo,
    MessageRejectedError,
    ProviderError,
    RecipientRejectedError,
    SenderLimitError,
    SendResult,
    TransientError,
    UndecidableError,
)
from seqctl.providers.oauth import (
    DEFAULT_TIMEOUT,
    REVOKED_GRANT_ERRORS,
    api_error_message,
    error_for_response,
    gmail_api_url,
    google_error_reasons,
    google_token_uri,
    http_request,
    json_body,
    parse_retry_after,
    redact,
    retry_after_in_text,
    save_json_private,
    token_path,
    with_bcc,
)

GMAIL_SEND = "https://www.googleapis.com/auth/gmail.send"
GMAIL_READONLY = "https://www.googleapis.com/auth/gmail.readonly"
GMAIL_METADATA = "https://www.googleapis.com/auth/gmail.metadata"
CALENDAR_READONLY = "https://www.googleapis.com/auth/calendar.readonly"
# Any of these lets us search and read bodies; gmail.metadata alone does not.
_BODY_READING_SCOPES = frozenset(
    {GMAIL_READONLY, "https://www.googleapis.com/auth/gmail.modify", "https://mail.google.com/"}
)

METADATA_HEADERS = (
    "From", "To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To", "References",
    "Auto-Submitted", "Precedence", "X-Autoreply", "X-Autorespond",
    "X-Auto-Response-Suppress", "Content-Type", "Return-Path", "List-Id",
)

RESYNC_QUERY = "newer_than:7d"
RESYNC_LIMIT = 500
SENT_SCAN_LIMIT = 100           # metadata-only grants: how far back Sent is scanned
# Gmail's search (rfc822msgid:) indexes a sent message with a delay: for this long after a
# send, "not found" does not mean "not sent".
SENT_LOOKUP_LAG = 900.0
# The mailbox's own sending limits (developers.google.com/gmail/api/guides/handle-errors):
# a daily quota, or a per-user rate. Either pauses the inbox, not the enrollments.
_DAILY_LIMIT_REASONS = frozenset({"dailyLimitExceeded"})
_RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
_INVALID_RECIPIENT = re.compile(r"invalid (to|cc|bcc) header|invalid recipient", re.I)
_TOO_LARGE = re.compile(r"too large|exceeds the (maximum|limit)", re.I)
_SKIPPED_LABELS = frozenset({"SENT", "DRAFT"})

_BOUNCE_SENDER = re.compile(r"mailer-daemon|postmaster", re.I)
_BODY_WORTHY_TYPE = re.compile(r"multipart/report|text/calendar|message/delivery-status", re.I)
_BODY_WORTHY_SUBJECT = re.compile(
    r"automatic reply|auto.?reply|out of (the )?office|abwesen|automatische antwort|"
    r"réponse automatique|absence|respuesta automática|fuera de la oficina|"
    r"invitation|einladung|invitación|delivery status|undeliver|returned mail|"
    r"mail delivery|unzustellbar|non remis",
    re.I,
)


def gmail_scopes(calendar: bool = False) -> list[str]:
    scopes = [GMAIL_SEND, GMAIL_READONLY]
    return [*scopes, CALENDAR_READONLY] if calendar else scopes


class _TimedRequest(GoogleRequest):
    """google-auth's requests transport with our timeout on token refreshes."""

    def __init__(self, session: requests.Session, timeout: float):
        super().__init__(session)
        self._timeout = timeout

    def __call__(self, url, method="GET", body=None, headers=None, timeout=None, **kwargs):
        return super().__call__(url, method, body, headers, timeout or self._timeout, **kwargs)


def _credentials_from_info(info: dict[str, Any]) -> Credentials:
    # The token endpoint comes from the environment at call time, never from the file.
    if not isinstance(info, dict):
        raise ValueError("not a JSON object")
    info = {k: v.strip() if k in _TOKEN_FIELDS and isinstance(v, str) else v
            for k, v in info.items()}
    missing = [name for name in _AUTHORIZED_USER_FIELDS if not info.get(name)]
    if missing:
        raise ValueError(f"missing field {missing[0]!r}")
    expiry = None
    if info.get("expiry"):          # google-auth keeps naive UTC datetimes
        expiry = datetime.strptime(info["expiry"].rstrip("Z").split(".")[0], "%Y-%m-%dT%H:%M:%S")
    scopes = info.get("scopes")
    return Credentials(
        token=info.get("token"),
        refresh_token=info["refresh_token"],
        token_uri=google_token_uri(),
        client_id=info["client_id"],
        client_secret=info["client_secret"],
        scopes=scopes.split() if isinstance(scopes, str) else scopes,
        expiry=expiry,
    )


def _refresh(credentials: Credentials, session: requests.Session, timeout: float) -> None:
    """Refresh the access token. invalid_grant and friends → AuthRevokedError."""
    try:
        credentials.refresh(_TimedRequest(session, timeout))
    except google_exceptions.RefreshError as exc:
        data = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
        detail = redact(exc.args[0] if exc.args else exc)
        if data.get("error") in REVOKED_GRANT_ERRORS or not credentials.refresh_token:
            raise AuthRevokedError(f"Google refused the refresh token: {detail}") from None
        if getattr(exc, "retryable", False):
            raise TransientError(f"Google token refresh failed: {detail}") from None
        raise ProviderError(f"Google token refresh failed: {detail}") from None
    except google_exceptions.TransportError as exc:
        raise TransientError(f"Google token refresh failed: {redact(exc)}") from None
    except (UnicodeError, ValueError) as exc:
        raise ProviderError(
            "Google token refresh failed: a stored credential holds characters HTTP cannot "
            f"carry ({type(exc).__name__})"
        ) from None


def gmail_error(response: requests.Response, what: str, *, unsafe: bool = False) -> ProviderError:
    """A failed Gmail answer sorted by whose problem it is: the mailbox's quota or rate
    (403/429 with dailyLimitExceeded, userRateLimitExceeded or rateLimitExceeded, or "Retry
    after TIME" in the message) is a SenderLimitError; for a send, an invalid recipient is a
    RecipientRejectedError and a message too large a MessageRejectedError; the rest as
    `error_for_response` sorts it."""
    status = response.status_code
    detail = redact(api_error_message(response))
    message = f"{what}: HTTP {status}: {detail}"
    if status in (403, 429):
        reasons = google_error_reasons(response)
        until = retry_after_in_text(detail)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if reasons & _DAILY_LIMIT_REASONS:
            return SenderLimitError(message, retry_after=retry_after, until=until, daily=True)
        if reasons & _RATE_LIMIT_REASONS or until is not None:
            return SenderLimitError(message, retry_after=retry_after, until=until)
    if unsafe and status == 400 and _INVALID_RECIPIENT.search(detail):
        return RecipientRejectedError(message)
    if unsafe and (status == 413 or (status == 400 and _TOO_LARGE.search(detail))):
        return MessageRejectedError(message)
    return error_for_response(response, what, unsafe=unsafe)


def _header_block(headers: Iterable[dict[str, str]], mime_type: str | None) -> bytes:
    """An RFC 5322 header block (ending in a blank line) from Gmail's metadata headers."""
    lines = []
    names = set()
    for header in headers:
        name = header.get("name", "")
        value = re.sub(r"[\r\n]+\s*", " ", header.get("value", ""))
        if name:
            names.add(name.lower())
            lines.append(f"{name}: {value}")
    if "content-type" not in names and mime_type:
        lines.append(f"Content-Type: {mime_type}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def _needs_body(headers: dict[str, str], mime_type: str | None) -> bool:
    """Bounces, auto-replies and invitations are classified from their bodies (DSN status,
    return date, text/calendar part); ordinary replies need headers only."""
    content_type = headers.get("content-type", "") + " " + (mime_type or "")
    sender = headers.get("from", "") + " " + headers.get("return-path", "")
    return bool(
        _BOUNCE_SENDER.search(sender)
        or _BODY_WORTHY_TYPE.search(content_type)
        or _BODY_WORTHY_SUBJECT.search(headers.get("subject", ""))
        or headers.get("auto-submitted", "no").strip().lower() != "no"
        or "x-autoreply" in headers
        or "x-autorespond" in headers
        or headers.get("precedence", "").strip().lower() in {"auto_reply", "bulk", "junk"}
    )


class GmailProvider:
    """An inbox backed by the Gmail API. Token: `$SEQCTL_HOME/tokens/gmail-<address>.json`."""

    kind = "gmail"
    sent_lookup_lag: float = SENT_LOOKUP_LAG

    def __init__(
        self,
        inbox: InboxInfo,
        *,
        session: requests.Session | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        resync_limit: int = RESYNC_LIMIT,
    ):
        self.inbox = inbox
        self.address = inbox.address
        self.token_file = token_path(inbox.home, "gmail", inbox.address)
        self.session = session or requests.Session()
        self.timeout = timeout
        self.resync_limit = resync_limit
        self._info: dict[str, Any] | None = None
        self._credentials: Credentials | None = None

    # -- credentials ----------------------------------------------------------------------

    def _reconnect_hint(self) -> str:
        return (
            f"reconnect it with `seqctl inbox connect gmail --client-secrets FILE` or "
            f"`seqctl inbox import gmail {self.address} --credentials FILE`"
        )

    def _load(self) -> Credentials:
        if self._credentials is None:
            try:
                self._info = json.loads(self.token_file.read_text())
                self._credentials = _credentials_from_info(self._info)
            except FileNotFoundError:
                raise AuthRevokedError(
                    f"no Gmail token for {self.address}; {self._reconnect_hint()}"
                ) from None
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                raise AuthRevokedError(
                    f"the Gmail token file {self.token_file} is unusable ({redact(exc)}); "
                    f"{self._reconnect_hint()}"
                ) from None
            except OSError as exc:
                raise ProviderError(
                    f"cannot read the Gmail token file {self.token_file}: "
                    f"{exc.strerror or type(exc).__name__}"
                ) from None
        return self._credentials

    @property
    def scopes(self) -> set[str]:
        self._load()
        assert self._info is not None
        return set(self._info.get("scopes") or gmail_scopes())

    @property
    def can_read_bodies(self) -> bool:
        return bool(self.scopes & _BODY_READING_SCOPES)

    def _refresh(self) -> Credentials:
        credentials = self._load()
        try:
            _refresh(credentials, self.session, self.timeout)
        except AuthRevokedError as exc:
            raise AuthRevokedError(f"{self.address}: {exc}; {self._reconnect_hint()}") from exc
        self._save(credentials)
        return credentials

    def _save(self, credentials: Credentials) -> None:
        assert self._info is not None
        fresh = json.loads(credentials.to_json(strip=["token_uri"]))
        self._info = {**self._info, **{k: v for k, v in fresh.items() if v is not None}}
        try:
            save_json_private(self.token_file, self._info)
        except OSError as exc:
            raise ProviderError(
                f"cannot save the Gmail token file {self.token_file}: "
                f"{exc.strerror or type(exc).__name__}"
            ) from None

    def _access_token(self) -> str:
        credentials = self._load()
        if not credentials.valid:
            credentials = self._refresh()
        return credentials.token

    # -- HTTP -----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        allow: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> requests.Response:
        """An authorized call to a Google API. 401 refreshes the token once and retries;
        statuses in `allow` are returned, other failures raised as provider errors."""
        extra_headers = kwargs.pop("headers", {})
        unsafe = bool(kwargs.get("unsafe"))
        token = self._access_token()
        for attempt in (1, 2):
            response = http_request(
                self.session, method, url, what=what, timeout=self.timeout,
                headers={**extra_headers, "Authorization": f"Bearer {token}"}, **kwargs,
            )
            if response.status_code != 401 or attempt == 2:
                break
            token = self._refresh().token
        if response.ok or response.status_code in allow:
            return response
        if response.status_code == 401:
            raise AuthRevokedError(
                f"{what}: Google rejected a freshly refreshed token; {self._reconnect_hint()}"
            )
        raise gmail_error(response, what, unsafe=unsafe)

    def _gmail(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.request(method, f"{gmail_api_url()}/gmail/v1/users/me/{path}", **kwargs)

    def profile(self) -> dict[str, Any]:
        what = "Gmail getProfile"
        return json_body(self._gmail("GET", "profile", what=what), what)

    # -- sending ----------------------------------------------------------------------------

    def send(
        self,
        raw: bytes,
        *,
        message_id: str,
        thread_id: str | None = None,
        bcc: Iterable[str] = (),
    ) -> SendResult:
        raw = with_bcc(raw, bcc)
        body: dict[str, Any] = {"raw": base64.urlsafe_b64encode(raw).decode("ascii")}
        if thread_id:
            body["threadId"] = thread_id
        response = self._gmail(
            "POST", "messages/send", json=body, what="Gmail send", unsafe=True
        )
        try:
            sent = json_body(response, "Gmail send")
            gmail_id = sent["id"]
        except (ProviderError, KeyError, TypeError):
            # Gmail answered 2xx: the message was accepted, only its id is unreadable.
            raise UndecidableError(
                f"Gmail send: HTTP {response.status_code} without a readable message id; "
                "the message was probably sent"
            ) from None
        final_message_id = self._read_back_message_id(gmail_id) or message_id
        return SendResult(
            provider_message_id=gmail_id,
            thread_id=sent.get("threadId"),
            message_id=final_message_id,
        )

    def _read_back_message_id(self, gmail_id: str) -> str | None:
        # The message is already sent: a failure here must not look like a failed send.
        try:
            meta = self._get_metadata(gmail_id, ("Message-ID",))
        except ProviderError:
            return None
        headers = _headers_by_name(meta)
        return headers.get("message-id") if meta else None

    def find_sent(self, message_id: str) -> SendResult | None:
        bare = message_id.strip().strip("<>")
        try:
            if self.can_read_bodies:
                return self._search_sent(bare, message_id)
            return self._scan_sent(bare, message_id)
        except AuthRevokedError:
            raise
        except ProviderError as exc:
            raise UndecidableError(f"cannot look {message_id} up in Gmail: {exc}") from exc
        except (KeyError, TypeError, AttributeError) as exc:
            raise UndecidableError(
                f"cannot look {message_id} up in Gmail: unexpected answer ({type(exc).__name__})"
            ) from None

    def _search_sent(self, bare: str, message_id: str) -> SendResult | None:
        found = json_body(self._gmail(
            "GET", "messages", what="Gmail messages.list",
            params={"q": f"rfc822msgid:{bare} in:sent", "maxResults": 5},
        ), "Gmail messages.list")
        for item in found.get("messages", []):
            return SendResult(item["id"], item.get("threadId"), message_id)
        return None

    def _scan_sent(self, bare: str, message_id: str) -> SendResult | None:
        """gmail.metadata cannot search: read the Message-ID of the most recent sent mail."""
        listing = json_body(self._gmail(
            "GET", "messages", what="Gmail messages.list",
            params={"labelIds": "SENT", "maxResults": SENT_SCAN_LIMIT},
        ), "Gmail messages.list")
        for item in listing.get("messages", []):
            meta = self._get_metadata(item["id"], ("Message-ID",))
            if meta and _headers_by_name(meta).get("message-id", "").strip("<>") == bare:
                return SendResult(item["id"], item.get("threadId"), message_id)
        if listing.get("nextPageToken"):
            raise UndecidableError(
                f"{message_id} is not among the last {SENT_SCAN_LIMIT} sent messages and the "
                "gmail.metadata scope cannot search further back"
            )
        return None

    # -- receiving ------------------------------------------------------------------------

    def fetch_new(self, cursor: str | None) -> FetchResult:
        if cursor is None:
            return FetchResult(messages=[], cursor=str(self.profile()["historyId"]))
        added: dict[str, None] = {}            # ordered set of message ids
        latest = cursor
        page_token: str | None = None
        while True:
            params: dict[str, Any] = {
                "startHistoryId": cursor, "historyTypes": "messageAdded", "maxResults": 500,
            }
            if page_token:
                params["pageToken"] = page_token
            response = self._gmail(
                "GET", "history", what="Gmail history.list", params=params, allow=(404,)
            )
            if response.status_code == 404:
                return self._resync()
            page = json_body(response, "Gmail history.list")
            for record in page.get("history", []):
                for item in record.get("messagesAdded", []):
                    message = item.get("message", {})
                    if not _SKIPPED_LABELS & set(message.get("labelIds", [])):
                        added.setdefault(message["id"])
            latest = str(page.get("historyId", latest))
            page_token = page.get("nextPageToken")
            if not page_token:
                break
        return FetchResult(messages=self._inbound_messages(added), cursor=latest)

    def _resync(self) -> FetchResult:
        """history.list said 404: the stored historyId is too old. Read the recent inbox
        (bounded) and start again from the mailbox's current historyId. The engine skips
        messages it has already seen (provider_id is stable)."""
        cursor = str(self.profile()["historyId"])      # taken first: nothing slips between
        params: dict[str, Any] = {"labelIds": "INBOX", "maxResults": min(500, self.resync_limit)}
        if self.can_read_bodies:
            params["q"] = RESYNC_QUERY
        ids: dict[str, None] = {}
        while len(ids) < self.resync_limit:
            page = json_body(self._gmail(
                "GET", "messages", what="Gmail messages.list", params=params
            ), "Gmail messages.list")
            for item in page.get("messages", [])[: self.resync_limit - len(ids)]:
                ids.setdefault(item["id"])
            if not page.get("nextPageToken"):
                break
            params["pageToken"] = page["nextPageToken"]
        return FetchResult(messages=self._inbound_messages(ids), cursor=cursor)

    def _inbound_messages(self, ids: Iterable[str]) -> list[InboundMessage]:
        messages = []
        for gmail_id in ids:
            message = self._inbound(gmail_id)
            if message is not None:
                messages.append(message)
        return messages

    def _get_metadata(self, gmail_id: str, names: Iterable[str]) -> dict[str, Any] | None:
        response = self._gmail(
            "GET", f"messages/{gmail_id}", what="Gmail messages.get", allow=(404,),
            params={"format": "metadata", "metadataHeaders": list(names)},
        )
        return None if response.status_code == 404 else json_body(response, "Gmail messages.get")

    def _inbound(self, gmail_id: str) -> InboundMessage | None:
        meta = self._get_metadata(gmail_id, METADATA_HEADERS)
        if meta is None:                       # deleted since the history record
            return None
        if _SKIPPED_LABELS & set(meta.get("labelIds", [])):
            return None
        payload = meta.get("payload", {})
        raw = None
        if self.can_read_bodies and _needs_body(_headers_by_name(meta), payload.get("mimeType")):
            full = self._gmail(
                "GET", f"messages/{gmail_id}", what="Gmail messages.get", allow=(404,),
                params={"format": "raw"},
            )
            if full.ok:
                raw = _b64decode(json_body(full, "Gmail messages.get")["raw"])
        if raw is None:
            raw = _header_block(payload.get("headers", []), payload.get("mimeType"))
        received_at = None
        if meta.get("internalDate"):
            received_at = datetime.fromtimestamp(int(meta["internalDate"]) / 1000, UTC)
        return InboundMessage(
            provider_id=gmail_id, raw=raw, thread_id=meta.get("threadId"),
            received_at=received_at,
        )


def _headers_by_name(meta: dict[str, Any] | None) -> dict[str, str]:
    if not meta:
        return {}
    return {
        h.get("name", "").lower(): h.get("value", "")
        for h in meta.get("payload", {}).get("headers", [])
    }


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- connecting -------------------------------------------------------------------------------


class _PrintingFlow(InstalledAppFlow):
    """InstalledAppFlow that shows the authorization URL through our printer (with an SSH
    port-forwarding hint on a host without a browser) instead of print()."""

    printer: Callable[[str], Any] = print
    open_browser: bool = True

    def authorization_url(self, **kwargs: Any):
        url, state = super().authorization_url(**kwargs)
        port = self.redirect_uri.rstrip("/").rsplit(":", 1)[-1]
        if self.open_browser:
            self.printer(f"Opening your browser to authorize seqctl. If it does not open, "
                         f"visit this URL:\n\n    {url}\n")
        else:
            self.printer(
                f"Open this URL in a browser to authorize seqctl:\n\n    {url}\n\n"
                f"Google sends the browser back to http://localhost:{port}/ on this machine. "
                f"If the browser runs elsewhere, forward the port first:\n\n"
                f"    ssh -L {port}:localhost:{port} {socket.gethostname()}\n\n"
                f"Waiting for the authorization..."
            )
        return url, state


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SeqctlError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise SeqctlError(f"cannot read {what} {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise SeqctlError(f"{what} {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SeqctlError(f"{what} {path} must hold a JSON object")
    return data


def connect_gmail(
    client_secrets: Path,
    home: Path,
    *,
    open_browser: bool,
    calendar: bool = False,
    port: int = 0,
    printer: Callable[[str], Any] = print,
    timeout_seconds: float | None = None,
) -> tuple[str, Path]:
    """Run Google's installed-app flow (local redirect server), store the grant and return
    (address, token file). `timeout_seconds` bounds the wait for the browser's redirect."""
    config = _read_json(client_secrets, "the client secrets file")
    kind = next((k for k in ("installed", "web") if isinstance(config.get(k), dict)), None)
    if kind is None:
        raise SeqctlError(
            f"{client_secrets} is not an OAuth client secrets file (no \"installed\" section); "
            "download it from Google Cloud Console > APIs & Services > Credentials "
            "(OAuth client ID, type Desktop app)"
        )
    for field in ("client_id", "client_secret", "auth_uri"):
        if not config[kind].get(field):
            raise SeqctlError(f"{client_secrets}: missing field \"{field}\" in \"{kind}\"")
    config[kind]["token_uri"] = google_token_uri()
    flow = _PrintingFlow.from_client_config(config, scopes=gmail_scopes(calendar))
    flow.printer = printer
    flow.open_browser = open_browser
    try:
        credentials = flow.run_local_server(
            host="localhost", port=port, open_browser=open_browser,
            authorization_prompt_message="", timeout_seconds=timeout_seconds,
            access_type="offline", prompt="consent",
        )
    except SeqctlError:
        raise
    except Exception as exc:            # oauthlib/requests/timeouts: one clean line
        raise SeqctlError(f"Google authorization failed: {redact(exc)}") from None
    if not credentials.refresh_token:
        raise SeqctlError(
            "Google returned no refresh token; remove seqctl at "
            "https://myaccount.google.com/permissions and connect again"
        )
    session = requests.Session()
    try:
        response = http_request(
            session, "GET", f"{gmail_api_url()}/gmail/v1/users/me/profile",
            what="Gmail getProfile", headers={"Authorization": f"Bearer {credentials.token}"},
        )
    except ProviderError as exc:
        raise SeqctlError(f"could not read the Gmail address: {exc}") from exc
    if not response.ok:
        raise SeqctlError(f"could not read the Gmail address: {error_for_response(response, 'Gmail getProfile')}")
    address = response.json()["emailAddress"].lower()
    info = json.loads(credentials.to_json())
    info["type"] = "authorized_user"
    info["scopes"] = list(credentials.granted_scopes or credentials.scopes or gmail_scopes(calendar))
    path = token_path(home, "gmail", address)
    save_json_private(path, info)
    return address, path


_AUTHORIZED_USER_FIELDS = ("client_id", "client_secret", "refresh_token")
_TOKEN_FIELDS = (*_AUTHORIZED_USER_FIELDS, "token")
_BAD_TOKEN_CHARACTER = re.compile(r"[\s\x00-\x1f\x7f]")


def import_gmail_credentials(address: str, credentials: Path, home: Path) -> Path:
    """Store an authorized-user JSON made elsewhere (e.g. by `connect` on a laptop) as the
    token of ADDRESS. Checks the shape only: the first sync or send proves the grant."""
    info = _read_json(credentials, "the credentials file")
    if "installed" in info or "web" in info:
        raise SeqctlError(
            f"{credentials} is an OAuth client secrets file, not authorized-user credentials; "
            "use `seqctl inbox connect gmail --client-secrets FILE` instead"
        )
    if info.get("type", "authorized_user") != "authorized_user":
        raise SeqctlError(
            f"{credentials}: field \"type\" is \"{info.get('type')}\", expected \"authorized_user\""
        )
    for field in _AUTHORIZED_USER_FIELDS:
        value = info.get(field)
        if not isinstance(value, str) or not value.strip():
            raise SeqctlError(
                f"{credentials}: missing field \"{field}\" "
                f"(an authorized-user JSON needs {', '.join(_AUTHORIZED_USER_FIELDS)})"
            )
    for field in _TOKEN_FIELDS:
        value = info.get(field)
        if field == "token" and not value:
            continue
        if not isinstance(value, str):
            raise SeqctlError(f"{credentials}: field \"{field}\" must be a string")
        value = value.strip()           # a pasted token often ends in a newline
        if _BAD_TOKEN_CHARACTER.search(value):
            raise SeqctlError(
                f"{credentials}: field \"{field}\" contains whitespace or control characters "
                "inside the value; copy it again as one unbroken string"
            )
        info[field] = value
    scopes = info.get("scopes") or gmail_scopes()
    if isinstance(scopes, str):
        scopes = scopes.split()
    if GMAIL_SEND not in scopes:
        raise SeqctlError(f"{credentials}: field \"scopes\" lacks {GMAIL_SEND}; seqctl cannot send")
    stored = {
        "type": "authorized_user",
        "client_id": info["client_id"],
        "client_secret": info["client_secret"],
        "refresh_token": info["refresh_token"],
        "token_uri": info.get("token_uri") or "https://oauth2.googleapis.com/token",
        "scopes": list(scopes),
    }
    if info.get("token"):
        stored["token"] = info["token"]
        if info.get("expiry"):
            stored["expiry"] = info["expiry"]
    path = token_path(home, "gmail", address)
    save_json_private(path, stored)
    return path
