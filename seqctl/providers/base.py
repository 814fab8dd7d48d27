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
    """A provider call failed for a reason that is not transient or auth: the message's own
    problem (the email fails, its enrollment too, no automatic retry)."""


class TransientError(ProviderError):
    """429, 5xx, timeouts, refused connections: retry later (honour `retry_after` seconds)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class SenderLimitError(TransientError):
    """The inbox's own quota or rate limit (SMTP 550 5.4.5, Gmail dailyLimitExceeded, Graph
    429...): the whole inbox waits until `until` (a time the provider named), else
    `retry_after` seconds, else an hour for a rate limit and a day for a `daily` quota.
    No enrollment is touched. A TransientError, so readers (sync) simply try again later."""

    def __init__(self, message: str, *, retry_after: float | None = None,
                 until: datetime | None = None, daily: bool = False):
        super().__init__(message, retry_after=retry_after)
        self.until = until
        self.daily = daily


class RecipientError(ProviderError):
    """A refusal that concerns the recipients named in `recipients`, not the inbox."""

    def __init__(self, message: str, recipients: Iterable[str] = ()):
        super().__init__(message)
        self.recipients = tuple(recipients)


class RecipientRejectedError(RecipientError):
    """The address does not exist (SMTP 5.1.x at RCPT, an invalid-recipient answer): a hard
    bounce, never retried, the address is suppressed."""


class RecipientDeferredError(RecipientError):
    """A temporary refusal for this recipient only (450 4.2.2 mailbox full): only this email
    waits; after `max_send_attempts` it is a soft bounce."""


class MessageRejectedError(ProviderError):
    """A policy or content refusal of this message (5.7.x, too large): the email fails."""


class AuthRevokedError(ProviderError):
    """An authorization problem: the grant is gone (invalid_grant, revoked consent), or the
    login or its configuration fails (535, no AUTH offered, a failed TLS handshake). The inbox
    needs reconnecting or fixing; nothing more is tried on it."""


class UndecidableError(ProviderError):
    """The provider cannot tell whether a message was sent (reconcile found no answer)."""


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str
    thread_id: str | None
    message_id: str          # the final RFC 5322 Message-ID as the recipient sees it
    # recipients the server refused for good while the others got the message (SMTP 5.1.x
    # at RCPT for one of several): the engine bounces the contact when its address is here
    refused: tuple[str, ...] = ()


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
    # new messages the provider holds beyond this batch (a backlog): call again with `cursor`
    waiting: int = 0


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
