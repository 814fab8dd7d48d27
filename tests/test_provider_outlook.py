"""The Outlook provider against local fakes of Microsoft Graph and the Microsoft identity
platform (https, self-signed certificate trusted through REQUESTS_CA_BUNDLE)."""

from __future__ import annotations

import base64
import json
import stat
from datetime import UTC, datetime, timedelta

import pytest
from fakes.graph_server import GraphServer
from fakes.ms_identity import MSIdentityServer
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
from seqctl.providers.calendar import outlook_booking
from seqctl.providers.outlook import OutlookProvider, connect_outlook

ADDRESS = "rep@contoso.com"
CLIENT_ID = "ms-client-id"


def mime(message_id: str, subject: str = "Quick question", *, sender: str = ADDRESS,
         to: str = "ann@acme.test", extra: str = "") -> bytes:
    return (
        f"From: Rep <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: {message_id}\r\n{extra}MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\nHi Ann,\r\n"
    ).encode()


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def identity(tls, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.cert))
    with MSIdentityServer(client_id=CLIENT_ID, username=ADDRESS, tls=tls) as server:
        monkeypatch.setenv("SEQCTL_MS_AUTHORITY", server.url)
        yield server


@pytest.fixture
def graph(identity, monkeypatch):
    with GraphServer(identity=identity, address=ADDRESS, page_size=3) as server:
        monkeypatch.setenv("SEQCTL_GRAPH_API_URL", f"{server.url}/v1.0")
        yield server


@pytest.fixture
def home(tmp_path, identity, graph):
    """A home with a connected Outlook inbox (through the real device-code flow)."""
    connect_outlook(CLIENT_ID, "common", tmp_path, printer=lambda text: None)
    return tmp_path


def make_provider(home, **kwargs) -> OutlookProvider:
    inbox = InboxInfo(id=2, address=ADDRESS, kind="outlook",
                      config={"client_id": CLIENT_ID, "tenant": "common"}, home=home)
    kwargs.setdefault("sent_lookup_delay", 0)
    kwargs.setdefault("timeout", 5)
    return OutlookProvider(inbox, **kwargs)


# -- connecting ---------------------------------------------------------------------------


def test_device_code_flow_prints_the_code_and_stores_the_cache_privately(tmp_path, identity,
                                                                          graph):
    identity.pending_polls = 0
    printed: list[str] = []
    address, path = connect_outlook(CLIENT_ID, "common", tmp_path, printer=printed.append)
    assert address == ADDRESS
    assert path == tmp_path / "tokens" / f"outlook-{ADDRESS}.json"
    assert "https://microsoft.com/devicelogin" in printed[0] and "FAKE" in printed[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cache = json.loads(path.read_text())
    assert cache["RefreshToken"] and cache["Account"]
    scope = identity.requests_to(r"/devicecode$")[0].form()["scope"]
    assert {"Mail.Send", "Mail.Read", "User.Read", "offline_access"} <= set(scope.split())
    assert "Calendars.Read" not in scope


def test_device_code_flow_with_an_unknown_client_fails_in_one_line(tmp_path, identity, graph):
    with pytest.raises(SeqctlError) as caught:
        connect_outlook("someone-else", "common", tmp_path, printer=lambda text: None)
    assert "unauthorized_client" in str(caught.value)
    assert "\n" not in str(caught.value)


# -- sending ------------------------------------------------------------------------------


def test_send_posts_base64_mime_and_finds_the_sent_item(home, graph):
    raw = mime("<m1@seqctl.test>")
    result = make_provider(home).send(raw, message_id="<m1@seqctl.test>")
    assert graph.sent_mime == [raw]
    posted = graph.requests_to(r"/me/sendMail$", "POST")[0]
    assert posted.headers["content-type"] == "text/plain"
    assert base64.b64decode(posted.body) == raw
    assert graph.deliveries["<m1@seqctl.test>"] == 1
    assert result.provider_message_id == graph.sent[0].id
    assert result.thread_id == graph.sent[0].conversation_id
    assert result.message_id == "<m1@seqctl.test>"


def test_send_waits_briefly_for_the_sent_copy_then_gives_up_gracefully(home, graph):
    graph.sent_item_delay = 1
    found = make_provider(home).send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    assert found.provider_message_id == graph.sent[0].id
    graph.sent_item_delay = 10
    missing = make_provider(home, sent_lookup_tries=2).send(
        mime("<m2@seqctl.test>"), message_id="<m2@seqctl.test>")
    assert missing.provider_message_id == "" and missing.thread_id is None
    assert missing.message_id == "<m2@seqctl.test>"
    assert graph.deliveries["<m2@seqctl.test>"] == 1


def test_a_reply_threads_by_its_headers(home, graph):
    provider = make_provider(home)
    first = provider.send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    reply = mime("<m2@seqctl.test>", "Re: Quick question",
                 extra="In-Reply-To: <m1@seqctl.test>\r\nReferences: <m1@seqctl.test>\r\n")
    second = provider.send(reply, message_id="<m2@seqctl.test>", thread_id=first.thread_id)
    assert second.thread_id == first.thread_id


def test_an_expired_access_token_is_refreshed_once_and_the_cache_saved(home, identity, graph):
    identity.expire_access_tokens()
    before = (home / "tokens" / f"outlook-{ADDRESS}.json").read_text()
    make_provider(home).send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    refreshes = [r for r in identity.requests_to(r"/token$")
                 if r.form().get("grant_type") == "refresh_token"]
    assert len(refreshes) == 1
    token_file = home / "tokens" / f"outlook-{ADDRESS}.json"
    assert token_file.read_text() != before
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert graph.deliveries["<m1@seqctl.test>"] == 1


def test_429_with_retry_after_is_transient_and_the_retry_succeeds(home, graph):
    provider = make_provider(home)
    graph.fail_next(429, retry_after=2, path=r"/sendMail$")
    with pytest.raises(TransientError) as caught:
        provider.send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    assert caught.value.retry_after == 2.0
    assert graph.deliveries["<m1@seqctl.test>"] == 0
    provider.send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    assert graph.deliveries["<m1@seqctl.test>"] == 1


@pytest.mark.parametrize("status", [503, 504])
def test_503_and_504_are_transient(home, graph, status):
    graph.fail_next(status)
    with pytest.raises(TransientError):
        make_provider(home).fetch_new(None)


def test_503_on_send_is_retried_later(home, graph):
    graph.fail_next(503, path=r"/sendMail$")
    with pytest.raises(TransientError) as caught:
        make_provider(home).send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    assert not isinstance(caught.value, UndecidableError)


@pytest.mark.parametrize("status", [500, 502, 504])
def test_other_5xx_on_send_is_undecidable(home, graph, status):
    graph.fail_next(status, path=r"/sendMail$")
    with pytest.raises(UndecidableError) as caught:
        make_provider(home).send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    assert f"the server answered {status} after the message was handed over" in str(caught.value)
    assert "it may have been sent" in str(caught.value)


def test_a_revoked_grant_raises_auth_revoked_with_how_to_reconnect(home, identity, graph):
    identity.revoke()
    with pytest.raises(AuthRevokedError) as caught:
        make_provider(home).send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    assert "invalid_grant" in str(caught.value)
    assert f"seqctl inbox connect outlook --client-id {CLIENT_ID}" in str(caught.value)
    assert graph.deliveries["<m1@seqctl.test>"] == 0


def test_a_missing_token_file_needs_reconnecting(tmp_path, identity, graph):
    with pytest.raises(AuthRevokedError):
        make_provider(tmp_path).fetch_new(None)


def test_graph_client_errors_carry_the_api_message(home, graph):
    graph.fail_next(400, path=r"/sendMail$", body={"error": {
        "code": "ErrorInvalidRecipients", "message": "At least one recipient is not valid."}})
    with pytest.raises(ProviderError) as caught:
        make_provider(home).send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    assert not isinstance(caught.value, TransientError)
    assert "At least one recipient is not valid." in str(caught.value)


# -- find_sent ----------------------------------------------------------------------------


def test_find_sent_finds_and_does_not_find(home, graph):
    provider = make_provider(home)
    sent = provider.send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    assert provider.find_sent("<m1@seqctl.test>") == sent
    assert provider.find_sent("<other@seqctl.test>") is None
    lookup = graph.requests_to(r"/me/messages$")[-1]           # every folder, not Sent Items
    assert lookup.arg("$filter") == "internetMessageId eq '<other@seqctl.test>'"


def test_find_sent_sees_a_message_still_waiting_in_the_outbox(home, graph):
    graph.hold_in_outbox = True
    provider = make_provider(home, sent_lookup_tries=1)
    result = provider.send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    assert result.provider_message_id == ""          # not in Sent Items yet
    assert graph.sent == [] and len(graph.outbox) == 1
    found = provider.find_sent("<m1@seqctl.test>")
    assert found is not None and found.provider_message_id == graph.outbox[0].id
    graph.release_outbox()
    assert provider.find_sent("<m1@seqctl.test>") is not None


def test_outlook_declares_its_sent_lookup_lag():
    assert OutlookProvider.sent_lookup_lag == 900


def test_find_sent_is_undecidable_when_graph_cannot_answer(home, graph):
    graph.fail_next(503, times=3)
    with pytest.raises(UndecidableError):
        make_provider(home).find_sent("<m1@seqctl.test>")


# -- fetch_new ----------------------------------------------------------------------------


def test_the_first_fetch_keeps_a_delta_link_and_returns_nothing_old(home, graph):
    graph.deliver(mime("<old@acme.test>", sender="ann@acme.test", to=ADDRESS),
                  received_at=datetime.now(UTC) - timedelta(days=2))
    result = make_provider(home).fetch_new(None)
    assert result.messages == []
    assert "$deltatoken=" in result.cursor or "%24deltatoken=" in result.cursor
    first = graph.requests_to(r"/delta$")[0]
    assert first.arg("changeType") == "created"
    assert first.arg("$filter").startswith("receivedDateTime ge ")


def test_fetch_follows_next_links_and_reads_each_message_as_mime(home, graph):
    provider = make_provider(home)
    cursor = provider.fetch_new(None).cursor
    raws = [mime(f"<in{i}@acme.test>", f"Re: hi {i}", sender="ann@acme.test", to=ADDRESS)
            for i in range(5)]
    ids = [graph.deliver(raw) for raw in raws]
    result = provider.fetch_new(cursor)
    assert [m.provider_id for m in result.messages] == ids
    assert [m.raw for m in result.messages] == raws
    assert result.messages[0].thread_id == graph.inbox[0].conversation_id
    assert result.messages[0].received_at is not None
    assert len(graph.requests_to(r"/delta$")) >= 3                 # initial + 2 pages
    assert provider.fetch_new(result.cursor).messages == []


def test_an_expired_delta_link_recovers_with_a_bounded_resync(home, graph):
    provider = make_provider(home, resync_limit=2)
    cursor = provider.fetch_new(None).cursor
    now = datetime.now(UTC)
    graph.deliver(mime("<ancient@acme.test>", sender="ann@acme.test", to=ADDRESS),
                  received_at=now - timedelta(days=30))
    recent = [graph.deliver(mime(f"<r{i}@acme.test>", sender="ann@acme.test", to=ADDRESS),
                            received_at=now - timedelta(hours=5 - i)) for i in range(4)]
    graph.expire_delta()
    result = provider.fetch_new(cursor)
    assert [m.provider_id for m in result.messages] == [recent[3], recent[2]]   # newest, bounded
    graph.deliver(mime("<later@acme.test>", sender="ann@acme.test", to=ADDRESS))
    assert len(provider.fetch_new(result.cursor).messages) == 1


# -- calendar -----------------------------------------------------------------------------


def test_outlook_booking_sees_a_new_meeting_with_the_contact(home, graph):
    inbox = InboxInfo(id=2, address=ADDRESS, kind="outlook",
                      config={"client_id": CLIENT_ID}, home=home)
    since = datetime(2026, 3, 1, tzinfo=UTC)
    graph.events.append({"id": "e1", "isCancelled": False,
                         "createdDateTime": "2026-03-03T10:00:00.0000000Z",
                         "attendees": [{"emailAddress": {"address": "Ann@acme.test"}}],
                         "organizer": {"emailAddress": {"address": ADDRESS}}})
    assert outlook_booking(inbox, "ann@acme.test", since)
    assert not outlook_booking(inbox, "bob@acme.test", since)


def test_bcc_recipients_go_in_the_mime_for_exchange_to_deliver(home, graph):
    raw = mime("<m1@seqctl.test>")
    make_provider(home).send(raw, message_id="<m1@seqctl.test>", bcc=["crm@acme.test"])
    assert graph.sent_mime == [b"Bcc: crm@acme.test\r\n" + raw]


# -- links to other hosts -----------------------------------------------------------------


@pytest.fixture
def elsewhere(tls):
    """A second server on another port: a host the access token must never reach."""
    with GraphServer(address=ADDRESS, tls=tls) as server:
        yield server


def test_a_next_link_to_another_host_is_not_followed(home, graph, elsewhere):
    provider = make_provider(home)
    cursor = provider.fetch_new(None).cursor
    for i in range(5):                                   # page size 3: a nextLink is needed
        graph.deliver(mime(f"<in{i}@acme.test>", sender="ann@acme.test", to=ADDRESS))
    graph.link_base = f"{elsewhere.url}/v1.0"
    with pytest.raises(ProviderError) as caught:
        provider.fetch_new(cursor)
    assert not isinstance(caught.value, TransientError)
    assert "refusing to follow" in str(caught.value)
    assert elsewhere.requests == []


def test_a_stored_delta_link_for_another_host_starts_a_fresh_round(home, graph, elsewhere):
    provider = make_provider(home)
    cursor = provider.fetch_new(None).cursor
    foreign = cursor.replace(graph.url, elsewhere.url)
    assert foreign != cursor
    graph.deliver(mime("<in1@acme.test>", sender="ann@acme.test", to=ADDRESS))
    result = provider.fetch_new(foreign)
    assert [m.raw for m in result.messages] == [
        mime("<in1@acme.test>", sender="ann@acme.test", to=ADDRESS)]
    assert result.cursor.startswith(graph.url)
    assert elsewhere.requests == []


def test_under_seqctl_now_the_delta_filter_and_the_resync_window_use_seqctl_s_clock(
        home, graph, monkeypatch):
    # A simulation months before the machine's date: a reply of that simulated morning must
    # be inside the resync window, and a new round starts at the simulated now.
    monkeypatch.setenv("SEQCTL_NOW", "2026-03-02T12:00:00Z")
    simulated = datetime(2026, 3, 2, 12, tzinfo=UTC)
    provider = make_provider(home)
    cursor = provider.fetch_new(None).cursor
    assert graph.requests_to(r"/delta$")[0].arg("$filter") == (
        "receivedDateTime ge 2026-03-02T12:00:00Z")
    reply = graph.deliver(mime("<reply@acme.test>", "Re: Quick question",
                               sender="ann@acme.test", to=ADDRESS),
                          received_at=simulated - timedelta(hours=2))
    graph.deliver(mime("<too-old@acme.test>", sender="ann@acme.test", to=ADDRESS),
                  received_at=simulated - timedelta(days=8))
    graph.expire_delta()
    result = provider.fetch_new(cursor)
    assert [m.provider_id for m in result.messages] == [reply]
    resync = graph.requests_to(r"/delta$")[-1]
    assert resync.arg("$filter") == "receivedDateTime ge 2026-02-23T12:00:00Z"


# -- whose problem a refusal is -----------------------------------------------------------


def graph_error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def test_429_is_the_mailboxs_limit_with_its_retry_after(home, graph):
    graph.fail_next(429, retry_after=120, path=r"/sendMail$", body=graph_error(
        "ApplicationThrottled", "Application is over its MailboxConcurrency limit."))
    with pytest.raises(SenderLimitError) as caught:
        make_provider(home).send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    assert caught.value.retry_after == 120 and not caught.value.daily
    assert graph.sent == []


def test_the_daily_message_limit_pauses_the_mailbox_for_a_day(home, graph):
    graph.fail_next(403, path=r"/sendMail$", body=graph_error(
        "ErrorExceededMessageLimit",
        "Cannot send mail. The message exceeds the limit of messages you can send per day."))
    with pytest.raises(SenderLimitError) as caught:
        make_provider(home).send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    assert caught.value.daily and "per day" in str(caught.value)


def test_mailbox_concurrency_is_a_rate_limit(home, graph):
    graph.fail_next(400, path=r"/sendMail$", body=graph_error(
        "MailboxConcurrency", "The mailbox is busy; try again later."))
    with pytest.raises(SenderLimitError) as caught:
        make_provider(home).send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
    assert not caught.value.daily


def test_invalid_recipients_are_the_recipients_problem(home, graph):
    graph.fail_next(400, path=r"/sendMail$", body=graph_error(
        "ErrorInvalidRecipients", "At least one recipient is not valid."))
    with pytest.raises(RecipientRejectedError, match="not valid"):
        make_provider(home).send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")


def test_a_message_over_the_size_limit_is_the_messages_problem(home, graph):
    graph.fail_next(400, path=r"/sendMail$", body=graph_error(
        "ErrorMessageSizeExceeded", "The message exceeds the maximum supported size."))
    with pytest.raises(MessageRejectedError, match="maximum supported size"):
        make_provider(home).send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")


def test_send_as_denied_is_an_authorization_problem(home, graph):
    graph.fail_next(403, path=r"/sendMail$", body=graph_error(
        "ErrorSendAsDenied", "The user account which was used to submit this request does "
                             "not have the right to send mail on behalf of the specified "
                             "sending account."))
    with pytest.raises(AuthRevokedError, match="may not send as"):
        make_provider(home).send(mime("<m1@seqctl.test>"), message_id="<m1@seqctl.test>")
