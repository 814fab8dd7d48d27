"""The IMAP half of an SMTP + IMAP inbox: the pending Sent copy that makes a send
reconcilable, `find_sent`, and reading new mail from INBOX by UID (see `seqctl.providers.smtp`).
"""

from __future__ import annotations

import imaplib
import re
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from typing import Any

from seqctl import clock
from seqctl.providers.base import (
    AuthRevokedError,
    FetchResult,
    InboundMessage,
    ProviderError,
    SendResult,
    TransientError,
    UndecidableError,
)
from seqctl.providers.mail_account import MailAccount
from seqctl.providers.mail_account import log as _log

PENDING_KEYWORD = "$SeqctlSending"
RESYNC_LIMIT = 200          # messages fetched when UIDVALIDITY changed
FETCH_BATCH = 1000          # messages fetched per call; `waiting` says how many remain
IDLE_PROBE = 5.0            # a kept session idle this long gets a NOOP before it is reused
SENT_NAMES = ("sent", "sent items", "sent messages", "sent mail", "inbox.sent", "[gmail]/sent mail")


def _imap_quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


_LIST_LINE = re.compile(rb'^\((?P<flags>[^)]*)\) (?:"(?:[^"\\]|\\.)*"|NIL) (?P<name>.+)$')


def _parse_list_line(line: bytes) -> tuple[set[str], str] | None:
    match = _LIST_LINE.match(line)
    if not match:
        return None
    flags = {flag.lower() for flag in match["flags"].decode().split()}
    name = match["name"].strip()
    if name.startswith(b'"') and name.endswith(b'"'):
        name = re.sub(rb"\\(.)", rb"\1", name[1:-1])
    return flags, name.decode("utf-8", "replace")


@dataclass(frozen=True)
class _PendingCopy:
    folder: str
    message_id: str
    uid: int | None         # from APPENDUID; None when the server lacks UIDPLUS


def _fetch_items(data: list[Any]) -> Iterator[tuple[bytes, bytes]]:
    """(metadata, literal) pairs of a FETCH response; metadata includes items after the literal."""
    for index, item in enumerate(data):
        if not isinstance(item, tuple):
            continue
        meta = item[0]
        following = data[index + 1] if index + 1 < len(data) else b""
        if isinstance(following, bytes):
            meta += following
        yield meta, item[1]



def _alive(imap: imaplib.IMAP4) -> bool:
    try:
        return imap.noop()[0] == "OK"
    except Exception:
        return False


class ImapMailbox(MailAccount):
    """The IMAP operations of an SMTP + IMAP inbox.

    The sent copies of one dispatch batch share one IMAP session (`keep=True`): it stays
    logged in, with the Sent folder looked up and selected once, until `close()` or an error
    (the next send then logs in again). Sync and `find_sent` use a session of their own.
    """

    _session: imaplib.IMAP4 | None = None
    _session_used_at = 0.0
    _selected: str | None = None          # the folder selected in the kept session
    _sent_folder_name: str | None = None  # found once per provider

    @contextmanager
    def _imap(self, *, keep: bool = False) -> Iterator[imaplib.IMAP4]:
        """A logged-in IMAP connection. Raises TransientError / AuthRevokedError / ProviderError.
        With `keep`, the provider's open session is used (and kept open afterwards) when it
        has one, and a new one is kept for the next call."""
        imap = None
        if keep and self._session is not None:
            imap, self._session = self._session, None
            idle = time.monotonic() - self._session_used_at > IDLE_PROBE
            if idle and not _alive(imap):           # the server may have closed it meanwhile
                with suppress(Exception):
                    imap.logout()
                imap = None
        if imap is None:
            if keep:
                self._selected = None
            imap = self._imap_connect()
        kept = False
        try:
            with self._imap_errors():
                yield imap
            kept = keep
        finally:
            if kept:
                self._session, self._session_used_at = imap, time.monotonic()
            else:
                if keep:
                    self._selected = None
                with suppress(Exception):
                    imap.logout()

    def close(self) -> None:
        """Log out of the kept IMAP session (the end of a dispatch batch)."""
        imap, self._session, self._selected = self._session, None, None
        if imap is not None:
            with suppress(Exception):
                imap.logout()

    def _imap_connect(self) -> imaplib.IMAP4:
        """Connect, STARTTLS when configured, and log in."""
        if not self.imap_host:
            raise ProviderError(f"inbox {self.inbox.address} has no IMAP server configured")
        password = None
        if self.auth == "password":
            password = self._password()
            if password is None:
                raise ProviderError(
                    f"inbox {self.inbox.address}: IMAP needs password_env to log in"
                )
        self._check_ascii_credentials("IMAP")       # before any I/O
        try:
            if self.imap_security == "ssl":
                imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    self.imap_host, self.imap_port, ssl_context=self._ssl_context(),
                    timeout=self.timeout,
                )
            else:
                imap = imaplib.IMAP4(self.imap_host, self.imap_port, timeout=self.timeout)
        except ssl.SSLError as error:
            raise ProviderError(
                f"TLS with {self.imap_host}:{self.imap_port} failed: {self._scrub(error)}"
            ) from error
        except OSError as error:
            raise TransientError(
                f"cannot reach {self.imap_host}:{self.imap_port}: {self._scrub(error)}"
            ) from error
        try:
            with self._imap_errors():
                if self.imap_security == "starttls":
                    imap.starttls(ssl_context=self._ssl_context())
                try:
                    if self.auth == "xoauth2":
                        token = self._xoauth2().encode()
                        imap.authenticate("XOAUTH2", lambda _challenge: token)
                    else:
                        assert password is not None
                        imap.login(self.username, password)
                except imaplib.IMAP4.error as error:
                    if isinstance(error, imaplib.IMAP4.abort):
                        raise
                    raise AuthRevokedError(
                        f"{self.imap_host} rejected the IMAP login for {self.username} "
                        f"({self._scrub(error)}): check {self._credential_name()}"
                    ) from None
                except UnicodeEncodeError:
                    raise self._non_ascii_error("IMAP") from None
        except BaseException:
            with suppress(Exception):
                imap.logout()
            raise
        return imap

    @contextmanager
    def _imap_errors(self) -> Iterator[None]:
        """IMAP and network failures as provider errors (their text scrubbed of secrets)."""
        try:
            yield
        except imaplib.IMAP4.abort as error:
            raise TransientError(
                f"IMAP connection to {self.imap_host} lost: {self._scrub(error)}"
            ) from None
        except ssl.SSLError as error:
            raise ProviderError(
                f"TLS with {self.imap_host}:{self.imap_port} failed: {self._scrub(error)}"
            ) from None
        except OSError as error:
            raise TransientError(
                f"IMAP connection to {self.imap_host} failed: {self._scrub(error)}"
            ) from None
        except imaplib.IMAP4.error as error:
            raise ProviderError(
                f"IMAP error from {self.imap_host}: {self._scrub(error)}"
            ) from None
        except UnicodeEncodeError:
            raise self._non_ascii_error("IMAP") from None

    @staticmethod
    def _check(result: tuple[str, list[Any]], what: str) -> list[Any]:
        status, data = result
        if status != "OK":
            detail = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
            raise imaplib.IMAP4.error(f"{what} failed: {detail}")
        return data

    def _sent_folder(self, imap: imaplib.IMAP4, *, create: bool) -> str | None:
        """The configured folder, else the \\Sent special-use one, else a usual name; created
        as "Sent" when missing and `create` is true."""
        configured = self.config.get("sent_folder")
        if configured:
            return configured
        by_name: dict[str, str] = {}
        for line in self._check(imap.list(), "LIST"):
            if not isinstance(line, bytes):
                continue
            parsed = _parse_list_line(line)
            if parsed is None:
                continue
            flags, name = parsed
            if "\\sent" in flags:
                return name
            if "\\noselect" not in flags and "\\nonexistent" not in flags:
                by_name[name.lower()] = name
        for candidate in SENT_NAMES:
            if candidate in by_name:
                return by_name[candidate]
        if not create:
            return None
        status, data = imap.create("Sent")
        if status != "OK" and b"exist" not in b" ".join(d for d in data if isinstance(d, bytes)).lower():
            raise imaplib.IMAP4.error(f"CREATE Sent failed: {data}")
        with suppress(Exception):
            imap.subscribe("Sent")
        return "Sent"

    def _append_pending(self, raw: bytes, message_id: str) -> _PendingCopy | None:
        """Append the copy flagged as pending, before anything is sent. None when IMAP is not
        used (no IMAP server, or append_sent false). When the copy cannot be stored the
        message is not sent: TransientError (retry later) for a network failure,
        AuthRevokedError for a refused login, ProviderError when the server refuses it."""
        if not self.imap_host or not self.append_sent:
            return None
        reason = "nothing was sent, so that a crash cannot make it look unsent and go out twice"
        try:
            with self._imap(keep=True) as imap:
                folder = self._sent_folder_name or self._sent_folder(imap, create=True)
                assert folder is not None
                self._sent_folder_name = folder
                status, data = imap.append(
                    _imap_quote(folder), f"(\\Seen {PENDING_KEYWORD})",
                    imaplib.Time2Internaldate(clock.now()), raw,
                )
                if status != "OK":
                    detail = b" ".join(d for d in data if isinstance(d, bytes))
                    raise ProviderError(
                        f"{self.imap_host} refused to store the sent copy in {folder} "
                        f"({self._scrub(detail.decode('utf-8', 'replace'))}); {reason}; if "
                        "the server files sent mail by itself, set append_sent to false"
                    )
                match = re.search(rb"APPENDUID (\d+) (\d+)", b" ".join(d for d in data if d))
                uid = int(match[2]) if match else None
                return _PendingCopy(folder, message_id, uid)
        except TransientError as error:
            raise TransientError(
                f"could not store the sent copy for {self.inbox.address} in IMAP ({error}); "
                f"{reason}", retry_after=error.retry_after,
            ) from None
        except AuthRevokedError:
            raise
        except ProviderError as error:
            if reason in str(error):
                raise
            raise ProviderError(
                f"could not store the sent copy for {self.inbox.address} in IMAP ({error}); "
                f"{reason}"
            ) from None

    def _finish_pending(self, copy: _PendingCopy, *, sent: bool) -> None:
        """Clear the pending flag (sent) or delete the copy (refused). A failure leaves the
        copy flagged, which only makes a later reconcile answer "cannot tell"."""
        try:
            with self._imap(keep=True) as imap:
                if self._selected != copy.folder:
                    self._selected = None
                    self._check(imap.select(_imap_quote(copy.folder)), "SELECT")
                    self._selected = copy.folder
                if copy.uid is not None:
                    uids = [str(copy.uid)]
                else:
                    data = self._check(
                        imap.uid("SEARCH", "KEYWORD", PENDING_KEYWORD, "HEADER", "Message-ID",
                                 _imap_quote(copy.message_id)),
                        "SEARCH",
                    )
                    uids = [uid.decode() for uid in b" ".join(d for d in data if d).split()]
                if not uids:
                    return
                uid_set = ",".join(uids)
                if sent:
                    self._check(
                        imap.uid("STORE", uid_set, "-FLAGS.SILENT", f"({PENDING_KEYWORD})"), "STORE"
                    )
                    return
                self._check(imap.uid("STORE", uid_set, "+FLAGS.SILENT", "(\\Deleted)"), "STORE")
                status, _ = imap.uid("EXPUNGE", uid_set)
                if status != "OK":
                    imap.expunge()
        except ProviderError as error:      # already scrubbed by _imap
            what = "finish the sent copy in" if sent else "remove the unsent copy from"
            _log(f"could not {what} {copy.folder} for {self.inbox.address}: {error}")

    def find_sent(self, message_id: str) -> SendResult | None:
        """Search the Sent folder by Message-ID. A copy still flagged pending (a crash between
        the SMTP transaction and its confirmation) cannot be decided."""
        if not self.imap_host:
            raise UndecidableError(
                f"inbox {self.inbox.address} has no IMAP server: cannot look in its Sent folder"
            )
        try:
            with self._imap() as imap:
                folder = self._sent_folder(imap, create=False)
                if folder is None:
                    return self._not_found(message_id)
                self._check(imap.select(_imap_quote(folder), readonly=True), "SELECT")
                data = self._check(
                    imap.uid("SEARCH", "HEADER", "Message-ID", _imap_quote(message_id)), "SEARCH"
                )
                uids = b" ".join(d for d in data if d).split()
                if not uids:
                    return self._not_found(message_id)
                data = self._check(
                    imap.uid("FETCH", b",".join(uids).decode(),
                             "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"),
                    "FETCH",
                )
        except ProviderError as error:
            raise UndecidableError(f"cannot search the Sent folder: {error}") from error
        clean = pending = False
        for meta, header in _fetch_items(data):
            found = BytesHeaderParser().parsebytes(header).get("Message-ID", "").strip()
            if found != message_id.strip():
                continue        # HEADER search matches substrings
            if PENDING_KEYWORD.lower().encode() in meta.lower():
                pending = True
            else:
                clean = True
        if clean:
            return SendResult(provider_message_id=message_id, thread_id=None, message_id=message_id)
        if pending:
            raise UndecidableError(
                f"{message_id} was being sent when seqctl stopped: the server may have it"
            )
        return self._not_found(message_id)

    def _not_found(self, message_id: str) -> None:
        """No copy in Sent. Certain only when seqctl stores a pending copy before every
        send; with append_sent false the server files (or not) a copy by itself."""
        if not self.append_sent:
            raise UndecidableError(
                f"{message_id} is not in the Sent folder, but with append_sent false seqctl "
                "keeps no copy of its own there: cannot tell whether it was sent"
            )
        return None

    def fetch_new(self, cursor: str | None) -> FetchResult:
        """New INBOX messages by UID. The cursor is "UIDVALIDITY:LAST_UID"; None starts from now.
        A changed UIDVALIDITY resyncs the last RESYNC_LIMIT messages. It reads on the kept
        session: a backlog's batches, and the reply guard before a batch of sends, share it."""
        if not self.imap_host:
            return FetchResult(messages=[], cursor=cursor)
        with self._imap(keep=True) as imap:
            self._selected = None               # INBOX, read-only: not the Sent folder
            self._check(imap.select("INBOX", readonly=True), "SELECT")
            uidvalidity, uidnext = self._selected_state(imap)
            old_validity, last_uid = _parse_cursor(cursor)
            if cursor is None:
                return FetchResult(messages=[], cursor=f"{uidvalidity}:{max(uidnext - 1, 0)}")
            if old_validity == uidvalidity:
                if uidnext and uidnext - 1 <= last_uid:
                    return FetchResult(messages=[], cursor=f"{uidvalidity}:{last_uid}")
                uids = self._search_uids(imap, f"{last_uid + 1}:*")
                uids = [uid for uid in uids if uid > last_uid]
                waiting = max(0, len(uids) - FETCH_BATCH)
                uids = uids[:FETCH_BATCH]
            else:
                last_uid, waiting = 0, 0
                uids = self._search_uids(imap, "1:*")[-RESYNC_LIMIT:]
            messages = self._fetch(imap, uidvalidity, uids)
            if uids:
                last_uid = max(last_uid, max(uids))
            return FetchResult(messages=messages, cursor=f"{uidvalidity}:{last_uid}",
                               waiting=waiting)

    def _selected_state(self, imap: imaplib.IMAP4) -> tuple[int, int]:
        validity = imap.response("UIDVALIDITY")[1]
        uidnext = imap.response("UIDNEXT")[1]
        if not validity or not validity[0] or not uidnext or not uidnext[0]:
            data = self._check(imap.status("INBOX", "(UIDVALIDITY UIDNEXT)"), "STATUS")
            text = b" ".join(d for d in data if isinstance(d, bytes))
            validity = [re.search(rb"UIDVALIDITY (\d+)", text)[1]]
            uidnext = [re.search(rb"UIDNEXT (\d+)", text)[1]]
        return int(validity[-1]), int(uidnext[-1])

    def _search_uids(self, imap: imaplib.IMAP4, uid_set: str) -> list[int]:
        data = self._check(imap.uid("SEARCH", "UID", uid_set), "SEARCH")
        return sorted(int(uid) for uid in b" ".join(d for d in data if d).split())

    def _fetch(self, imap: imaplib.IMAP4, uidvalidity: int, uids: list[int]) -> list[InboundMessage]:
        messages: list[InboundMessage] = []
        for start in range(0, len(uids), 50):
            chunk = ",".join(str(uid) for uid in uids[start:start + 50])
            data = self._check(imap.uid("FETCH", chunk, "(UID INTERNALDATE BODY.PEEK[])"), "FETCH")
            for meta, literal in _fetch_items(data):
                uid_match = re.search(rb"UID (\d+)", meta)
                if not uid_match:
                    continue
                date_match = re.search(rb'INTERNALDATE "([^"]+)"', meta)
                received_at = None
                if date_match:
                    with suppress(ValueError):
                        received_at = datetime.strptime(
                            date_match[1].decode().strip(), "%d-%b-%Y %H:%M:%S %z"
                        )
                messages.append(InboundMessage(
                    provider_id=f"{uidvalidity}:{int(uid_match[1])}",
                    raw=literal,
                    received_at=received_at,
                ))
        messages.sort(key=lambda message: int(message.provider_id.split(":")[1]))
        return messages


def _parse_cursor(cursor: str | None) -> tuple[int | None, int]:
    if not cursor:
        return None, 0
    try:
        validity, last = cursor.split(":", 1)
        return int(validity), int(last)
    except ValueError:
        return None, 0      # unreadable: treated like a UIDVALIDITY change (bounded resync)
