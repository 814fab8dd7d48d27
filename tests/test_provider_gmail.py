"""The Gmail provider against a local fake of the Gmail API and Google's token endpoint."""

from __future__ import annotations

import base64
import json
import re
import socket
import stat
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
from fakes.gmail_server import GmailServer
from fakes.tls import make_self_signed

from seqctl.errors import SeqctlError
from seqctl.providers.base import (
    AuthRevokedError,
    InboxInfo,
    MessageRejectedError,
    ProviderError,
    RecipientRejectedError,
    SenderLimitError,
    TransientError,
    UndecidableError,
)
from seqctl.providers.calendar import gmail_booking
from seqctl.providers.gmail import (
    CALENDAR_READONLY,
    GMAIL_READONLY,
    GMAIL_SEND,
    GmailProvider,
    connect_gmail,
    import_gmail_credentials,
)
from seqctl.providers.oauth import (
    parse_retry_after,
    redact,
    retry_after_in_text,
    token_file_name,
    token_path,
)

ADDRESS = "rep@example.com"


def mime(message_id: str, subject: str = "Quick question", *, sender: str = ADDRESS,
         to: str = "ann@acme.test", extra: str = "", body: str = "Hi Ann,\r\n") -> bytes:
    return (
        f"From: Rep <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: {message_id}\r\nDate: Mon, 02 Mar 2026 09:00:00 +0000\r\n{extra}"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    ).encode()


@pytest.fixture
def gmail(monkeypatch):
    with GmailServer(address=ADDRESS, page_size=3) as server:
        monkeypatch.setenv("SEQCTL_GMAIL_API_URL", server.url)
        monkeypatch.setenv("SEQCTL_GCAL_API_URL", server.url)
        monkeypatch.setenv("SEQCTL_GOOGLE_TOKEN_URI", f"{server.url}/token")
        yield server


def write_token(home, server: GmailServer, *, scopes=None, expired=False) -> None:
    scopes = scopes or [GMAIL_SEND, GMAIL_READONLY]
    server.refresh_tokens["refresh-1"] = scopes
    expiry = datetime.now(UTC) + (timedelta(hours=-1) if expired else timedelta(hours=1))
    path = home / "tokens" / f"gmail-{ADDRESS}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "type": "authorized_user", "client_id": "client-id", "client_secret": "client-secret",
        "refresh_token": "refresh-1", "token": server.issue_access_token(scopes),
        "expiry": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "token_uri": "https://oauth2.googleapis.com/token", "scopes": scopes,
    }))


@pytest.fixture
def provider(tmp_path, gmail):
    write_token(tmp_path, gmail)
    return GmailProvider(InboxInfo(id=1, address=ADDRESS, kind="gmail", home=tmp_path),
                         timeout=5)


# -- sending ------------------------------------------------------------------------------


def test_send_arrives_with_the_same_bytes_and_reports_ids(provider, gmail):
    raw = mime("<m1@seqctl.test>")
    result = provider.send(raw, message_id="<m1@seqctl.test>")
    assert gmail.sent_raw() == [raw]
    assert gmail.deliveries["<m1@seqctl.test>"] == 1
    assert result.provider_message_id in gmail.messages
    assert result.thread_id == gmail.messages[result.provider_message_id].thread_id
    assert result.message_id == "<m1@seqctl.test>"


def test_a_reply_is_sent_into_the_thread(provider, gmail):
    first = provider.send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    reply = mime("<m2@seqctl.test>", "Re: Quick question",
                 extra="In-Reply-To: <m1@seqctl.test>\r\nReferences: <m1@seqctl.test>\r\n")
    second = provider.send(reply, message_id="<m2@seqctl.test>", thread_id=first.thread_id)
    sends = gmail.requests_to(r"messages/send$", "POST")
    assert sends[-1].json()["threadId"] == first.thread_id
    assert second.thread_id == first.thread_id


def test_an_expired_access_token_is_refreshed_and_saved_privately(provider, gmail, tmp_path):
    gmail.expire_tokens()
    provider.send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    assert len(gmail.requests_to(r"^/token$")) == 1
    token_file = tmp_path / "tokens" / f"gmail-{ADDRESS}.json"
    saved = json.loads(token_file.read_text())
    assert saved["token"] in gmail.access_tokens
    assert saved["refresh_token"] == "refresh-1"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert gmail.deliveries["<m1@seqctl.test>"] == 1


def test_a_token_past_its_expiry_is_refreshed_before_the_call(tmp_path, gmail):
    write_token(tmp_path, gmail, expired=True)
    provider = GmailProvider(InboxInfo(id=1, address=ADDRESS, kind="gmail", home=tmp_path))
    provider.fetch_new(None)
    assert len(gmail.requests_to(r"^/token$")) == 1
    assert len(gmail.requests_to(r"/profile$")) == 1        # no 401 round trip


def test_429_with_retry_after_is_transient_and_the_retry_succeeds(provider, gmail):
    gmail.fail_next(429, retry_after=1, times=1)
    with pytest.raises(TransientError) as caught:
        provider.send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    assert caught.value.retry_after == 1.0
    assert "429" in str(caught.value)
    result = provider.send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    assert result.provider_message_id
    assert gmail.deliveries["<m1@seqctl.test>"] == 1


def test_503_is_transient(provider, gmail):
    gmail.fail_next(503)
    with pytest.raises(TransientError) as caught:
        provider.fetch_new(None)
    assert caught.value.retry_after is None


def test_503_on_send_is_transient_and_the_retry_succeeds(provider, gmail):
    gmail.fail_next(503, path=r"messages/send$")
    with pytest.raises(TransientError) as caught:
        provider.send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    assert not isinstance(caught.value, UndecidableError)
    provider.send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    assert gmail.deliveries["<m1@seqctl.test>"] == 1


@pytest.mark.parametrize("status", [500, 502, 504])
def test_other_5xx_on_send_is_undecidable(provider, gmail, status):
    gmail.fail_next(status, path=r"messages/send$")
    with pytest.raises(UndecidableError) as caught:
        provider.send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    assert (f"the server answered {status} after the message was handed over; "
            "it may have been sent") in str(caught.value)


def test_502_on_a_read_stays_transient(provider, gmail):
    gmail.fail_next(502)
    with pytest.raises(TransientError) as caught:
        provider.fetch_new(None)
    assert not isinstance(caught.value, UndecidableError)


def test_gmail_declares_its_sent_lookup_lag():
    assert GmailProvider.sent_lookup_lag == 900


def test_a_refused_connection_is_transient(provider, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("SEQCTL_GMAIL_API_URL", f"http://127.0.0.1:{port}")
    with pytest.raises(TransientError):
        provider.fetch_new(None)


def test_a_revoked_grant_raises_auth_revoked_with_how_to_reconnect(provider, gmail):
    gmail.revoke()
    with pytest.raises(AuthRevokedError) as caught:
        provider.send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    assert "invalid_grant" in str(caught.value)
    assert "seqctl inbox connect gmail" in str(caught.value)
    assert gmail.deliveries["<m1@seqctl.test>"] == 0


def test_other_client_errors_carry_the_api_message(provider, gmail):
    gmail.fail_next(400, body={"error": {"code": 400, "message": "Precondition check failed.",
                                         "status": "FAILED_PRECONDITION"}})
    with pytest.raises(Exception) as caught:
        provider.send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    assert type(caught.value).__name__ == "ProviderError"
    assert "Precondition check failed." in str(caught.value)


def test_retry_after_reads_seconds_and_http_dates():
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True),
                             now=now) == 30.0
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None


# -- find_sent ----------------------------------------------------------------------------


def test_find_sent_finds_a_sent_message_by_message_id(provider, gmail):
    sent = provider.send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    found = provider.find_sent("<m1@seqctl.test>")
    assert found is not None
    assert found.provider_message_id == sent.provider_message_id
    assert found.thread_id == sent.thread_id
    query = gmail.requests_to(r"/users/me/messages$", "GET")[-1].arg("q")
    assert "rfc822msgid:m1@seqctl.test" in query


def test_find_sent_returns_none_when_it_was_not_sent(provider, gmail):
    gmail.deliver(mime("<m9@seqctl.test>", sender="ann@acme.test", to=ADDRESS))
    assert provider.find_sent("<m9@seqctl.test>") is None


def test_find_sent_is_undecidable_when_gmail_cannot_answer(provider, gmail):
    gmail.fail_next(503, times=5)
    with pytest.raises(UndecidableError):
        provider.find_sent("<m1@seqctl.test>")


def test_a_metadata_only_grant_scans_sent_instead_of_searching(tmp_path, gmail):
    write_token(tmp_path, gmail, scopes=[GMAIL_SEND, "https://www.googleapis.com/auth/gmail.metadata"])
    provider = GmailProvider(InboxInfo(id=1, address=ADDRESS, kind="gmail", home=tmp_path))
    provider.send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    assert provider.find_sent("<m1@seqctl.test>") is not None
    assert provider.find_sent("<never@seqctl.test>") is None
    assert all(r.arg("q") is None for r in gmail.requests_to(r"/users/me/messages$"))


# -- fetch_new ----------------------------------------------------------------------------


def test_the_first_fetch_returns_the_current_history_id_and_nothing_old(provider, gmail):
    gmail.deliver(mime("<old@acme.test>", sender="ann@acme.test", to=ADDRESS))
    result = provider.fetch_new(None)
    assert result.messages == []
    assert result.cursor == str(gmail.history_id)


def test_fetch_pages_through_history_and_skips_our_sent_mail(provider, gmail):
    cursor = provider.fetch_new(None).cursor
    provider.send(mime("<ours@seqctl.test>"), message_id="<ours@seqctl.test>")
    delivered = [
        gmail.deliver(mime(f"<in{i}@acme.test>", f"Re: hello {i}", sender="ann@acme.test",
                           to=ADDRESS, extra="In-Reply-To: <ours@seqctl.test>\r\n"))
        for i in range(5)
    ]
    result = provider.fetch_new(cursor)
    assert [m.provider_id for m in result.messages] == delivered
    assert len(gmail.requests_to(r"/history$")) >= 2                 # page size is 3
    assert result.cursor == str(gmail.history_id)
    first = result.messages[0]
    assert b"In-Reply-To: <ours@seqctl.test>" in first.raw
    assert b"Subject: Re: hello 0" in first.raw
    assert first.received_at is not None
    assert provider.fetch_new(result.cursor).messages == []


def test_a_bounce_is_fetched_whole_so_its_report_can_be_read(provider, gmail):
    cursor = provider.fetch_new(None).cursor
    bounce = (
        b"From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\r\nTo: rep@example.com\r\n"
        b"Subject: Delivery Status Notification (Failure)\r\nMessage-ID: <b1@google.test>\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=XX\r\n\r\n"
        b"--XX\r\nContent-Type: message/delivery-status\r\n\r\nStatus: 5.1.1\r\n--XX--\r\n"
    )
    gmail.deliver(bounce)
    reply = mime("<r1@acme.test>", "Re: hi", sender="ann@acme.test", to=ADDRESS)
    gmail.deliver(reply)
    messages = provider.fetch_new(cursor).messages
    assert messages[0].raw == bounce
    assert b"Status: 5.1.1" not in messages[1].raw and messages[1].raw.endswith(b"\r\n\r\n")
    raw_fetches = [r for r in gmail.requests_to(r"/messages/[0-9a-f]+$") if r.arg("format") == "raw"]
    assert len(raw_fetches) == 1


def test_history_404_recovers_with_a_bounded_resync(tmp_path, gmail):
    write_token(tmp_path, gmail)
    provider = GmailProvider(InboxInfo(id=1, address=ADDRESS, kind="gmail", home=tmp_path),
                             resync_limit=4)
    cursor = provider.fetch_new(None).cursor
    for i in range(6):
        gmail.deliver(mime(f"<in{i}@acme.test>", sender="ann@acme.test", to=ADDRESS))
    gmail.expire_history()
    result = provider.fetch_new(cursor)
    assert len(result.messages) == 4                                  # bounded
    assert result.cursor == str(gmail.history_id)
    listing = gmail.requests_to(r"/users/me/messages$")[0]
    assert listing.arg("q") == "newer_than:7d" and listing.arg("labelIds") == "INBOX"
    gmail.deliver(mime("<later@acme.test>", sender="ann@acme.test", to=ADDRESS))
    assert len(provider.fetch_new(result.cursor).messages) == 1


# -- connecting ---------------------------------------------------------------------------


def test_import_stores_authorized_user_json_privately(tmp_path):
    source = tmp_path / "creds.json"
    source.write_text(json.dumps({"type": "authorized_user", "client_id": "c",
                                  "client_secret": "s", "refresh_token": "r"}))
    path = import_gmail_credentials(ADDRESS, source, tmp_path / "home")
    assert path == tmp_path / "home" / "tokens" / f"gmail-{ADDRESS}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["refresh_token"] == "r"


@pytest.mark.parametrize("content, expected", [
    ("{not json", "not valid JSON"),
    (json.dumps({"client_id": "c", "client_secret": "s"}), 'missing field "refresh_token"'),
    (json.dumps({"client_secret": "s", "refresh_token": "r"}), 'missing field "client_id"'),
    (json.dumps({"installed": {"client_id": "c"}}), "client secrets file"),
])
def test_import_rejects_bad_credentials_with_one_line_naming_the_problem(tmp_path, content,
                                                                         expected):
    source = tmp_path / "creds.json"
    source.write_text(content)
    with pytest.raises(SeqctlError) as caught:
        import_gmail_credentials(ADDRESS, source, tmp_path)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "tokens").exists()


def test_import_strips_whitespace_around_tokens(tmp_path):
    source = tmp_path / "creds.json"
    source.write_text(json.dumps({"type": "authorized_user", "client_id": " c\n",
                                  "client_secret": "s\t", "refresh_token": "r\n",
                                  "token": "ya29.t\r\n"}))
    path = import_gmail_credentials(ADDRESS, source, tmp_path / "home")
    saved = json.loads(path.read_text())
    assert (saved["client_id"], saved["client_secret"], saved["refresh_token"],
            saved["token"]) == ("c", "s", "r", "ya29.t")


@pytest.mark.parametrize("field, value", [
    ("refresh_token", "1//abc def"), ("client_secret", "sec\nret"), ("token", "ya29.\x00x"),
])
def test_import_rejects_whitespace_or_control_characters_inside_a_token(tmp_path, field, value):
    info = {"type": "authorized_user", "client_id": "c", "client_secret": "s",
            "refresh_token": "r", field: value}
    source = tmp_path / "creds.json"
    source.write_text(json.dumps(info))
    with pytest.raises(SeqctlError) as caught:
        import_gmail_credentials(ADDRESS, source, tmp_path)
    assert f'field "{field}"' in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "tokens").exists()


def test_a_token_in_an_exception_text_never_reaches_the_error_message(tmp_path, gmail):
    # requests refuses a header value with a line break and quotes it ("Bearer ...").
    write_token(tmp_path, gmail)
    path = tmp_path / "tokens" / f"gmail-{ADDRESS}.json"
    info = json.loads(path.read_text())
    info["token"] = "ya29.SECRET\nSECRET2"
    path.write_text(json.dumps(info))
    provider = GmailProvider(InboxInfo(id=1, address=ADDRESS, kind="gmail", home=tmp_path))
    with pytest.raises(ProviderError) as caught:
        provider.send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    assert "SECRET" not in str(caught.value)
    assert "Bearer ***" in str(caught.value) or "encoded" in str(caught.value)
    assert gmail.deliveries["<m1@seqctl.test>"] == 0


def test_redact_masks_tokens_secrets_and_passwords():
    text = redact(
        "headers {'Authorization': 'Bearer ya29.SECRET1'} body "
        '{"access_token": "SECRET2", "refresh_token":"SECRET3", "client_secret": "SECRET4"} '
        "form grant_type=refresh_token&refresh_token=SECRET5&client_secret=SECRET6 "
        "password=SECRET7 user=a\x01auth=Bearer SECRET8\x01\x01 'password': 'SECRET9'"
    )
    assert "SECRET" not in text
    assert "grant_type=refresh_token" in text and "Bearer ***" in text
    assert redact("invalid_grant: Token has been expired or revoked.") == (
        "invalid_grant: Token has been expired or revoked.")


def test_redact_masks_token_fields_authorization_codes_and_xoauth2_strings():
    xoauth2 = base64.b64encode(b"user=rep@acme.test\x01auth=Bearer ya29.SECRET1\x01\x01").decode()
    text = redact(
        f'authorized user {{"token": "ya29.SECRET2", "expiry": "2026-03-02"}} '
        f"AUTH XOAUTH2 {xoauth2} then 535 5.7.8 for {xoauth2} "
        "GET /?state=xyz&code=4/0AX4XfWhSECRET3&scope=gmail.send "
        '{"code": "M.C105_BAY.2.SECRET4-abcdef"} token=SECRET5 '
        "{'device_code': 'SECRET6'}"
    )
    assert "SECRET" not in text and "dXNlcj" not in text
    assert "state=xyz" in text and "scope=gmail.send" in text and '"expiry": "2026-03-02"' in text
    # error codes are not secrets: they stay readable
    graph = '{"error": {"code": "ErrorExceededMessageLimit", "message": "limit"}}'
    assert redact(graph) == graph
    assert redact("HTTP status code=500") == "HTTP status code=500"


@pytest.mark.parametrize("address, name", [
    ("Rep@Acme.test", "gmail-rep@acme.test.json"),            # ordinary names stay readable
    ("first.last+tag@acme.test", "gmail-first.last+tag@acme.test.json"),
    ("../../etc/passwd@x.test", "gmail-..%2F..%2Fetc%2Fpasswd@x.test.json"),
    ("a\\b@x.test", "gmail-a%5Cb@x.test.json"),
    ("o'brien@x.test", "gmail-o%27brien@x.test.json"),
    ("a%2Fb@x.test", "gmail-a%252fb@x.test.json"),            # no two addresses share a name
    ("nul\x00@x.test", "gmail-nul%00@x.test.json"),
])
def test_token_file_names_come_from_a_safe_encoding_of_the_address(tmp_path, address, name):
    assert token_file_name("gmail", address) == name
    path = token_path(tmp_path, "gmail", address)
    assert path.parent == tmp_path / "tokens" and path.name == name


def test_a_very_long_address_still_gets_a_short_unique_token_file_name():
    first, second = (token_file_name("gmail", "x" * 300 + f"{n}@acme.test") for n in (1, 2))
    assert first != second and len(first.encode()) < 255 and len(second.encode()) < 255


def test_a_token_saved_under_the_old_raw_name_is_moved_to_the_encoded_one(tmp_path):
    (tmp_path / "tokens").mkdir()
    (tmp_path / "tokens" / "gmail-o'brien@x.test.json").write_text("{}")
    path = token_path(tmp_path, "gmail", "o'brien@x.test")
    assert path.name == "gmail-o%27brien@x.test.json" and path.read_text() == "{}"
    assert not (tmp_path / "tokens" / "gmail-o'brien@x.test.json").exists()


def test_connect_gmail_runs_the_local_redirect_flow(tmp_path, monkeypatch):
    tls = make_self_signed(tmp_path / "tls")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.cert))
    with GmailServer(address=ADDRESS, tls=tls) as server:
        monkeypatch.setenv("SEQCTL_GMAIL_API_URL", server.url)
        monkeypatch.setenv("SEQCTL_GOOGLE_TOKEN_URI", f"{server.url}/token")
        secrets = tmp_path / "client_secret.json"
        secrets.write_text(json.dumps({"installed": {
            "client_id": "client-id", "client_secret": "client-secret",
            "auth_uri": f"{server.url}/o/oauth2/auth",
            "token_uri": "https://oauth2.googleapis.com/token",
            "redirect_uris": ["http://localhost"],
        }}))
        printed: list[str] = []
        browser_result: dict[str, object] = {}

        def browser(text: str) -> None:
            printed.append(text)
            url = re.search(r"https://\S+", text).group(0)
            # The "user" opens the URL and clicks Allow: the fake redirects back to us.
            threading.Thread(
                target=lambda: browser_result.update(page=requests.get(url, timeout=5)),
                daemon=True,
            ).start()

        address, path = connect_gmail(secrets, tmp_path / "home", open_browser=False,
                                      calendar=True, printer=browser, timeout_seconds=5)
    assert address == ADDRESS
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved["refresh_token"].startswith("refresh-")
    assert set(saved["scopes"]) == {GMAIL_SEND, GMAIL_READONLY, CALENDAR_READONLY}
    port = re.search(r"localhost:(\d+)", printed[0]).group(1)
    assert f"ssh -L {port}:localhost:{port}" in printed[0]
    assert browser_result["page"].status_code == 200
    auth_request = server.requests_to(r"/o/oauth2/auth$")[0]
    assert auth_request.arg("access_type") == "offline"


# -- calendar -----------------------------------------------------------------------------


def test_gmail_booking_sees_a_new_event_with_the_contact(tmp_path, gmail):
    write_token(tmp_path, gmail, scopes=[GMAIL_SEND, GMAIL_READONLY, CALENDAR_READONLY])
    inbox = InboxInfo(id=1, address=ADDRESS, kind="gmail", home=tmp_path)
    since = datetime(2026, 3, 1, tzinfo=UTC)
    gmail.events.append({"id": "e1", "status": "confirmed", "created": "2026-03-03T10:00:00Z",
                         "attendees": [{"email": "Ann@acme.test"}, {"email": ADDRESS}]})
    assert gmail_booking(inbox, "ann@acme.test", since)
    assert not gmail_booking(inbox, "bob@acme.test", since)
    assert not gmail_booking(inbox, "ann@acme.test", datetime(2026, 3, 4, tzinfo=UTC))


def test_bcc_recipients_go_in_a_bcc_header_for_gmail_to_deliver(provider, gmail):
    raw = mime("<m1@seqctl.test>")
    provider.send(raw, message_id="<m1@seqctl.test>", bcc=["crm@acme.test", "boss@acme.test"])
    assert gmail.sent_raw() == [b"Bcc: crm@acme.test, boss@acme.test\r\n" + raw]


def test_a_send_that_times_out_after_reaching_gmail_is_undecidable(tmp_path, gmail):
    write_token(tmp_path, gmail)
    provider = GmailProvider(InboxInfo(id=1, address=ADDRESS, kind="gmail", home=tmp_path),
                             timeout=0.3)
    gmail.delay_next(0.8, path=r"messages/send$")
    with pytest.raises(UndecidableError):
        provider.send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    time.sleep(0.6)
    assert gmail.deliveries["<m1@seqctl.test>"] == 1          # it did go through
    assert provider.find_sent("<m1@seqctl.test>") is not None  # and reconcile sees it


# -- whose problem a refusal is -----------------------------------------------------------


def google_error(status: int, reason: str, message: str) -> dict:
    """An error body as Gmail writes it (developers.google.com/gmail/api/guides/handle-errors)."""
    return {"error": {"code": status, "message": message, "status": "RESOURCE_EXHAUSTED",
                      "errors": [{"domain": "usageLimits", "reason": reason,
                                  "message": message}]}}


@pytest.mark.parametrize("status", [403, 429])
@pytest.mark.parametrize("reason, daily", [
    ("dailyLimitExceeded", True),
    ("userRateLimitExceeded", False),
    ("rateLimitExceeded", False),
])
def test_the_mailbox_limits_are_the_senders_problem(provider, gmail, status, reason, daily):
    gmail.fail_next(status, path=r"messages/send$",
                    body=google_error(status, reason, "Limit exceeded"))
    with pytest.raises(SenderLimitError) as caught:
        provider.send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    assert caught.value.daily is daily and caught.value.until is None
    assert "Limit exceeded" in str(caught.value)
    assert gmail.deliveries["<m1@seqctl.test>"] == 0


@pytest.mark.parametrize("status", [403, 429])
def test_retry_after_in_the_message_names_when_the_limit_ends(provider, gmail, status):
    gmail.fail_next(status, path=r"messages/send$", body=google_error(
        status, "rateLimitExceeded",
        "User-rate limit exceeded.  Retry after 2026-03-02T15:30:00.000Z"))
    with pytest.raises(SenderLimitError) as caught:
        provider.send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    assert caught.value.until == datetime(2026, 3, 2, 15, 30, tzinfo=UTC)


def test_retry_after_in_the_message_alone_is_a_sender_limit(provider, gmail):
    gmail.fail_next(403, path=r"messages/send$", body=google_error(
        403, "forbidden", "Sending limit reached. Retry after 2026-03-03T09:00:00Z"))
    with pytest.raises(SenderLimitError) as caught:
        provider.send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    assert caught.value.until == datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


def test_429_without_a_quota_reason_stays_a_plain_transient_error(provider, gmail):
    gmail.fail_next(429, retry_after=3, path=r"messages/send$")
    with pytest.raises(TransientError) as caught:
        provider.send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    assert not isinstance(caught.value, SenderLimitError)
    assert caught.value.retry_after == 3


def test_an_invalid_recipient_is_the_recipients_problem(provider, gmail):
    gmail.fail_next(400, path=r"messages/send$", body={"error": {
        "code": 400, "message": "Invalid To header", "status": "INVALID_ARGUMENT",
        "errors": [{"reason": "invalidArgument", "message": "Invalid To header"}]}})
    with pytest.raises(RecipientRejectedError, match="Invalid To header"):
        provider.send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")


def test_a_message_too_large_is_the_messages_problem(provider, gmail):
    gmail.fail_next(413, path=r"messages/send$", body={"error": {
        "code": 413, "message": "Request payload size exceeds the limit: 36700160 bytes."}})
    with pytest.raises(MessageRejectedError, match="exceeds the limit"):
        provider.send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")


def test_a_rate_limit_while_reading_is_transient_for_sync(provider, gmail):
    gmail.fail_next(429, path=r"/history$|/profile$",
                    body=google_error(429, "rateLimitExceeded", "Too many requests"))
    with pytest.raises(TransientError):
        provider.fetch_new(None)


def test_retry_after_text_is_read_as_utc():
    assert retry_after_in_text("Retry after 2026-03-02T15:30:00.000Z") == datetime(
        2026, 3, 2, 15, 30, tzinfo=UTC)
    assert retry_after_in_text("retry after 2026-03-02T16:30:00+01:00") == datetime(
        2026, 3, 2, 15, 30, tzinfo=UTC)
    assert retry_after_in_text("Retry later") is None
    assert retry_after_in_text("Retry after 2026-13-40T99:99:99Z") is None
