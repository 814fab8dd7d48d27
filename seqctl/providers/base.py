"""The one interface every inbox kind implements.

A provider sends a finished MIME message and fetches new incoming messages since a cursor.
It knows nothing about sequences or enrollments; the engine decides, the provider talks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol


class ProviderError(Exception):
    """A provider call failed for a reason that is not transient or auth."""


class TransientError(ProviderError):
    """429, 5xx, timeouts, refused connections: retry later (honour `retry_after` seconds)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class AuthRevokedError(ProviderError):
    """The grant is gone (invalid_grant, revoked consent): the inbox needs reconnecting."""


class UndecidableError(ProviderError):
    """The provider cannot tell whether a message was sent (reconcile found no answer)."""


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str
    thread_id: str | None
    message_id: str          # the final RFC 5322 Message-ID as the recipient sees it


@dataclass(frozen=True)
class InboundMessage:
    provider_id: str         # stable id within the inbox (file name, Gmail id, IMAP UID...)
    raw: bytes               # the RFC 5322 message (headers at least; body when available)
    thread_id: str | None = None
    received_at: datetime | None = None


@dataclass(frozen=True)
class FetchResult:
    messages: list[InboundMessage]
    cursor: str | None       # store it; pass it back next time


@dataclass
class InboxInfo:
    """What a provider needs to know about its inbox (a row of `inboxes`, decoded)."""

    id: int
    address: str
    kind: str
    config: dict[str, Any] = field(default_factory=dict)
    home: Path = Path(".")   # $SEQCTL_HOME: token files live in home / "tokens"


class Provider(Protocol):
    kind: str
    # Seconds after a send during which `find_sent` may answer None for a message that was
    # in fact sent (a search index that lags, an asynchronous send still in the Outbox).
    # Reconciliation must not trust "not found" for a claim younger than this.
    sent_lookup_lag: float

    def send(
        self,
        raw: bytes,
        *,
        message_id: str,
        thread_id: str | None = None,
        bcc: Iterable[str] = (),
    ) -> SendResult:
        """Send the message exactly as given, also to the `bcc` addresses (which are not in
        `raw`: Bcc never appears in the bytes sent). Raises TransientError / AuthRevokedError /
        ProviderError; UndecidableError when the outcome is unknown (connection lost after the
        message data was sent)."""
        ...

    def find_sent(self, message_id: str) -> SendResult | None:
        """Look the Message-ID up in the sent mail: the result if it was sent, None if it
        certainly was not (once `sent_lookup_lag` seconds have passed since the send).
        Raises UndecidableError when the provider cannot tell."""
        ...

    def fetch_new(self, cursor: str | None) -> FetchResult:
        """Incoming messages since `cursor` (None: start from now, fetching nothing old)."""
        ...
