"""`seqctl serve` over real HTTP on 127.0.0.1: one-click unsubscribe, the confirmation page,
the open pixel, click redirects, refusals, and a bounded load test."""

from __future__ import annotations

import email
import email.policy
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
import uvicorn

from seqctl import clock, config
from seqctl.engine import links as signed
from seqctl.server import PIXEL, make_app
from tests.conftest import ROOT
from tests.helpers import apply_yaml, enroll_all, tick
from tests.test_analytics import CONTACTS, T0, TRACKED, key, links, sent_raw, setup_tracked

ANN, BOB = CONTACTS[0], CONTACTS[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serving(app, port: int):
    """Run `app` under uvicorn in a thread until the generator is closed."""
    instance = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                             log_level="warning", lifespan="off"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not instance.started:
        if time.monotonic() > deadline:
            pytest.fail("server did not start")
        time.sleep(0.02)
    yield
    instance.should_exit = True
    thread.join(10)


@pytest.fixture
def server(home):
    """`seqctl serve`'s app under uvicorn in a thread; yields its base URL."""
    port = _free_port()
    running = _serving(make_app(config.db_path(), key()), port)
    next(running)
    yield f"http://127.0.0.1:{port}"
    next(running, None)


@pytest.fixture
def sent(home, server):
    """Two contacts sent the tracked first email, its links pointing at the server."""
    db = setup_tracked(home, base_url=server, contacts=[ANN, BOB])
    return db, {address: links(sent_raw(db, address, 1)) for address in (ANN, BOB)}


def _count(db, sql: str, params=()) -> int:
    return db.execute(sql, list(params)).fetchone()[0]


def _state(db, address: str) -> tuple:
    suppressed = db.execute("SELECT reason FROM suppressions WHERE email = ?",
                            [address]).fetchone()
    enrollments = db.execute(
        "SELECT e.status, e.exit_reason FROM enrollments e JOIN contacts c "
        "ON c.id = e.contact_id WHERE c.email = ? ORDER BY e.id", [address]).fetchall()
    return (suppressed[0] if suppressed else None), enrollments


def test_healthz(server):
    assert httpx.get(f"{server}/healthz").status_code == 200


def test_one_click_post_as_gmail_sends_it_multipart_suppresses_and_exits_everywhere(
        home, sent, server):
    db, mail = sent
    # ann is also in a second sequence: the unsubscribe exits that one too
    apply_yaml(db, TRACKED.replace("name: numbers", "name: other"), T0)
    enroll_all(db, "other", [ANN], T0)
    url = mail[ANN]["unsubscribe"]
    response = httpx.post(url, files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    assert response.request.headers["content-type"].startswith("multipart/form-data")
    assert "set-cookie" not in response.headers and not response.history
    assert "unsubscribed" in response.text.lower()
    assert _state(db, ANN) == ("unsubscribed", [("exited", "unsubscribed")] * 2)
    assert _state(db, BOB) == (None, [("active", None)])
    assert _count(db, "SELECT COUNT(*) FROM events WHERE kind = 'unsubscribe'") == 1
    # Gmail may retry: a second POST is fine and records nothing new
    assert httpx.post(url, files={"List-Unsubscribe": (None, "One-Click")}).status_code == 200
    assert _count(db, "SELECT COUNT(*) FROM events WHERE kind = 'unsubscribe'") == 1


def test_one_click_post_urlencoded_suppresses_and_exits(sent):
    db, mail = sent
    response = httpx.post(mail[BOB]["unsubscribe"], content=b"List-Unsubscribe=One-Click",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200 and "set-cookie" not in response.headers
    assert _state(db, BOB) == ("unsubscribed", [("exited", "unsubscribed")])
    assert _state(db, ANN) == (None, [("active", None)])


def test_get_shows_a_button_and_only_pressing_it_unsubscribes(sent):
    db, mail = sent
    url = mail[ANN]["unsubscribe"]
    for _ in range(3):      # link scanners fetch it, maybe more than once
        page = httpx.get(url)
        assert page.status_code == 200
        assert httpx.head(url).status_code == 200
    assert _state(db, ANN) == (None, [("active", None)])
    assert _count(db, "SELECT COUNT(*) FROM events WHERE kind = 'unsubscribe'") == 0
    assert '<form method="post">' in page.text
    assert 'name="List-Unsubscribe" value="One-Click"' in page.text
    # the button: a browser posts the form to the same URL
    pressed = httpx.post(url, data={"List-Unsubscribe": "One-Click"})
    assert pressed.status_code == 200
    assert _state(db, ANN) == ("unsubscribed", [("exited", "unsubscribed")])


def test_a_post_without_the_one_click_body_changes_nothing(sent):
    db, mail = sent
    assert httpx.post(mail[ANN]["unsubscribe"], data={"x": "y"}).status_code == 400
    assert _state(db, ANN) == (None, [("active", None)])


def _tampered(url: str) -> str:
    head, _, last = url.rpartition("/")
    payload, _, mac = last.rpartition(".")
    flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    return f"{head}/{flipped}.{mac}"


def test_forged_altered_and_misused_tokens_get_404_and_record_nothing(sent, server):
    db, mail = sent
    ann, bob = mail[ANN], mail[BOB]
    ann_token = ann["unsubscribe"].rsplit("/", 1)[1]
    bob_token = bob["unsubscribe"].rsplit("/", 1)[1]
    ann_message = signed.verify("u", ann_token, key=key()).message_id
    refused = [
        ("post", _tampered(ann["unsubscribe"])),                        # altered payload
        ("post", ann["unsubscribe"][:-1] + ("0" if ann["unsubscribe"][-1] != "0" else "1")),
        ("post", f"{server}/u/{ann_token.split('.')[0]}.{bob_token.split('.')[1]}"),  # spliced
        ("post", f"{server}/u/{ann['pixel'].rsplit('/', 1)[1]}"),        # an open token
        ("post", f"{server}/u/not-a-token"),
        ("post", f"{server}/u/%C3%A9t%C3%A9.abc"),                        # not ASCII
        ("post", signed.link(server, "u", "<nobody@example.test>", key=key())),   # no such email
        ("get", _tampered(ann["pixel"])),
        ("get", f"{server}/o/{ann_token}"),                              # an unsubscribe token
        ("get", _tampered(ann["clicks"]["https://acme.test/demo"])),
        ("get", f"{server}/c/{ann['pixel'].rsplit('/', 1)[1]}"),
        # correctly signed, but the URL is not in that email: no open redirect
        ("get", signed.link(server, "c", ann_message, "https://evil.test/login", key=key())),
        ("get", f"{server}/x/{ann_token}"),
    ]
    before = _count(db, "SELECT COUNT(*) FROM events")
    for method, url in refused:
        if method == "post":
            response = httpx.post(url, data={"List-Unsubscribe": "One-Click"})
        else:
            response = httpx.get(url)
        assert response.status_code == 404, url
        assert "location" not in response.headers
    assert _count(db, "SELECT COUNT(*) FROM events") == before
    assert _count(db, "SELECT COUNT(*) FROM suppressions") == 0
    assert _state(db, ANN) == (None, [("active", None)])


def test_pixel_and_click_events_show_in_stats_json(sent, run):
    db, mail = sent
    ann = mail[ANN]
    pixel = httpx.get(ann["pixel"])
    assert pixel.status_code == 200 and pixel.content == PIXEL
    assert pixel.headers["content-type"] == "image/gif"
    assert "no-store" in pixel.headers["cache-control"]
    click = httpx.get(ann["clicks"]["https://acme.test/pricing?plan=pro"])
    assert click.status_code == 302
    assert click.headers["location"] == "https://acme.test/pricing?plan=pro"
    # a HEAD (link checker) is answered but not counted
    assert httpx.head(ann["clicks"]["https://acme.test/demo"]).status_code == 302
    events = db.execute("SELECT kind, detail_json FROM events WHERE kind IN ('open', 'click') "
                        "ORDER BY id").fetchall()
    assert [(k, json.loads(d)) for k, d in events] == [
        ("open", {}), ("click", {"url": "https://acme.test/pricing?plan=pro"})]
    stats = run("stats", "numbers", "--json").json
    variant = db.execute("SELECT variant FROM enrollments e JOIN contacts c "
                         "ON c.id = e.contact_id WHERE c.email = ?", [ANN]).fetchone()[0]
    row = next(r for r in stats["steps"] if r["step"] == 1 and r["variant"] == variant)
    assert (row["opens"], row["clicks"]) == (1, 1)
    assert (stats["totals"]["opens"], stats["totals"]["clicks"]) == (1, 1)


def test_a_click_seconds_after_sending_redirects_but_is_not_counted(sent, run):
    db, mail = sent
    clock.set_now(T0 + timedelta(seconds=3))
    try:
        response = httpx.get(mail[BOB]["clicks"]["https://acme.test/demo"])
    finally:
        clock.set_now(None)
    assert response.status_code == 302
    detail = db.execute("SELECT detail_json FROM events WHERE kind = 'click'").fetchone()[0]
    assert json.loads(detail) == {"url": "https://acme.test/demo", "scanner": True}
    assert run("stats", "numbers", "--json").json["totals"]["clicks"] == 0


def test_holds_200_concurrent_requests_without_errors_or_lost_events(sent, monkeypatch):
    db, mail = sent
    monkeypatch.setenv("SEQCTL_NOW", clock.iso(T0 + timedelta(hours=1)))   # all in one minute
    targets = [mail[ANN]["pixel"], mail[BOB]["pixel"]] * 80 + [
        mail[ANN]["clicks"]["https://acme.test/demo"],
        mail[BOB]["clicks"]["https://acme.test/pricing?plan=pro"]] * 20

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)

    def fetch(url: str) -> int:
        try:
            with opener.open(url, timeout=30) as response:
                response.read()
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(fetch, targets))
    assert len(statuses) == 200
    assert statuses.count(200) == 160 and statuses.count(302) == 40
    assert _count(db, "SELECT COUNT(*) FROM events WHERE kind = 'open'") == 160
    # 20 clicks of one link of one email in one minute are one click
    assert _count(db, "SELECT COUNT(*) FROM events WHERE kind = 'click'") == 2


def test_serve_command_runs_uvicorn_on_the_given_port(home):
    port = _free_port()
    env = {**os.environ, "SEQCTL_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "seqctl", "serve", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode()
                if time.monotonic() > deadline:
                    pytest.fail("seqctl serve did not start")
                time.sleep(0.1)
        assert httpx.get(f"http://127.0.0.1:{port}/o/forged.abc").status_code == 404
    finally:
        proc.terminate()
        proc.wait(10)
    assert b"tracking_base_url is not set" in proc.stderr.read()


def test_step_two_links_work_after_a_later_tick(sent):
    db, _ = sent
    tick(db, T0 + timedelta(days=2))
    second = links(sent_raw(db, ANN, 2))
    assert httpx.get(second["pixel"]).status_code == 200
    assert httpx.get(second["clicks"]["https://acme.test/demo"]).status_code == 302


def test_a_base_url_path_is_served_whether_the_proxy_keeps_or_strips_it(home):
    port = _free_port()
    base = f"http://127.0.0.1:{port}/seq"
    db = setup_tracked(home, base_url=base, contacts=[ANN, BOB])
    mail = links(sent_raw(db, ANN, 1))
    assert mail["pixel"].startswith(f"{base}/o/")
    # Before: the routes were at the root only, so every emailed link was a 404.
    running = _serving(make_app(config.db_path(), key()), port)
    next(running)
    try:
        assert httpx.get(mail["pixel"]).status_code == 404
    finally:
        next(running, None)
    running = _serving(make_app(config.db_path(), key(), base), port)
    next(running)
    try:
        assert httpx.get(mail["pixel"]).status_code == 200
        demo = httpx.get(mail["clicks"]["https://acme.test/demo"])
        assert demo.status_code == 302 and demo.headers["location"] == "https://acme.test/demo"
        stripped = mail["clicks"]["https://acme.test/pricing?plan=pro"].replace("/seq/", "/", 1)
        assert httpx.get(stripped).status_code == 302
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert httpx.post(mail["unsubscribe"],
                          data={"List-Unsubscribe": "One-Click"}).status_code == 200
    finally:
        next(running, None)
    assert _state(db, ANN) == ("unsubscribed", [("exited", "unsubscribed")])
    assert _count(db, "SELECT COUNT(*) FROM events WHERE kind IN ('open', 'click')") == 3


@pytest.mark.parametrize("value", [
    "http://t.example.com", "http://t.example.com:8080/seq", "ftp://t.example.com",
    "t.example.com", "https://", "https://t.example.com/seq?x=1", "https://u:p@t.example.com",
])
def test_tracking_base_url_must_be_https(run, value):
    result = run("settings", "set", "tracking_base_url", value)
    assert result.code == 1 and result.err.count("\n") == 1 and "Traceback" not in result.err
    assert "https://" in result.err
    assert run("settings", "get", "tracking_base_url").out.strip() == ""


@pytest.mark.parametrize("value, stored", [
    ("https://t.example.com", "https://t.example.com"),
    ("https://T.Example.com/seq/", "https://t.example.com/seq"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("http://localhost:8080/seq", "http://localhost:8080/seq"),
    ("http://[::1]:8080", "http://[::1]:8080"),
])
def test_https_and_loopback_http_are_accepted(run, value, stored):
    assert run("settings", "set", "tracking_base_url", value).code == 0
    assert run("settings", "get", "tracking_base_url").out.strip() == stored


def test_one_click_is_advertised_only_over_https(home):
    https_db = setup_tracked(home, contacts=[ANN])
    message = email.message_from_bytes(sent_raw(https_db, ANN, 1), policy=email.policy.default)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Unsubscribe"].startswith("<https://t.acme.test/u/")


def test_a_loopback_http_base_gets_links_but_no_one_click_header(home):
    db = setup_tracked(home, base_url="http://127.0.0.1:8080", contacts=[ANN])
    message = email.message_from_bytes(sent_raw(db, ANN, 1), policy=email.policy.default)
    assert message["List-Unsubscribe"].startswith("<http://127.0.0.1:8080/u/")
    assert message["List-Unsubscribe-Post"] is None
