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

import smtplib
import ssl
import time
from collections.abc import Iterable
from contextlib import suppress

from seqctl.providers.base import (
    AuthRevokedError,
    ProviderError,
    SendResult,
    TransientError,
    UndecidableError,
)
from seqctl.providers.imap import IDLE_PROBE, ImapMailbox
from seqctl.providers.mail_account import log as _log
from seqctl.providers.mime import envelope_recipients, strip_bcc
from seqctl.providers.smtp_replies import rcpt_verdict, smtp_refusal


def _smtp_error_text(code: int, message: bytes | str) -> str:
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return f"{code} {message}".strip()



class SmtpProvider(ImapMailbox):
    """An inbox reached over SMTP (send) and IMAP (Sent copy, sync; see `ImapMailbox`)."""

    kind = "smtp"
    # The pending copy is in the IMAP Sent folder before the SMTP transaction starts.
    sent_lookup_lag: float = 0.0
    # One SMTP connection serves a dispatch batch: opened by the first send, reused by the
    # next ones, closed by `close()` or by any error (the next send then connects again).
    _smtp: smtplib.SMTP | None = None
    _smtp_used_at = 0.0

    def _smtp_session(self) -> smtplib.SMTP:
        """The batch's connection, opened (and logged in) on first use. One left idle for a
        while gets a NOOP first, since the server may have closed it."""
        client = self._smtp
        if client is not None and time.monotonic() - self._smtp_used_at > IDLE_PROBE:
            try:
                alive = client.noop()[0] == 250
            except (smtplib.SMTPException, OSError):
                alive = False
            if not alive:
                self._drop_smtp()
                client = None
        if client is None:
            client = self._smtp = self._smtp_connect()
        self._smtp_used_at = time.monotonic()
        return client

    def _drop_smtp(self) -> None:
        client, self._smtp = self._smtp, None
        if client is not None:
            with suppress(Exception):
                client.close()

    def close(self) -> None:
        """QUIT the batch's SMTP connection and log out of its IMAP session."""
        client, self._smtp = self._smtp, None
        if client is not None:
            with suppress(Exception):
                client.quit()
            with suppress(Exception):
                client.close()
        super().close()

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
            refused = self._smtp_send(wire, recipients)
        except UndecidableError:
            raise                       # the copy stays flagged: reconcile says "cannot tell"
        except ProviderError:           # a clear "not sent"; anything else keeps the flag
            if pending is not None:
                self._finish_pending(pending, sent=False)
            raise
        if pending is not None:
            self._finish_pending(pending, sent=True)
        return SendResult(provider_message_id=message_id, thread_id=None, message_id=message_id,
                          refused=refused)

    def _smtp_send(self, wire: bytes, recipients: list[str]) -> tuple[str, ...]:
        """One SMTP transaction. Every refusal is sorted by whose problem it is, per
        recipient and per message (`smtp_replies`); returns the recipients refused for good
        while the others got the message."""
        data_started = False
        try:
            client = self._smtp_session()
            try:
                options = []
                if max(wire, default=0) > 127 and client.has_extn("8bitmime"):
                    options.append("BODY=8BITMIME")
                code, response = client.mail(self.inbox.address, options)
                if code != 250:
                    raise self._refusal("MAIL", code, response)
                refused: dict[str, ProviderError] = {}
                for recipient in recipients:
                    code, response = client.rcpt(recipient)
                    if code not in (250, 251):
                        refused[recipient] = self._refusal("RCPT", code, response, [recipient])
                stop = rcpt_verdict(refused, len(recipients))
                if stop is not None:
                    with suppress(smtplib.SMTPException, OSError):
                        client.rset()
                    raise stop
                data_started = True
                try:
                    code, response = client.data(wire)
                except smtplib.SMTPDataError as error:     # DATA refused before the message
                    data_started = False
                    raise self._refusal("DATA", error.smtp_code, error.smtp_error) from error
                if code >= 400:                            # refused after it: not sent
                    data_started = False
                    raise self._refusal("DATA", code, response)
                if code != 250:
                    text = self._scrub(_smtp_error_text(code, response))
                    raise UndecidableError(f"unexpected reply after the message data: {text}")
                data_started = False    # accepted: nothing is ambiguous any more
                for recipient, error in refused.items():
                    _log(f"{recipient} was refused ({error}); the other recipients got the message")
                return tuple(refused)
            except BaseException:
                self._drop_smtp()       # whatever went wrong, the next send connects afresh
                raise
        except smtplib.SMTPAuthenticationError as error:
            text = self._scrub(_smtp_error_text(error.smtp_code, error.smtp_error))
            if 400 <= error.smtp_code < 500:
                raise TransientError(f"{self.smtp_host} deferred the login: {text}") from error
            raise AuthRevokedError(
                f"{self.smtp_host} rejected the login for {self.username} ({text}): check "
                f"{self._credential_name()}"
            ) from error
        except smtplib.SMTPResponseException as error:   # the greeting, EHLO or STARTTLS
            text = self._scrub(_smtp_error_text(error.smtp_code, error.smtp_error))
            if error.smtp_code < 500:
                raise TransientError(f"{self.smtp_host} said {text}") from error
            raise AuthRevokedError(
                f"{self.smtp_host}:{self.smtp_port} will not take mail from this inbox: {text} "
                "(check its server settings)"
            ) from error
        except smtplib.SMTPServerDisconnected as error:
            raise self._network_error(error, data_started) from error
        except smtplib.SMTPException as error:       # no AUTH, no STARTTLS, no usable mechanism
            raise AuthRevokedError(
                f"{self.smtp_host}:{self.smtp_port}: {self._scrub(error)} (check the inbox's "
                "--security, --smtp-port and login settings)"
            ) from error
        except ssl.SSLError as error:
            if data_started or isinstance(error, ssl.SSLEOFError | ssl.SSLZeroReturnError):
                raise self._network_error(error, data_started) from error
            raise AuthRevokedError(
                f"TLS with {self.smtp_host}:{self.smtp_port} failed: {self._scrub(error)} "
                "(check --security and --smtp-port; a self-signed server needs ca_file)"
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

    def _refusal(self, command: str, code: int, response: bytes | str,
                 recipients: Iterable[str] = ()) -> ProviderError:
        text = response.decode("utf-8", "replace") if isinstance(response, bytes) else response
        return smtp_refusal(command, code, self._scrub(text), recipients=recipients,
                            host=self.smtp_host)

    def _network_error(self, error: BaseException, data_started: bool) -> ProviderError:
        detail = self._scrub(error) or type(error).__name__
        if data_started:
            # The message went out but no reply came back: it may or may not be delivered.
            return UndecidableError(
                f"{self.smtp_host} dropped the connection after the message data ({detail}); "
                "it may have been sent"
            )
        return TransientError(f"cannot reach {self.smtp_host}:{self.smtp_port}: {detail}")
