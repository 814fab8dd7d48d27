"""A fake of the Gmail API, Google's OAuth token endpoint (and its authorization page, which
redirects straight back as if the user had clicked Allow) and a sliver of Google Calendar.

Shaped after developers.google.com/gmail/api/reference/rest: messages.send/get/list,
users.getProfile, users.history.list with nextPageToken paging, error bodies
`{"error": {"code", "message", "errors": [...], "status"}}`.
"""

from __future__ import annotations

import base64
import itertools
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from typing import Any
from urllib.parse import unquote, urlencode

from fakes import FakeServer, Request, Response, json_response

SCOPE_SEND = "https://www.googleapis.com/auth/gmail.send"
SCOPE_READONLY = "https://www.googleapis.com/auth/gmail.readonly"
SCOPE_METADATA = "https://www.googleapis.com/auth/gmail.metadata"

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
    404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE",
}


@dataclass
class StoredMessage:
    id: str
    thread_id: str
    labels: list[str]
    raw: bytes
    internal_date: int                       # ms since the epoch
    history_id: int
    headers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


class GmailServer(FakeServer):
    api_pattern = r"^/gmail/v1/"

    def __init__(self, *, address: str = "rep@example.com", client_id: str = "client-id",
                 client_secret: str = "client-secret", page_size: int = 100, **kwargs: Any):
        super().__init__(**kwargs)
        self.address = address
        self.client_id = client_id
        self.client_secret = client_secret
        self.page_size = page_size
        self._ids = itertools.count(0x18c0000000000001)
        self._tokens = itertools.count(1)
        self.history_id = 1000
        self.oldest_history_id = 0                # history.list below this → 404
        self.messages: dict[str, StoredMessage] = {}
        self.history: list[tuple[int, str]] = []   # (history id, message id) for messageAdded
        self.deliveries: Counter[str] = Counter()  # Message-ID → times sent
        self.refresh_tokens: dict[str, list[str]] = {"refresh-1": [SCOPE_SEND, SCOPE_READONLY]}
        self.access_tokens: dict[str, list[str]] = {}
        self.codes: dict[str, list[str]] = {}
        self.events: list[dict[str, Any]] = []     # Google Calendar events on "primary"

    # -- scripting ------------------------------------------------------------------------

    def issue_access_token(self, scopes: list[str] | None = None) -> str:
        token = f"ya29.fake-{next(self._tokens)}"
        self.access_tokens[token] = scopes or [SCOPE_SEND, SCOPE_READONLY]
        return token

    def expire_tokens(self) -> None:
        """Every access token issued so far stops working (as after an hour)."""
        with self.lock:
            self.access_tokens.clear()

    def revoke(self) -> None:
        """The user removed the app's access: refresh answers invalid_grant, tokens die."""
        with self.lock:
            self.refresh_tokens.clear()
            self.access_tokens.clear()

    def expire_history(self) -> None:
        """history.list from any earlier historyId answers 404 (history is too old)."""
        with self.lock:
            self.oldest_history_id = self.history_id

    def deliver(self, raw: bytes, *, labels: tuple[str, ...] = ("INBOX", "UNREAD"),
                thread_id: str | None = None, received_at: float | None = None) -> str:
        """An incoming message lands in the mailbox (and in history). Returns its id."""
        with self.lock:
            return self._store(raw, list(labels), thread_id, received_at).id

    def sent_raw(self) -> list[bytes]:
        return [m.raw for m in self.messages.values() if "SENT" in m.labels]

    # -- internals ------------------------------------------------------------------------

    def _store(self, raw: bytes, labels: list[str], thread_id: str | None,
               received_at: float | None = None) -> StoredMessage:
        message_id = format(next(self._ids), "x")
        self.history_id += 1
        headers = list(BytesHeaderParser().parsebytes(raw).items())
        message = StoredMessage(
            id=message_id, thread_id=thread_id or message_id, labels=labels, raw=raw,
            internal_date=int((received_at or time.time()) * 1000),
            history_id=self.history_id, headers=headers,
        )
        if message.header("Message-ID") is None:       # Gmail adds one when missing
            generated = f"<{message_id}@mail.gmail.com>"
            message.raw = f"Message-ID: {generated}\r\n".encode() + raw
            message.headers.append(("Message-ID", generated))
        self.messages[message_id] = message
        self.history.append((self.history_id, message_id))
        return message

    def error(self, status: int, message: str, reason: str | None = None) -> Response:
        body = {
            "error": {
                "code": status,
                "message": message,
                "errors": [{"message": message, "domain": "global",
                            "reason": reason or _STATUS_NAMES.get(status, "error").lower()}],
                "status": _STATUS_NAMES.get(status, "UNKNOWN"),
            }
        }
        return json_response(status, body)

    def _oauth_error(self, error: str, description: str, status: int = 400) -> Response:
        return json_response(status, {"error": error, "error_description": description})

    # -- routing --------------------------------------------------------------------------

    def route(self, request: Request) -> Response | None:
        if request.path == "/token" and request.method == "POST":
            return self._token(request)
        if request.path == "/o/oauth2/auth" and request.method == "GET":
            return self._authorize(request)
        scopes = self.access_tokens.get(request.bearer or "")
        if scopes is None:
            return self.error(401, "Request had invalid authentication credentials. Expected "
                                   "OAuth 2 access token, login cookie or other valid "
                                   "authentication credential.")
        if request.path.startswith("/calendar/v3/"):
            return self._calendar(request)
        match = re.fullmatch(r"/gmail/v1/users/me/(.+)", request.path)
        if not match:
            return None
        path = match.group(1)
        can_read = SCOPE_READONLY in scopes
        if path == "profile" and request.method == "GET":
            return json_response(200, {
                "emailAddress": self.address, "messagesTotal": len(self.messages),
                "threadsTotal": len({m.thread_id for m in self.messages.values()}),
                "historyId": str(self.history_id),
            })
        if path == "messages/send" and request.method == "POST":
            return self._send(request)
        if path == "messages" and request.method == "GET":
            if request.arg("q") and not can_read:
                return self.error(403, "Metadata scope does not support 'q' parameter",
                                  "forbidden")
            return self._list(request)
        if path.startswith("messages/") and request.method == "GET":
            return self._get(request, path.split("/", 1)[1], can_read)
        if path == "history" and request.method == "GET":
            return self._history(request)
        return None

    def _token(self, request: Request) -> Response:
        form = request.form()
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):          # client_secret_basic (RFC 6749 2.3.1)
            user, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            form.setdefault("client_id", unquote(user))
            form.setdefault("client_secret", unquote(secret))
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return self._oauth_error("invalid_client", "The OAuth client was not found.", 401)
        grant = form.get("grant_type")
        if grant == "refresh_token":
            scopes = self.refresh_tokens.get(form.get("refresh_token", ""))
            if scopes is None:
                return self._oauth_error("invalid_grant", "Token has been expired or revoked.")
            return json_response(200, {
                "access_token": self.issue_access_token(scopes), "expires_in": 3599,
                "scope": " ".join(scopes), "token_type": "Bearer",
            })
        if grant == "authorization_code":
            scopes = self.codes.pop(form.get("code", ""), None)
            if scopes is None:
                return self._oauth_error("invalid_grant", "Malformed auth code.")
            refresh = f"refresh-{next(self._tokens)}"
            self.refresh_tokens[refresh] = scopes
            return json_response(200, {
                "access_token": self.issue_access_token(scopes), "expires_in": 3599,
                "refresh_token": refresh, "scope": " ".join(scopes), "token_type": "Bearer",
            })
        return self._oauth_error("unsupported_grant_type", f"Invalid grant_type: {grant}")

    def _authorize(self, request: Request) -> Response:
        """The consent page, already consented: 302 back to redirect_uri with a code."""
        if request.arg("client_id") != self.client_id:
            return Response(400, b"Error 401: invalid_client")
        scopes = (request.arg("scope") or "").split()
        code = f"4/fake-code-{next(self._tokens)}"
        self.codes[code] = scopes
        location = request.arg("redirect_uri", "") + "?" + urlencode(
            {"state": request.arg("state", ""), "code": code, "scope": " ".join(scopes)}
        )
        return Response(302, b"", {"Location": location})

    def _send(self, request: Request) -> Response:
        body = request.json() or {}
        try:
            raw = base64.urlsafe_b64decode(body["raw"] + "=" * (-len(body["raw"]) % 4))
        except (KeyError, ValueError, TypeError):
            return self.error(400, "Invalid value for ByteString")
        thread_id = body.get("threadId")
        if thread_id and not any(m.thread_id == thread_id for m in self.messages.values()):
            return self.error(404, "Requested entity was not found.")
        message = self._store(raw, ["SENT"], thread_id)
        self.deliveries[message.header("Message-ID") or ""] += 1
        return json_response(200, {"id": message.id, "threadId": message.thread_id,
                                   "labelIds": message.labels})

    def _matches(self, message: StoredMessage, request: Request) -> bool:
        labels = request.query.get("labelIds", [])
        if any(label not in message.labels for label in labels):
            return False
        for term in (request.arg("q") or "").split():
            key, _, value = term.partition(":")
            if key == "rfc822msgid":
                if (message.header("Message-ID") or "").strip("<>") != value.strip("<>"):
                    return False
            elif key == "in":
                if value.upper() not in message.labels:
                    return False
            elif key == "newer_than":
                days = int(value.rstrip("d"))
                if message.internal_date < (time.time() - days * 86400) * 1000:
                    return False
        return True

    def _page(self, items: list[Any], request: Request) -> tuple[list[Any], str | None]:
        size = min(int(request.arg("maxResults") or 100), self.page_size)
        start = int(request.arg("pageToken") or 0)
        chunk = items[start:start + size]
        return chunk, (str(start + size) if start + size < len(items) else None)

    def _list(self, request: Request) -> Response:
        found = [m for m in reversed(self.messages.values()) if self._matches(m, request)]
        chunk, token = self._page(found, request)
        body: dict[str, Any] = {"resultSizeEstimate": len(found)}
        if chunk:
            body["messages"] = [{"id": m.id, "threadId": m.thread_id} for m in chunk]
        if token:
            body["nextPageToken"] = token
        return json_response(200, body)

    def _get(self, request: Request, message_id: str, can_read: bool) -> Response:
        message = self.messages.get(message_id)
        if message is None:
            return self.error(404, "Requested entity was not found.")
        fmt = request.arg("format", "full")
        body: dict[str, Any] = {
            "id": message.id, "threadId": message.thread_id, "labelIds": message.labels,
            "snippet": "", "historyId": str(message.history_id),
            "internalDate": str(message.internal_date), "sizeEstimate": len(message.raw),
        }
        if fmt == "raw":
            if not can_read:
                return self.error(403, "Metadata scope doesn't allow format RAW", "forbidden")
            body["raw"] = _b64url(message.raw)
            return json_response(200, body)
        wanted = {h.lower() for h in request.query.get("metadataHeaders", [])}
        headers = [{"name": k, "value": v} for k, v in message.headers
                   if not wanted or k.lower() in wanted]
        content_type = message.header("Content-Type") or "text/plain"
        body["payload"] = {"partId": "", "mimeType": content_type.split(";")[0].strip(),
                           "filename": "", "headers": headers}
        return json_response(200, body)

    def _history(self, request: Request) -> Response:
        try:
            start = int(request.arg("startHistoryId") or "")
        except ValueError:
            return self.error(400, "Invalid startHistoryId")
        if start < self.oldest_history_id:
            return self.error(404, "Requested entity was not found.")
        records = [
            {"id": str(hid), "messages": [{"id": mid, "threadId": self.messages[mid].thread_id}],
             "messagesAdded": [{"message": {"id": mid, "threadId": self.messages[mid].thread_id,
                                            "labelIds": self.messages[mid].labels}}]}
            for hid, mid in self.history if hid > start
        ]
        chunk, token = self._page(records, request)
        body: dict[str, Any] = {"historyId": str(self.history_id)}
        if chunk:
            body["history"] = chunk
        if token:
            body["nextPageToken"] = token
        return json_response(200, body)

    def _calendar(self, request: Request) -> Response | None:
        if request.path != "/calendar/v3/calendars/primary/events":
            return None
        query = (request.arg("q") or "").lower()
        items = [e for e in self.events if query in str(e).lower()]
        return json_response(200, {"kind": "calendar#events", "items": items})
