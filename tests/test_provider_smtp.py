"""The SMTP inbox against real servers on loopback: aiosmtpd for SMTP, Dovecot for IMAP."""

from __future__ import annotations

import socket
import threading
from email.parser import BytesHeaderParser

import pytest
from servers.imap_server import DovecotServer, ImapAccount, need_dovecot
from servers.smtp_server import SmtpTestServer, make_self_signed_cert

from seqctl.providers.base import (
    AuthRevokedError,
    InboxInfo,
    ProviderError,
    RecipientDeferredError,
    TransientError,
    UndecidableError,
)
from seqctl.providers.imap import PENDING_KEYWORD
from seqctl.providers.mime import envelope_recipients, strip_bcc
from seqctl.providers.smtp import SmtpProvider

ADDRESS = "rep@example.com"

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture(scope="module")
def dovecot_special_use():
    need_dovecot()
    with DovecotServer(sent_special_use=True) as server:
        yield server


@pytest.fixture
def smtp_server():
    with SmtpTestServer() as server:
        yield server


@pytest.fixture
def imap_account(dovecot, monkeypatch) -> ImapAccount:
    account = dovecot.add_user()
    monkeypatch.setenv("SEQCTL_TEST_IMAP_PW", account.password)
    return account


@pytest.fixture
def mail_server(imap_account):
    """An SMTP server that takes the same login as the IMAP account, like a real provider."""
    with SmtpTestServer(users={imap_account.username: imap_account.password}) as server:
        yield server


def make_raw(message_id: str = "<m1@seqctl.test>", *, extra: str = "") -> bytes:
    return (
        f"From: Rep <{ADDRESS}>\r\n"
        "To: Ann Buyer <ann@buyer.test>\r\n"
        "Cc: bob@buyer.test\r\n"
        f"{extra}"
        "Subject: Quick question\r\n"
        f"Message-ID: {message_id}\r\n"
        "Date: Mon, 06 May 2024 09:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "Hi Ann,\r\n"
        ".a line starting with a dot\r\n"
        "Thanks\r\n"
    ).encode()


def provider(smtp: SmtpTestServer | None = None, imap: ImapAccount | None = None,
             token_source=None, **config) -> SmtpProvider:
    settings: dict = {"smtp_host": "127.0.0.1", "smtp_port": smtp.port if smtp else 1,
                      "security": "none", "timeout": 5}
    if imap is not None:
        settings.update(imap_host=imap.host, imap_port=imap.port, imap_security="none",
                        username=imap.username, password_env="SEQCTL_TEST_IMAP_PW")
    settings.update(config)
    return SmtpProvider(InboxInfo(id=1, address=ADDRESS, kind="smtp", config=settings),
                        token_source=token_source)


def folder_messages(account: ImapAccount, folder: str) -> list[tuple[bytes, bytes]]:
    """(flags, raw) of every message in `folder`."""
    imap = account.connect()
    try:
        status, _ = imap.select(f'"{folder}"', readonly=True)
        assert status == "OK", f"no folder {folder}"
        _, data = imap.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
        return [(item[0], item[1]) for item in data if isinstance(item, tuple)]
    finally:
        imap.logout()


def append_to_inbox(account: ImapAccount, raw: bytes) -> None:
    imap = account.connect()
    try:
        status, _ = imap.append("INBOX", None, None, raw)
        assert status == "OK"
    finally:
        imap.logout()


# --------------------------------------------------------------------------------------- send

def test_message_arrives_with_exactly_our_bytes_and_bcc_only_in_the_envelope(smtp_server):
    raw = make_raw()
    result = provider(smtp_server).send(raw, message_id="<m1@seqctl.test>",
                                        bcc=["crm@log.test"])
    assert (result.provider_message_id, result.thread_id, result.message_id) == (
        "<m1@seqctl.test>", None, "<m1@seqctl.test>")
    [received] = smtp_server.messages
    assert received.data == raw
    assert received.mail_from == ADDRESS
    assert received.rcpt_tos == ["ann@buyer.test", "bob@buyer.test", "crm@log.test"]
    assert b"crm@log.test" not in received.data


def test_a_bcc_header_left_in_the_message_is_delivered_but_never_sent_on_the_wire(smtp_server):
    raw = make_raw(extra="Bcc: Hidden <hidden@log.test>,\r\n other@log.test\r\n")
    provider(smtp_server).send(raw, message_id="<m1@seqctl.test>")
    [received] = smtp_server.messages
    assert b"Bcc" not in received.data and b"hidden@log.test" not in received.data
    assert received.rcpt_tos[-2:] == ["hidden@log.test", "other@log.test"]
    assert received.data == make_raw()


def test_recipients_are_to_then_cc_then_bcc_each_once():
    raw = make_raw()
    assert envelope_recipients(raw, ["ANN@buyer.test", "x@y.test"]) == [
        "ann@buyer.test", "bob@buyer.test", "x@y.test"]
    assert strip_bcc(raw) == (raw, [])


def test_password_is_read_from_the_variable_named_by_password_env(monkeypatch):
    monkeypatch.setenv("REP_SMTP_PASSWORD", "hunter2")
    with SmtpTestServer(users={ADDRESS: "hunter2"}) as server:
        provider(server, password_env="REP_SMTP_PASSWORD").send(make_raw(), message_id="<m1@x>")
        assert server.messages[0].login == ADDRESS


def test_a_missing_password_variable_is_a_clear_error_naming_it(monkeypatch):
    monkeypatch.delenv("REP_SMTP_PASSWORD", raising=False)
    with SmtpTestServer(users={ADDRESS: "hunter2"}) as server:
        with pytest.raises(ProviderError, match="REP_SMTP_PASSWORD") as caught:
            provider(server, password_env="REP_SMTP_PASSWORD").send(make_raw(), message_id="<m>")
        assert not isinstance(caught.value, TransientError)
        assert server.messages == []


def test_a_rejected_password_means_reauth_and_names_the_variable(monkeypatch):
    monkeypatch.setenv("REP_SMTP_PASSWORD", "wrong")
    with SmtpTestServer(users={ADDRESS: "hunter2"}) as server:
        with pytest.raises(AuthRevokedError, match="REP_SMTP_PASSWORD"):
            provider(server, password_env="REP_SMTP_PASSWORD").send(make_raw(), message_id="<m>")


def test_xoauth2_uses_the_token_from_the_token_source():
    with SmtpTestServer(tokens={ADDRESS: "ya29.good"}) as server:
        provider(server, auth="xoauth2", token_source=lambda: "ya29.good").send(
            make_raw(), message_id="<m1@x>")
        assert server.messages[0].login == ADDRESS
        with pytest.raises(AuthRevokedError, match="OAuth"):
            provider(server, auth="xoauth2", token_source=lambda: "expired").send(
                make_raw(), message_id="<m2@x>")
        assert len(server.messages) == 1


def test_starttls_with_a_self_signed_certificate_trusted_through_ca_file(tmp_path):
    cert = make_self_signed_cert(tmp_path / "tls")
    with SmtpTestServer(starttls=True, cert=cert) as server:
        provider(server, security="starttls", ca_file=str(cert.cert_file)).send(
            make_raw(), message_id="<m1@x>")
        assert len(server.messages) == 1
        with pytest.raises(ProviderError, match="ca_file") as caught:
            provider(server, security="starttls").send(make_raw(), message_id="<m2@x>")
        assert not isinstance(caught.value, TransientError)
        assert len(server.messages) == 1


def test_implicit_tls_with_a_self_signed_certificate(tmp_path):
    cert = make_self_signed_cert(tmp_path / "tls")
    with SmtpTestServer(implicit_tls=True, cert=cert) as server:
        provider(server, security="ssl", ca_file=str(cert.cert_file)).send(
            make_raw(), message_id="<m1@x>")
        assert server.messages[0].data == make_raw()


@pytest.mark.parametrize("command, reply", [
    ("MAIL", "421 4.7.0 Too many connections"),
    ("DATA", "451 4.3.0 Local error in processing"),
])
def test_temporary_failures_are_transient(smtp_server, command, reply):
    smtp_server.fail_next(command, reply)
    with pytest.raises(TransientError, match=reply[:3]):
        provider(smtp_server).send(make_raw(), message_id="<m1@x>")
    assert smtp_server.messages == []
    provider(smtp_server).send(make_raw(), message_id="<m1@x>")   # the retry goes through
    assert len(smtp_server.messages) == 1


def test_a_recipient_deferred_at_rcpt_holds_the_message_for_a_retry(smtp_server):
    smtp_server.fail_next("RCPT", "451 4.3.0 Greylisted, try again later")
    with pytest.raises(RecipientDeferredError, match="451 4.3.0") as caught:
        provider(smtp_server).send(make_raw(), message_id="<m1@x>")
    assert caught.value.recipients == ("ann@buyer.test",)
    assert smtp_server.messages == []                  # bob waits with ann: one message
    provider(smtp_server).send(make_raw(), message_id="<m1@x>")
    assert smtp_server.messages[0].rcpt_tos == ["ann@buyer.test", "bob@buyer.test"]


@pytest.mark.parametrize("command, reply", [
    ("RCPT", "550 5.1.1 User unknown"),
    ("DATA", "554 5.7.1 Message rejected as spam"),
])
def test_permanent_refusals_are_provider_errors_with_the_server_text(smtp_server, command, reply):
    smtp_server.fail_next(command, reply, times=2)
    with pytest.raises(ProviderError, match=reply.split(" ", 2)[2]) as caught:
        provider(smtp_server).send(make_raw(), message_id="<m1@x>")
    assert not isinstance(caught.value, TransientError | UndecidableError)


def test_one_refused_recipient_does_not_fail_a_message_the_others_got(smtp_server, capsys):
    smtp_server.fail_next("RCPT", "550 5.1.1 User unknown")
    result = provider(smtp_server).send(make_raw(), message_id="<m1@x>")
    assert smtp_server.messages[0].rcpt_tos == ["bob@buyer.test"]
    assert result.refused == ("ann@buyer.test",)     # the engine bounces the contact
    assert "ann@buyer.test was refused" in capsys.readouterr().err


def test_a_refused_connection_is_transient():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]     # closed again: nobody listens there
    with pytest.raises(TransientError, match="cannot reach"):
        provider(smtp_port=port).send(make_raw(), message_id="<m1@x>")


def test_a_server_that_never_answers_is_a_transient_timeout():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    thread.start()
    raised: list[BaseException] = []

    def send() -> None:
        try:
            provider(smtp_port=listener.getsockname()[1], timeout=0.5).send(
                make_raw(), message_id="<m1@x>")
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            raised.append(exc)

    try:
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        sender.join(60)  # generous: only a send that ignores its timeout stays blocked
        assert not sender.is_alive(), "the send ignored its 0.5 s timeout"
        assert len(raised) == 1 and isinstance(raised[0], TransientError), raised
    finally:
        for conn in accepted:
            conn.close()
        listener.close()


# --------------------------------------------------------------------------- IMAP Sent copy

def test_the_sent_copy_lands_in_a_sent_folder_created_when_missing(mail_server, imap_account):
    raw = make_raw()
    p = provider(mail_server, imap_account)
    p.send(raw, message_id="<m1@seqctl.test>", bcc=["crm@log.test"])
    [(flags, copy)] = folder_messages(imap_account, "Sent")
    assert copy == raw
    assert b"\\Seen" in flags and PENDING_KEYWORD.encode() not in flags
    assert mail_server.messages[0].data == raw
    found = p.find_sent("<m1@seqctl.test>")
    assert found is not None and found.message_id == "<m1@seqctl.test>"
    assert p.find_sent("<never-sent@seqctl.test>") is None


def test_the_sent_copy_goes_to_the_special_use_sent_folder(dovecot_special_use, monkeypatch):
    account = dovecot_special_use.add_user()
    monkeypatch.setenv("SEQCTL_TEST_IMAP_PW", account.password)
    with SmtpTestServer(users={account.username: account.password}) as server:
        p = provider(server, account)
        p.send(make_raw(), message_id="<m1@seqctl.test>")
    assert len(folder_messages(account, "Sent")) == 1
    assert p.find_sent("<m1@seqctl.test>") is not None


def test_an_existing_sent_messages_folder_is_used_rather_than_a_new_one(mail_server, imap_account):
    imap = imap_account.connect()
    imap.create('"Sent Messages"')
    imap.logout()
    provider(mail_server, imap_account).send(make_raw(), message_id="<m1@x>")
    assert len(folder_messages(imap_account, "Sent Messages")) == 1
    imap = imap_account.connect()
    names = [line.rsplit(b" ", 1)[-1] for line in imap.list()[1]]
    imap.logout()
    assert b"Sent" not in names and b'"Sent"' not in names


def test_a_refused_message_leaves_no_copy_in_sent(mail_server, imap_account):
    mail_server.fail_next("RCPT", "550 5.1.1 User unknown", times=2)
    p = provider(mail_server, imap_account)
    with pytest.raises(ProviderError):
        p.send(make_raw(), message_id="<m1@seqctl.test>")
    assert folder_messages(imap_account, "Sent") == []
    assert p.find_sent("<m1@seqctl.test>") is None


def test_a_connection_lost_after_the_data_cannot_be_decided_later_either(mail_server,
                                                                         imap_account):
    mail_server.handler.drop_after_data = True
    p = provider(mail_server, imap_account)
    with pytest.raises(UndecidableError):
        p.send(make_raw(), message_id="<m1@seqctl.test>")
    assert len(mail_server.messages) == 1          # it did arrive
    with pytest.raises(UndecidableError, match="may have it"):
        p.find_sent("<m1@seqctl.test>")


def test_an_unreachable_imap_server_stops_the_send(smtp_server, monkeypatch):
    """Without its pending Sent copy a send could later read as "not sent" and go out twice:
    nothing is sent, and the failure is retried later."""
    monkeypatch.setenv("SEQCTL_TEST_IMAP_PW", "x")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    p = provider(smtp_server, imap_port=closed_port, imap_host="127.0.0.1",
                 imap_security="none", password_env="SEQCTL_TEST_IMAP_PW")
    with pytest.raises(TransientError, match="nothing was sent"):
        p.send(make_raw(), message_id="<m1@x>")
    assert smtp_server.messages == []
    with pytest.raises(UndecidableError):
        p.find_sent("<m1@x>")


def test_a_sent_copy_the_server_refuses_stops_the_send(mail_server, imap_account):
    p = provider(mail_server, imap_account, sent_folder="No Such Folder")
    with pytest.raises(ProviderError, match="append_sent") as caught:
        p.send(make_raw(), message_id="<m1@seqctl.test>")
    assert not isinstance(caught.value, TransientError | UndecidableError)
    assert mail_server.messages == []


def test_without_its_own_sent_copy_find_sent_never_answers_not_sent(mail_server, imap_account):
    p = provider(mail_server, imap_account, append_sent=False)
    p.send(make_raw(), message_id="<m1@seqctl.test>")
    assert len(mail_server.messages) == 1
    with pytest.raises(UndecidableError, match="append_sent"):
        p.find_sent("<m1@seqctl.test>")
    imap = imap_account.connect()       # the server filed a copy by itself: that is certain
    imap.create("Sent")
    imap.append("Sent", None, None, make_raw("<m2@seqctl.test>"))
    imap.logout()
    assert p.find_sent("<m2@seqctl.test>") is not None


def test_smtp_and_imap_declare_an_immediate_sent_lookup():
    assert SmtpProvider.sent_lookup_lag == 0


def test_a_non_ascii_password_is_a_clear_error_before_anything_is_sent(monkeypatch):
    monkeypatch.setenv("REP_SMTP_PASSWORD", "pässwörd-geheim")
    with SmtpTestServer(users={ADDRESS: "pässwörd-geheim"}) as server:
        with pytest.raises(ProviderError, match="non-ASCII") as caught:
            provider(server, password_env="REP_SMTP_PASSWORD").send(make_raw(), message_id="<m>")
        assert not isinstance(caught.value, TransientError | UndecidableError)
        assert "REP_SMTP_PASSWORD" in str(caught.value)
        assert "geheim" not in str(caught.value)
        assert server.messages == []


def test_a_non_ascii_imap_password_is_a_clear_error_when_syncing(monkeypatch):
    monkeypatch.setenv("SEQCTL_TEST_IMAP_PW", "pässwörd-geheim")
    p = provider(None, imap_host="127.0.0.1", imap_port=1, imap_security="none",
                 password_env="SEQCTL_TEST_IMAP_PW")
    with pytest.raises(ProviderError, match="non-ASCII") as caught:
        p.fetch_new("1:0")
    assert not isinstance(caught.value, TransientError)
    assert "geheim" not in str(caught.value)
    with pytest.raises(UndecidableError, match="non-ASCII"):
        p.find_sent("<m1@x>")


def test_a_rejected_login_never_quotes_the_password(monkeypatch):
    monkeypatch.setenv("REP_SMTP_PASSWORD", "hunter2-secret-value")
    with SmtpTestServer(users={ADDRESS: "hunter2"}) as server:
        with pytest.raises(AuthRevokedError) as caught:
            provider(server, password_env="REP_SMTP_PASSWORD").send(make_raw(), message_id="<m>")
        assert "hunter2-secret-value" not in str(caught.value)
        assert server.messages == []


def test_find_sent_without_imap_cannot_decide(smtp_server):
    with pytest.raises(UndecidableError, match="no IMAP"):
        provider(smtp_server).find_sent("<m1@x>")


# ------------------------------------------------------------------------------- IMAP sync

def inbound(n: int) -> bytes:
    return (f"From: ann@buyer.test\r\nTo: {ADDRESS}\r\nSubject: Re: hello {n}\r\n"
            f"Message-ID: <in{n}@buyer.test>\r\n\r\nreply {n}\r\n").encode()


def test_new_inbox_messages_are_fetched_once_and_the_cursor_advances(imap_account):
    p = provider(None, imap_account)
    append_to_inbox(imap_account, inbound(0))          # older than the first sync
    first = p.fetch_new(None)
    assert first.messages == [] and first.cursor is not None
    append_to_inbox(imap_account, inbound(1))
    append_to_inbox(imap_account, inbound(2))
    second = p.fetch_new(first.cursor)
    assert [m.raw for m in second.messages] == [inbound(1), inbound(2)]
    validity = second.cursor.split(":")[0]
    assert [m.provider_id for m in second.messages] == [f"{validity}:2", f"{validity}:3"]
    assert second.messages[0].received_at is not None
    assert second.cursor == f"{validity}:3"
    third = p.fetch_new(second.cursor)
    assert third.messages == [] and third.cursor == second.cursor
    # fetched with BODY.PEEK: still unread for the rep
    flags = [flags for flags, _ in folder_messages(imap_account, "INBOX")]
    assert all(b"\\Seen" not in f for f in flags)


def test_a_uidvalidity_change_resyncs_the_recent_messages(dovecot, imap_account):
    p = provider(None, imap_account)
    cursor = p.fetch_new(None).cursor
    append_to_inbox(imap_account, inbound(1))
    cursor = p.fetch_new(cursor).cursor
    old_validity = int(cursor.split(":")[0])
    dovecot.doveadm("mailbox", "update", "-u", imap_account.username,
                    "--uid-validity", str(old_validity + 7), "INBOX")
    append_to_inbox(imap_account, inbound(2))
    resynced = p.fetch_new(cursor)
    assert [m.raw for m in resynced.messages] == [inbound(1), inbound(2)]
    assert all(m.provider_id.startswith(f"{old_validity + 7}:") for m in resynced.messages)
    assert resynced.cursor.startswith(f"{old_validity + 7}:")
    assert p.fetch_new(resynced.cursor).messages == []


def test_sync_with_a_wrong_password_needs_reauth(monkeypatch):
    need_dovecot()
    # Its own server: Dovecot slows further logins from an address that failed one.
    with DovecotServer() as server:
        account = server.add_user()
        monkeypatch.setenv("SEQCTL_TEST_IMAP_PW", "wrong")
        with pytest.raises(AuthRevokedError, match="SEQCTL_TEST_IMAP_PW"):
            provider(None, account).fetch_new(None)


def test_sync_with_an_unreachable_imap_server_is_transient(monkeypatch):
    monkeypatch.setenv("SEQCTL_TEST_IMAP_PW", "x")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    p = provider(None, imap_host="127.0.0.1", imap_port=closed_port, imap_security="none",
                 password_env="SEQCTL_TEST_IMAP_PW")
    with pytest.raises(TransientError):
        p.fetch_new("1:0")


def test_sync_without_imap_returns_nothing(smtp_server):
    assert provider(smtp_server).fetch_new(None).messages == []


def test_the_fetched_message_is_the_stored_message(imap_account):
    p = provider(None, imap_account)
    cursor = p.fetch_new(None).cursor
    append_to_inbox(imap_account, inbound(5))
    [message] = p.fetch_new(cursor).messages
    assert BytesHeaderParser().parsebytes(message.raw)["Message-ID"] == "<in5@buyer.test>"


def test_imap_defaults_follow_the_port_and_smtp_security():
    def make(**config):
        return SmtpProvider(InboxInfo(id=1, address=ADDRESS, kind="smtp",
                                      config={"smtp_host": "h", **config}))
    assert make(imap_host="i").imap_security == "ssl"
    assert make(imap_host="i").imap_port == 993
    assert make(imap_host="i", imap_port=143, security="starttls").imap_security == "starttls"
    assert make(security="ssl").smtp_port == 465
    assert make().security == "starttls" and make().smtp_port == 587
    assert make(smtp_port=465).security == "ssl"
    assert make().username == ADDRESS

