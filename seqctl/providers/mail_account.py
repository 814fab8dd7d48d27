"""What the SMTP and IMAP halves of an SMTP + IMAP inbox share: its configuration and its
credentials (password from an environment variable, or an XOAUTH2 token), and how error text is
scrubbed of them. See `seqctl.providers.smtp` for the config keys.
"""

from __future__ import annotations

import os
import ssl
import sys
from collections.abc import Callable
from typing import Any

from seqctl.providers.base import InboxInfo, ProviderError
from seqctl.providers.oauth import redact

DEFAULT_TIMEOUT = 30.0
SECURITY_MODES = ("ssl", "starttls", "none")

TokenSource = Callable[[], str]


def log(message: str) -> None:
    print(f"seqctl: {message}", file=sys.stderr)


class MailAccount:
    """The configuration and credentials of an SMTP + IMAP inbox."""

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
