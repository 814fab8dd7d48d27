"""A fake of the Microsoft Graph mail endpoints seqctl uses (base path /v1.0):

- POST /me/sendMail with `Content-Type: text/plain` and a base64 MIME body → 202
- GET  /me/mailFolders/sentitems/messages?$filter=internetMessageId eq '<...>'
- GET  /me/messages?$filter=internetMessageId eq '<...>' (every folder: Outbox, Sent Items,
  Inbox)
- GET  /me/mailFolders/inbox/messages/delta (changeType, $filter receivedDateTime ge,
  Prefer: odata.maxpagesize, @odata.nextLink / @odata.deltaLink, 410 when expired)
- GET  /me/messages/{id}/$value, GET /me, GET /me/calendarView

Access tokens are checked against the fake identity server when one is given. Errors look
like Graph's: `{"error": {"code": "...", "message": "..."}}`.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from typing import Any
from urllib.parse import urlencode

from fakes import FakeServer, Request, Response, json_response
from fakes.ms_identity import MSIdentityServer

_CODES = {400: "BadRequest", 401: "InvalidAuthenticationToken", 404: "ErrorItemNotFound",
          410: "SyncStateNotFound", 429: "ApplicationThrottled", 503: "ServiceUnavailable",
          504: "GatewayTimeout", 500: "InternalServerError"}


@dataclass
class GraphMessage:
    id: str
    conversation_id: str
    internet_message_id: str
    received: datetime
    raw: bytes
    sequence: int
    subject: str = ""
    sender: str = ""

    def resource(self) -> dict[str, Any]:
        return {
            "id": self.id, "conversationId": self.conversation_id,
            "internetMessageId": self.internet_message_id,
            "receivedDateTime": self.received.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "subject": self.subject,
            "from": {"emailAddress": {"address": self.sender}},
        }


class GraphServer(FakeServer):
    api_pattern = r"^/v1\.0/"

    def __init__(self, *, identity: MSIdentityServer | None = None,
                 address: str = "rep@contoso.com", page_size: int = 10,
                 sent_item_delay: int = 0, **kwargs: Any):
        super().__init__(**kwargs)
        self.identity = identity
        self.address = address
        self.page_size = page_size
        self.sent_item_delay = sent_item_delay    # lookups that miss before the copy appears
        # sendMail is asynchronous: with hold_in_outbox, sent messages wait in `outbox`
        # (found by /me/messages, not by the Sent Items folder) until release_outbox().
        self.hold_in_outbox = False
        self.outbox: list[GraphMessage] = []
        # Base of the @odata links handed out (default: this server); a test can point it
        # at another host to see whether the client follows it.
        self.link_base: str | None = None
        self._ids = itertools.count(1)
        self._sequence = itertools.count(1)
        self.inbox: list[GraphMessage] = []
        self.sent: list[GraphMessage] = []
        self.deliveries: Counter[str] = Counter()
        self.sent_mime: list[bytes] = []
        self.delta_tokens: dict[str, int] = {}    # delta token → last sequence seen
        self.skip_tokens: dict[str, tuple[list[str], int]] = {}
        self.events: list[dict[str, Any]] = []

    # -- scripting ------------------------------------------------------------------------

    def deliver(self, raw: bytes, *, received_at: datetime | None = None) -> str:
        with self.lock:
            return self._store(raw, self.inbox, received_at).id

    def release_outbox(self) -> None:
        """Exchange got round to it: the Outbox messages move to Sent Items."""
        with self.lock:
            self.sent.extend(self.outbox)
            self.outbox.clear()

    def expire_delta(self) -> None:
        """Every deltaLink handed out so far answers 410 Gone."""
        with self.lock:
            self.delta_tokens.clear()

    # -- internals ------------------------------------------------------------------------

    def _store(self, raw: bytes, folder: list[GraphMessage],
               received_at: datetime | None = None) -> GraphMessage:
        headers = BytesHeaderParser().parsebytes(raw)
        message_id = headers.get("Message-ID") or f"<fake-{next(self._ids)}@outlook.example>"
        reply_to = (headers.get("In-Reply-To") or "").strip()
        known = next((m for m in self.sent + self.outbox + self.inbox
                      if m.internet_message_id == reply_to),
                     None)
        number = next(self._ids)
        message = GraphMessage(
            id=f"AAMkAD{number:06d}=", internet_message_id=message_id.strip(),
            conversation_id=known.conversation_id if known else f"AAQkConv{number:06d}=",
            received=received_at or datetime.now(UTC), raw=raw,
            sequence=next(self._sequence), subject=headers.get("Subject", ""),
            sender=headers.get("From", ""),
        )
        folder.append(message)
        return message

    def error(self, status: int, message: str) -> Response:
        return json_response(status, {"error": {"code": _CODES.get(status, "Error"),
                                                "message": message}})

    # -- routing --------------------------------------------------------------------------

    def route(self, request: Request) -> Response | None:
        if not request.path.startswith("/v1.0/"):
            return None
        token = request.bearer
        valid = self.identity.is_valid(token) if self.identity else bool(token)
        if not valid:
            return self.error(401, "Lifetime validation failed, the token is expired.")
        path = request.path[len("/v1.0"):]
        if path == "/me":
            return json_response(200, {"mail": self.address, "userPrincipalName": self.address,
                                       "displayName": "Rep"})
        if path == "/me/sendMail" and request.method == "POST":
            return self._send(request)
        if path == "/me/mailFolders/sentitems/messages":
            return self._sentitems(request)
        if path == "/me/messages":
            return self._all_messages(request)
        if path == "/me/mailFolders/inbox/messages/delta":
            return self._delta(request)
        match = re.fullmatch(r"/me/messages/([^/]+)/\$value", path)
        if match:
            found = next((m for m in self.inbox + self.sent + self.outbox
                          if m.id == match.group(1)), None)
            if found is None:
                return self.error(404, "The specified object was not found in the store.")
            return Response(200, found.raw, {"Content-Type": "text/plain"})
        if path == "/me/calendarView":
            return json_response(200, {"value": self.events})
        return None

    def _send(self, request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("text/plain"):
            return self.error(400, "Content-Type must be text/plain for MIME content")
        try:
            raw = base64.b64decode(request.body, validate=True)
        except (binascii.Error, ValueError):
            return self.error(400, "Invalid base64 string for MIME content.")
        message = self._store(raw, self.outbox if self.hold_in_outbox else self.sent)
        self.sent_mime.append(raw)
        self.deliveries[message.internet_message_id] += 1
        return Response(202, b"")

    def _sentitems(self, request: Request) -> Response:
        wanted = re.fullmatch(r"internetMessageId eq '(.*)'", request.arg("$filter") or "")
        if not wanted:
            return self.error(400, "Invalid filter clause")
        if self.sent_item_delay > 0:
            self.sent_item_delay -= 1
            return json_response(200, {"value": []})
        target = wanted.group(1).replace("''", "'")
        found = [m for m in self.sent if m.internet_message_id == target]
        return json_response(200, {"value": [
            {"id": m.id, "conversationId": m.conversation_id,
             "internetMessageId": m.internet_message_id} for m in found
        ]})

    def _all_messages(self, request: Request) -> Response:
        wanted = re.fullmatch(r"internetMessageId eq '(.*)'", request.arg("$filter") or "")
        if not wanted:
            return self.error(400, "Invalid filter clause")
        target = wanted.group(1).replace("''", "'")
        found = [m for m in self.outbox + self.sent + self.inbox
                 if m.internet_message_id == target]
        return json_response(200, {"value": [
            {"id": m.id, "conversationId": m.conversation_id,
             "internetMessageId": m.internet_message_id} for m in found
        ]})

    def _delta_url(self, **params: str) -> str:
        base = self.link_base or f"{self.url}/v1.0"
        return f"{base}/me/mailFolders/inbox/messages/delta?{urlencode(params)}"

    def _delta(self, request: Request) -> Response:
        prefer = request.headers.get("prefer", "")
        size_match = re.search(r"odata\.maxpagesize=(\d+)", prefer)
        size = min(int(size_match.group(1)), self.page_size) if size_match else self.page_size
        current = max((m.sequence for m in self.inbox), default=0)
        skip = request.arg("$skiptoken")
        delta = request.arg("$deltatoken")
        if skip is not None:
            if skip not in self.skip_tokens:
                return self.error(410, "The sync state is invalid.")
            ids, current = self.skip_tokens.pop(skip)
        elif delta is not None:
            if delta not in self.delta_tokens:
                return json_response(410, {"error": {
                    "code": "SyncStateNotFound",
                    "message": "The sync state generation is not found."}})
            last = self.delta_tokens[delta]
            ids = [m.id for m in self.inbox if m.sequence > last]
        else:
            since = None
            match = re.fullmatch(r"receivedDateTime ge (\S+)", request.arg("$filter") or "")
            if match:
                since = datetime.fromisoformat(match.group(1).replace("Z", "+00:00"))
            ids = [m.id for m in self.inbox if since is None or m.received >= since]
        chunk, rest = ids[:size], ids[size:]
        by_id = {m.id: m for m in self.inbox}
        body: dict[str, Any] = {"value": [by_id[i].resource() for i in chunk if i in by_id]}
        if rest:
            token = f"skip-{next(self._ids)}"
            self.skip_tokens[token] = (rest, current)
            body["@odata.nextLink"] = self._delta_url(**{"$skiptoken": token})
        else:
            token = f"delta-{next(self._ids)}"
            self.delta_tokens[token] = current
            body["@odata.deltaLink"] = self._delta_url(**{"$deltatoken": token})
        return json_response(200, body)
