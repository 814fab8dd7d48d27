"""SMTP + IMAP inbox: send through the rep's SMTP server, keep a copy in the IMAP Sent folder,
and read new mail from INBOX by UID.

Config keys (inbox.config):
    smtp_host, smtp_port, security       "ssl" | "starttls" | "none"
    imap_host, imap_port, imap_security  IMAP is optional; without it nothing is synced and
                                         `find_sent` cannot tell (UndecidableError)
    username                             default: the inbox address
    password_env                         name of the variable holding the password, read at use
    auth                                 "password" (default) | "xoauth2" (token_source gives it)
    ca_file                              extra CA bundle to trust (self-signed servers)
    timeout                              seconds per network operation (default 30)
    sent_folder                          IMAP folder for sent copies (default: the \\Sent one)
    append_sent                          false when the server files sent mail by itself
                                         (then `find_sent` cannot tell "not sent" either)

Sending is made reconcilable: before the SMTP transaction a copy is appended to Sent flagged
`$SeqctlSending`; the flag is cleared once the server accepted the message, and the copy is
removed when it refused it. `find_sent` therefore answers "sent" for a clean copy, "cannot tell"
for a copy still flagged (a crash mid-send), and "not sent" when there is no copy. When the
pending copy cannot be stored, nothing is sent (TransientError): a send without its copy could
later read as "not sent" and go out twice. Without IMAP, or with append_sent false, there is no
such copy and `find_sent` answers "cannot tell" unless it finds the message.

Error messages never carry the password or a token: server and library text goes through
`redact` and the configured secrets are masked.
"""

from __future__ import annotations

import imaplib
import os
import re
import smtplib
import ssl
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from typing import Any

from seqctl.providers.base import (
    AuthRevokedError,
    FetchResult,
    InboundMessage,
    InboxInfo,
    ProviderError,
    SendResult,
    TransientError,
    UndecidableError,
)
from seqctl.providers.oauth import redact

PENDING_KEYWORD = "$SeqctlSending"
RESYNC_LIMIT = 200          # messages fetched when UIDVALIDITY changed
FETCH_BATCH = 200           # messages fetched per call; the rest come next time
DEFAULT_TIMEOUT = 30.0
SECURITY_MODES = ("ssl", "starttls", "none")
SENT_NAMES = ("sent", "sent items", "sent messages", "sent mail", "inbox.sent", "[gmail]/sent mail")

TokenSource = Callable[[], str]


def _log(message: str) -> None:
    print(f"seqctl: {message}", file=sys.stderr)


def _header_block(raw: bytes) -> tuple[bytes, bytes]:
    """Split a message into its header block (with the blank line) and the body."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        index = raw.find(separator)
        if index != -1:
            cut = index + len(separator)
            return raw[:cut], raw[cut:]
    return raw, b""


def strip_bcc(raw: bytes) -> tuple[bytes, list[str]]:
    """Remove any Bcc header (with its continuation lines) from the bytes that go on the wire,
    returning the addresses it named so they still get the message."""
    head, body = _header_block(raw)
    if not re.search(rb"(?im)^bcc:", head):
        return raw, []
    kept: list[bytes] = []
    removed: list[str] = []
    dropping = False
    for line in head.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and line.strip():
            if dropping:
                removed[-1] += line.decode("utf-8", "replace")
                continue
        else:
            dropping = line[:4].lower() == b"bcc:"
            if dropping:
                removed.append(line[4:].decode("utf-8", "replace"))
                continue
        kept.append(line)
    addresses = [addr for _name, addr in getaddresses(removed) if addr]
    return b"".join(kept) + body, addresses


def envelope_recipients(raw: bytes, bcc: Iterable[str] = ()) -> list[str]:
    """To + Cc from the headers, then Bcc; each address once (case-insensitive)."""
    headers = BytesHeaderParser().parsebytes(raw)
    fields = [str(value) for name in ("To", "Cc") for value in headers.get_all(name, [])]
    addresses = [addr for _name, addr in getaddresses(fields) if addr]
    addresses += [addr for _name, addr in getaddresses(list(bcc)) if addr]
    seen: set[str] = set()
    unique = []
    for address in addresses:
        if address.lower() not in seen:
            seen.add(address.lower())
            unique.append(address)
    return unique


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


def _smtp_error_text(code: int, message: bytes | str) -> str:
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return f"{code} {message}".strip()


class SmtpProvider:
    """An inbox reached over SMTP (send) and IMAP (Sent copy, sync)."""

    kind = "smtp"
    # The pending copy is in the IMAP Sent folder before the SMTP transaction starts.
    sent_lookup_lag: float = 0.0

    def __init__(self, inbox: InboxInfo, token_source: TokenSource | None = None):
        self.inbox = inbox
        self.config: dict[str, Any] = dict(inbox.config)
        self.token_source = token_source
        config = self.config
        if not config.get("smtp_host"):
            raise ProviderError(f"inbox {inbox.address}: smtp_host is not set")
        port = config.get("smtp_port")
        self.security = config.get("security") or ("ssl" if port and int(port) == 465 else "starttls")
        if self.security not in SECURITY_MODES:
            raise ProviderError(f"inbox {inbox.address}: security must be ssl, starttls or none")
        default_port = {"ssl": 465, "starttls": 587, "none": 25}[self.security]
        self.smtp_host: str = config["smtp_host"]
        self.smtp_port = int(port or default_port)
        self.imap_host: str | None = config.get("imap_host") or None
        imap_port = config.get("imap_port")
        # Without an explicit choice: 993 (or no port) is implicit TLS; any other port follows
        # the SMTP security mode, so a STARTTLS account stays STARTTLS and a plain one plain.
        self.imap_security = config.get("imap_security") or (
            "ssl" if imap_port is None or int(imap_port) == 993 else self.security
        )
        if self.imap_security not in SECURITY_MODES:
            raise ProviderError(f"inbox {inbox.address}: imap_security must be ssl, starttls or none")
        self.imap_port = int(imap_port or (993 if self.imap_security == "ssl" else 143))
        self.username: str = config.get("username") or inbox.address
        self.auth = config.get("auth") or "password"
        if self.auth not in ("password", "xoauth2"):
            raise ProviderError(f"inbox {inbox.address}: auth must be password or xoauth2")
        self.timeout = float(config.get("timeout") or DEFAULT_TIMEOUT)
        self.append_sent = bool(config.get("append_sent", True))

    # ----------------------------------------------------------------------------- credentials

    def _ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.config.get("ca_file") or None)

    def _password(self) -> str | None:
        """The password from the variable named by password_env; None when none is configured."""
        variable = self.config.get("password_env")
        if not variable:
            return None
        value = os.environ.get(variable)
        if value is None:
            raise ProviderError(
                f"environment variable {variable} is not set: it holds the password for inbox "
                f"{self.inbox.address} (export {variable}=... before running seqctl)"
            )
        return value

    def _token(self) -> str:
        if self.token_source is None:
            raise ProviderError(f"inbox {self.inbox.address}: auth is xoauth2 but no token source")
        return self.token_source()

    def _xoauth2(self) -> str:
        return f"user={self.username}\x01auth=Bearer {self._token()}\x01\x01"

    def _secrets(self) -> list[str]:
        """The configured password (never raising), to mask in error text."""
        variable = self.config.get("password_env")
        value = os.environ.get(variable) if variable else None
        return [value] if value and len(value.strip()) >= 3 else []

    def _scrub(self, text: object) -> str:
        """Server or library text made safe for an error message: no password, no token."""
        result = redact(text)
        for secret in self._secrets():
            result = result.replace(secret, "***")
        return result

    def _check_ascii_credentials(self, protocol: str) -> None:
        """smtplib and imaplib send the login as ASCII: say so clearly instead of letting a
        UnicodeEncodeError (whose text holds the password) escape."""
        logs_in = self.auth == "xoauth2"
        if self.auth == "password":
            password = self._password()
            logs_in = password is not None
            if password is not None and not password.isascii():
                raise ProviderError(
                    f"the {protocol} password in ${self.config.get('password_env')} contains "
                    f"non-ASCII characters, which {protocol} login cannot send: use an "
                    "ASCII password (or an app password) for inbox " + self.inbox.address
                )
        if logs_in and not self.username.isascii():
            raise ProviderError(
                f"the {protocol} username {self.username!r} contains non-ASCII characters, "
                f"which {protocol} login cannot send: set an ASCII username in the inbox config"
            )

    def _non_ascii_error(self, protocol: str) -> ProviderError:
        """The error for a UnicodeEncodeError raised by smtplib/imaplib."""
        try:
            self._check_ascii_credentials(protocol)
        except ProviderError as error:
            return error
        if self.auth == "xoauth2":
            return ProviderError(
                f"the OAuth access token for {protocol} contains non-ASCII characters"
            )
        if protocol == "SMTP":
            return ProviderError(
                f"the sender or a recipient address contains non-ASCII characters, which "
                f"{self.smtp_host} cannot take without SMTPUTF8"
            )
        return ProviderError(
            f"the IMAP folder name or a command argument for {self.imap_host} contains "
            "non-ASCII characters (set sent_folder to the folder's IMAP name)"
        )

    def _credential_name(self) -> str:
        if self.auth == "xoauth2":
            return "the OAuth access token"
        return f"the password in ${self.config.get('password_env')}"

    # ------------------------------------------------------------------------------------ SMTP

    def _smtp_connect(self) -> smtplib.SMTP:
        if self.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                self.smtp_host, self.smtp_port, timeout=self.timeout, context=self._ssl_context()
            )
        else:
            client = smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=self.timeout)
        try:
            client.ehlo()
            if self.security == "starttls":
                client.starttls(context=self._ssl_context())
                client.ehlo()
            self._smtp_login(client)
        except BaseException:
            with suppress(Exception):
                client.close()
            raise
        return client

    def _smtp_login(self, client: smtplib.SMTP) -> None:
        if self.auth == "xoauth2":
            token = self._xoauth2()
            state = {"first": True}

            def respond(challenge: bytes | None = None) -> str:
                # After a failure the server sends an error challenge: answer empty to end it.
                if state["first"]:
                    state["first"] = False
                    return token
                return ""

            client.auth("XOAUTH2", respond)
            return
        password = self._password()
        if password is not None:
            client.login(self.username, password)

    def send(
        self,
        raw: bytes,
        *,
        message_id: str,
        thread_id: str | None = None,
        bcc: Iterable[str] = (),
    ) -> SendResult:
        """Send `raw` to To + Cc + `bcc` (Bcc never appears in the bytes sent) and keep a copy
        in the IMAP Sent folder when IMAP is configured."""
        wire, header_bcc = strip_bcc(raw)
        recipients = envelope_recipients(wire, [*bcc, *header_bcc])
        if not recipients:
            raise ProviderError("the message has no recipients")
        # A missing variable or a password smtplib cannot send is a clear error before any I/O.
        self._check_ascii_credentials("SMTP")
        pending = self._append_pending(raw, message_id)
        try:
            self._smtp_send(wire, recipients)
        except UndecidableError:
            raise                       # the copy stays flagged: reconcile says "cannot tell"
        except ProviderError:           # a clear "not sent"; anything else keeps the flag
            if pending is not None:
                self._finish_pending(pending, sent=False)
            raise
        if pending is not None:
            self._finish_pending(pending, sent=True)
        return SendResult(provider_message_id=message_id, thread_id=None, message_id=message_id)

    def _smtp_send(self, wire: bytes, recipients: list[str]) -> None:
        data_started = False
        try:
            client = self._smtp_connect()
            try:
                options = []
                if max(wire, default=0) > 127 and client.has_extn("8bitmime"):
                    options.append("BODY=8BITMIME")
                code, response = client.mail(self.inbox.address, options)
                if code != 250:
                    raise smtplib.SMTPSenderRefused(code, response, self.inbox.address)
                refused: dict[str, tuple[int, bytes]] = {}
                for recipient in recipients:
                    code, response = client.rcpt(recipient)
                    if code not in (250, 251):
                        refused[recipient] = (code, response)
                deferred = any(400 <= code < 500 for code, _ in refused.values())
                if deferred or len(refused) == len(recipients):
                    # A deferred recipient would never get it if the rest went now: send to
                    # nobody and retry for everyone later.
                    client.rset()
                    raise smtplib.SMTPRecipientsRefused(refused)
                data_started = True
                code, response = client.data(wire)
                if code != 250:
                    raise smtplib.SMTPDataError(code, response)
                data_started = False    # accepted: nothing is ambiguous any more
                for recipient, (code, response) in refused.items():
                    _log(f"{recipient} was refused ({_smtp_error_text(code, response)}); "
                         "the other recipients got the message")
            finally:
                with suppress(Exception):
                    client.quit()
                with suppress(Exception):
                    client.close()
        except smtplib.SMTPAuthenticationError as error:
            text = self._scrub(_smtp_error_text(error.smtp_code, error.smtp_error))
            if 400 <= error.smtp_code < 500:
                raise TransientError(f"{self.smtp_host} deferred the login: {text}") from error
            raise AuthRevokedError(
                f"{self.smtp_host} rejected the login for {self.username} ({text}): check "
                f"{self._credential_name()}"
            ) from error
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            text = self._scrub("; ".join(
                f"{rcpt}: {_smtp_error_text(code, msg)}" for rcpt, (code, msg) in error.recipients.items()
            ))
            if any(400 <= code < 500 for code in codes):
                raise TransientError(f"recipients deferred by {self.smtp_host}: {text}") from error
            raise ProviderError(f"recipients refused by {self.smtp_host}: {text}") from error
        except smtplib.SMTPResponseException as error:
            text = self._scrub(_smtp_error_text(error.smtp_code, error.smtp_error))
            if 400 <= error.smtp_code < 500:
                raise TransientError(f"{self.smtp_host} said {text}") from error
            if data_started and error.smtp_code < 400:
                raise UndecidableError(f"unexpected reply after the message data: {text}") from error
            raise ProviderError(f"{self.smtp_host} refused the message: {text}") from error
        except smtplib.SMTPServerDisconnected as error:
            raise self._network_error(error, data_started) from error
        except smtplib.SMTPException as error:       # no AUTH, no STARTTLS, no usable mechanism
            raise ProviderError(
                f"{self.smtp_host}:{self.smtp_port}: {self._scrub(error)}"
            ) from error
        except ssl.SSLError as error:
            if data_started or isinstance(error, ssl.SSLEOFError | ssl.SSLZeroReturnError):
                raise self._network_error(error, data_started) from error
            raise ProviderError(
                f"TLS with {self.smtp_host}:{self.smtp_port} failed: {self._scrub(error)} "
                "(a self-signed server needs ca_file)"
            ) from error
        except OSError as error:                     # refused, reset, timeout, DNS
            raise self._network_error(error, data_started) from error
        except UnicodeEncodeError:
            # smtplib encodes commands as ASCII; this happens before DATA (the body is bytes).
            # `from None`: the exception's .object may be the password.
            if data_started:
                raise UndecidableError(
                    f"{self.smtp_host}: an encoding error after the message data; "
                    "it may have been sent"
                ) from None
            raise self._non_ascii_error("SMTP") from None

    def _network_error(self, error: BaseException, data_started: bool) -> ProviderError:
        detail = self._scrub(error) or type(error).__name__
        if data_started:
            # The message went out but no reply came back: it may or may not be delivered.
            return UndecidableError(
                f"{self.smtp_host} dropped the connection after the message data ({detail}); "
                "it may have been sent"
            )
        return TransientError(f"cannot reach {self.smtp_host}:{self.smtp_port}: {detail}")

    # ------------------------------------------------------------------------------------ IMAP

    @contextmanager
    def _imap(self) -> Iterator[imaplib.IMAP4]:
        """A logged-in IMAP connection. Raises TransientError / AuthRevokedError / ProviderError."""
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
            yield imap
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
        finally:
            with suppress(Exception):
                imap.logout()

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
            with self._imap() as imap:
                folder = self._sent_folder(imap, create=True)
                assert folder is not None
                status, data = imap.append(
                    _imap_quote(folder), f"(\\Seen {PENDING_KEYWORD})",
                    imaplib.Time2Internaldate(time.time()), raw,
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
            with self._imap() as imap:
                self._check(imap.select(_imap_quote(copy.folder)), "SELECT")
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
        A changed UIDVALIDITY resyncs the last RESYNC_LIMIT messages."""
        if not self.imap_host:
            return FetchResult(messages=[], cursor=cursor)
        with self._imap() as imap:
            self._check(imap.select("INBOX", readonly=True), "SELECT")
            uidvalidity, uidnext = self._selected_state(imap)
            old_validity, last_uid = _parse_cursor(cursor)
            if cursor is None:
                return FetchResult(messages=[], cursor=f"{uidvalidity}:{max(uidnext - 1, 0)}")
            if old_validity == uidvalidity:
                if uidnext and uidnext - 1 <= last_uid:
                    return FetchResult(messages=[], cursor=f"{uidvalidity}:{last_uid}")
                uids = self._search_uids(imap, f"{last_uid + 1}:*")
                uids = [uid for uid in uids if uid > last_uid][:FETCH_BATCH]
            else:
                last_uid = 0
                uids = self._search_uids(imap, "1:*")[-RESYNC_LIMIT:]
            messages = self._fetch(imap, uidvalidity, uids)
            if uids:
                last_uid = max(last_uid, max(uids))
            return FetchResult(messages=messages, cursor=f"{uidvalidity}:{last_uid}")

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

