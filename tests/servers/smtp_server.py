"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, on a free port, in a thread.

It records every accepted message with its envelope, can require AUTH (PLAIN, LOGIN, XOAUTH2),
offers STARTTLS (or implicit TLS) with a self-signed certificate, and plays scripted failures: queue a reply
such as "451 4.3.0 Try later" for the next MAIL, RCPT or DATA, or for one address at RCPT. It
counts the commands it saw (`handler.seen`: EHLO, AUTH, MAIL, RCPT, DATA), and `delay` slows every RCPT and DATA down (a
slow server, for crash tests). `on_data(content)` runs at every DATA before the reply, while
the client waits for it (what the world does while an email is on the wire).
"""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from fakes.tls import make_self_signed


@dataclass(frozen=True)
class ReceivedMessage:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    login: str | None


@dataclass(frozen=True)
class SelfSignedCert:
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def make_self_signed_cert(directory: Path) -> SelfSignedCert:
    """A CA-style self-signed certificate for localhost and 127.0.0.1 (trust it via ca_file)."""
    files = make_self_signed(directory)
    return SelfSignedCert(files.cert, files.key)


@dataclass
class RecordingHandler:
    """Accepts mail into `messages`; `failures[command]` holds replies to give instead."""

    users: dict[str, str] = field(default_factory=dict)          # login -> password
    tokens: dict[str, str] = field(default_factory=dict)         # login -> XOAUTH2 token
    messages: list[ReceivedMessage] = field(default_factory=list)
    failures: dict[str, list[str]] = field(default_factory=dict)
    address_failures: dict[str, list[str]] = field(default_factory=dict)   # RCPT, by address
    drop_after_data: bool = False
    delay: float = 0.0
    seen: Counter = field(default_factory=Counter)       # MAIL / RCPT / DATA / AUTH counts
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_data: Callable[[bytes], None] | None = None

    def _scripted(self, command: str, address: str | None = None) -> str | None:
        with self.lock:
            self.seen[command] += 1
            queue = self.address_failures.get((address or "").lower())
            if queue:
                reply = queue[0]
                if len(queue) > 1:
                    queue.pop(0)      # the last reply stays: "always", until replaced
                return reply
            queue = self.failures.get(command)
            return queue.pop(0) if queue else None

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        with self.lock:
            self.seen["EHLO"] += 1          # once per connection without STARTTLS
        session.host_name = hostname        # what aiosmtpd does itself without this hook
        return responses

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        reply = self._scripted("MAIL")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if self.delay:
            await asyncio.sleep(self.delay / 2)
        reply = self._scripted("RCPT", address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.on_data is not None:
            self.on_data(envelope.original_content or b"")
        reply = self._scripted("DATA")
        if reply:
            return reply
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else auth
        with self.lock:
            self.messages.append(ReceivedMessage(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                data=envelope.original_content or b"",
                login=login,
            ))
        if self.drop_after_data:
            server.transport.close()        # accepted, but the client never hears so
        return "250 Message accepted"

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) > 1:
            blob = args[1].encode()
        else:
            answer = await server.challenge_auth("")
            if not isinstance(answer, bytes):
                return AuthResult(success=False, handled=True)
            blob = base64.b64encode(answer)
        try:
            parts = base64.b64decode(blob).decode().split("\x01")
            user = parts[0].removeprefix("user=")
            token = next(p for p in parts if p.startswith("auth=Bearer ")).removeprefix(
                "auth=Bearer ")
        except (ValueError, StopIteration):
            return AuthResult(success=False, handled=False)
        if self.tokens.get(user) == token:
            return AuthResult(success=True, auth_data=user)
        # RFC 7628: an error challenge, then the client's empty answer, then 535.
        await server.challenge_auth('{"status":"401","schemes":"bearer"}')
        return AuthResult(success=False, handled=False)


class SmtpTestServer:
    """`with SmtpTestServer(...) as server:` — `server.port`, `server.handler.messages`."""

    def __init__(self, *, users: dict[str, str] | None = None,
                 tokens: dict[str, str] | None = None, starttls: bool = False,
                 implicit_tls: bool = False, cert: SelfSignedCert | None = None):
        self.handler = RecordingHandler(users=dict(users or {}), tokens=dict(tokens or {}))
        self.host = "127.0.0.1"
        self.port = 0
        self.cert = cert
        if (starttls or implicit_tls) and cert is None:
            self.cert = make_self_signed_cert(Path(tempfile.mkdtemp(prefix="seqctl-cert-")))
        self.starttls = starttls
        self.implicit_tls = implicit_tls
        self.controller: Controller | None = None

    @property
    def messages(self) -> list[ReceivedMessage]:
        return self.handler.messages

    def fail_next(self, command: str, reply: str, times: int = 1) -> None:
        """Answer the next `times` MAIL/RCPT/DATA commands with `reply`, e.g. "451 4.3.0 Later"."""
        with self.handler.lock:
            self.handler.failures.setdefault(command.upper(), []).extend([reply] * times)

    def fail_address(self, address: str, *replies: str) -> None:
        """Answer RCPT TO:<address> with these replies in turn; the last one stays."""
        with self.handler.lock:
            self.handler.address_failures[address.lower()] = list(replies)

    def clear_address(self, address: str) -> None:
        with self.handler.lock:
            self.handler.address_failures.pop(address.lower(), None)

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: object) -> AuthResult:
        with self.handler.lock:
            self.handler.seen["AUTH"] += 1
        if isinstance(auth_data, LoginPassword):
            login, password = auth_data.login.decode(), auth_data.password.decode()
            if self.handler.users.get(login) == password:
                return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)

    def start(self) -> SmtpTestServer:
        with socket.socket() as sock:
            sock.bind((self.host, 0))
            self.port = sock.getsockname()[1]
        kwargs: dict[str, object] = {}
        if self.handler.users or self.handler.tokens:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        if self.starttls:
            assert self.cert is not None
            kwargs["tls_context"] = self.cert.server_context()
        if self.implicit_tls:
            assert self.cert is not None
            kwargs["ssl_context"] = self.cert.server_context()
        self.controller = Controller(
            self.handler, hostname=self.host, port=self.port, ready_timeout=10,
            auth_required=bool(self.handler.users or self.handler.tokens), **kwargs,
        )
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def __enter__(self) -> SmtpTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["SmtpTestServer", "ReceivedMessage", "SelfSignedCert", "make_self_signed_cert"]
