"""`seqctl inbox connect|import|test|resume|list` as subprocesses, against the local fakes of
Google's and Microsoft's sign-in and mail APIs."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import threading

import pytest
import requests
from fakes.gmail_server import SCOPE_READONLY, SCOPE_SEND, GmailServer
from fakes.graph_server import GraphServer
from fakes.ms_identity import MSIdentityServer
from fakes.tls import make_self_signed

from seqctl import db as database
from seqctl.engine import accounts
from tests.conftest import ROOT

ADDRESS = "rep@example.com"
OUTLOOK = "rep@contoso.com"
CLIENT_ID = "ms-client-id"


@pytest.fixture
def tls(tmp_path):
    return make_self_signed(tmp_path / "tls")


@pytest.fixture
def gmail(home, monkeypatch):
    with GmailServer(address=ADDRESS) as server:
        monkeypatch.setenv("SEQCTL_GMAIL_API_URL", server.url)
        monkeypatch.setenv("SEQCTL_GOOGLE_TOKEN_URI", f"{server.url}/token")
        yield server


@pytest.fixture
def microsoft(home, tls, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.cert))
    with MSIdentityServer(client_id=CLIENT_ID, username=OUTLOOK, tls=tls) as identity:
        monkeypatch.setenv("SEQCTL_MS_AUTHORITY", identity.url)
        with GraphServer(identity=identity, address=OUTLOOK) as graph:
            monkeypatch.setenv("SEQCTL_GRAPH_API_URL", f"{graph.url}/v1.0")
            yield identity, graph


def credentials_file(home, refresh: str = "refresh-1"):
    path = home.parent / "authorized_user.json"
    path.write_text(json.dumps({"type": "authorized_user", "client_id": "client-id",
                                "client_secret": "client-secret", "refresh_token": refresh}))
    return path


def imported(run, home, gmail) -> None:
    result = run("inbox", "import", "gmail", ADDRESS, "--credentials", credentials_file(home))
    assert result.code == 0, result.err


# -- connecting -----------------------------------------------------------------------------


def test_connect_outlook_prints_the_device_code_and_stores_the_cache_and_inbox(home, run,
                                                                               microsoft):
    identity, _ = microsoft
    result = run("inbox", "connect", "outlook", "--client-id", CLIENT_ID, "--calendar", "--json")
    assert result.code == 0, result.err
    assert "https://microsoft.com/devicelogin" in result.err
    assert re.search(r"FAKE\d{4}", result.err)
    assert f"seqctl inbox test {OUTLOOK}" in result.err
    token_file = home / "tokens" / f"outlook-{OUTLOOK}.json"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert json.loads(token_file.read_text())["RefreshToken"]
    inbox = result.json
    assert (inbox["address"], inbox["kind"], inbox["status"]) == (OUTLOOK, "outlook", "active")
    assert inbox["config"] == {"client_id": CLIENT_ID, "tenant": "common", "calendar": True}
    scope = identity.requests_to(r"/devicecode$")[0].form()["scope"]
    assert "Calendars.Read" in scope.split()


def test_connect_outlook_with_an_unknown_client_fails_in_one_line(home, run, microsoft):
    result = run("inbox", "connect", "outlook", "--client-id", "someone-else")
    assert result.code == 1
    assert result.err.strip().count("\n") == 0 and "unauthorized_client" in result.err
    assert not (home / "tokens").exists() or not list((home / "tokens").iterdir())


def test_import_gmail_stores_the_token_privately_and_the_inbox(home, run, gmail):
    result = run("inbox", "import", "gmail", ADDRESS, "--credentials", credentials_file(home),
                 "--json")
    assert result.code == 0, result.err
    token_file = home / "tokens" / f"gmail-{ADDRESS}.json"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert json.loads(token_file.read_text())["refresh_token"] == "refresh-1"
    assert result.json["kind"] == "gmail" and result.json["config"] == {"calendar": False}
    assert f"seqctl inbox test {ADDRESS}" in result.err


def test_import_gmail_rejects_client_secrets_with_one_line(home, run):
    secrets = home.parent / "client_secret.json"
    secrets.write_text(json.dumps({"installed": {"client_id": "c"}}))
    result = run("inbox", "import", "gmail", ADDRESS, "--credentials", secrets)
    assert result.code == 1
    assert "inbox connect gmail --client-secrets" in result.err
    assert result.err.strip().count("\n") == 0


def test_connect_gmail_no_browser_prints_the_url_and_the_ssh_hint_and_finishes(home, tls,
                                                                               monkeypatch):
    """Driven through the subprocess: the test plays the browser, opening the printed URL
    (the fake consent page redirects straight back to seqctl's local port)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.cert))
    with GmailServer(address=ADDRESS, tls=tls) as server:
        secrets = home.parent / "client_secret.json"
        secrets.write_text(json.dumps({"installed": {
            "client_id": "client-id", "client_secret": "client-secret",
            "auth_uri": f"{server.url}/o/oauth2/auth",
            "token_uri": "https://oauth2.googleapis.com/token",
            "redirect_uris": ["http://localhost"],
        }}))
        env = {**os.environ, "SEQCTL_HOME": str(home), "SEQCTL_GMAIL_API_URL": server.url,
               "SEQCTL_GOOGLE_TOKEN_URI": f"{server.url}/token"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "seqctl", "inbox", "connect", "gmail", "--client-secrets",
             str(secrets), "--no-browser", "--calendar", "--timeout", "20", "--json"],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines: list[str] = []
        url_seen = threading.Event()

        def read_stderr() -> None:
            for text in proc.stderr:
                lines.append(text)
                if "https://" in text:
                    url_seen.set()

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        try:
            assert url_seen.wait(20), "".join(lines)
            url = re.search(r"https://\S+", "".join(lines)).group(0)
            page = requests.get(url, timeout=10)          # the browser, clicking Allow
            assert page.status_code == 200
            stdout, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        reader.join(5)
    printed = "".join(lines)
    assert proc.returncode == 0, printed
    port = re.search(r"localhost:(\d+)", printed).group(1)
    assert f"ssh -L {port}:localhost:{port}" in printed
    assert json.loads(stdout)["config"] == {"calendar": True}
    token_file = home / "tokens" / f"gmail-{ADDRESS}.json"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert "https://www.googleapis.com/auth/calendar.readonly" in json.loads(
        token_file.read_text())["scopes"]


def test_reconnecting_keeps_a_bounce_pause(home, run, gmail):
    imported(run, home, gmail)
    db = database.get()
    db.execute("UPDATE inboxes SET status = 'paused_bounces', status_message = 'too many'")
    db.conn.commit()
    imported(run, home, gmail)
    assert accounts.inbox(db, ADDRESS)["status"] == "paused_bounces"


# -- list -----------------------------------------------------------------------------------


def test_inbox_list_json_shows_status_daily_cap_and_last_sync(home, run, gmail):
    imported(run, home, gmail)
    assert run("inbox", "set", ADDRESS, "--daily-cap", "40").code == 0
    assert run("sync", now="2026-03-02T14:00:00Z").code == 0
    result = run("inbox", "list", "--json")
    assert result.code == 0, result.err
    [inbox] = result.json
    assert inbox["address"] == ADDRESS and inbox["status"] == "active"
    assert inbox["daily_cap"] == 40 and inbox["sent_24h"] == 0
    assert inbox["last_sync_at"].startswith("2026-03-02T14:00")


# -- test -----------------------------------------------------------------------------------


def test_inbox_test_sends_one_message_through_the_provider_at_once(home, run, gmail):
    imported(run, home, gmail)
    result = run("inbox", "test", ADDRESS, "--to", "me@elsewhere.test", "--json")
    assert result.code == 0, result.err
    sent = result.json
    assert sent["status"] == "sent" and sent["provider_message_id"] in gmail.messages
    assert gmail.deliveries[sent["message_id"]] == 1
    [raw] = gmail.sent_raw()
    assert b"To: me@elsewhere.test" in raw and b"Subject: seqctl test from rep@example.com" in raw
    row = database.get().execute(
        "SELECT enrollment_id, status, raw FROM outbox WHERE id = ?", [sent["outbox_id"]]
    ).fetchone()
    assert row[0] is None and row[1] == "sent" and row[2] == raw


def test_inbox_test_on_a_revoked_grant_fails_and_resume_waits_for_a_working_grant(home, run,
                                                                                   gmail):
    imported(run, home, gmail)
    gmail.revoke()
    result = run("inbox", "test", ADDRESS, "--to", "me@elsewhere.test")
    assert result.code == 1
    assert "seqctl inbox import gmail rep@example.com" in result.err
    db = database.get()
    assert accounts.inbox(db, ADDRESS)["status"] == "needs_reauth"

    result = run("inbox", "resume", ADDRESS)
    assert result.code == 1 and "still not authorized" in result.err
    assert accounts.inbox(db, ADDRESS)["status"] == "needs_reauth"

    gmail.refresh_tokens["refresh-1"] = [SCOPE_SEND, SCOPE_READONLY]   # access restored
    result = run("inbox", "resume", ADDRESS, "--json")
    assert result.code == 0, result.err
    assert result.json["status"] == "active"


def test_inbox_resume_ends_a_bounce_pause(home, run):
    from seqctl.providers.maildir import create_maildir

    maildir = home / "mail"
    create_maildir(maildir)
    db = database.get()
    accounts.add_inbox(db, "maildir", ADDRESS, {"dir": str(maildir)})
    db.execute("UPDATE inboxes SET status = 'paused_bounces', status_message = 'x'")
    db.conn.commit()
    result = run("inbox", "test", ADDRESS, "--to", "me@elsewhere.test")
    assert result.code == 1 and "paused_bounces" in result.err
    result = run("inbox", "resume", ADDRESS, "--json")
    assert result.code == 0, result.err
    assert result.json["status"] == "active" and result.json["status_message"] is None
    result = run("inbox", "test", ADDRESS, "--to", "me@elsewhere.test")
    assert result.code == 0, result.err
    assert "sent a test message" in result.out
    assert len(list((maildir / "sent" / "new").iterdir())) == 1


def test_add_smtp_with_oauth_stores_an_xoauth2_login_and_refuses_bad_combinations(run, home):
    result = run("inbox", "add", "smtp", "rep@example.com", "--smtp-host", "smtp.gmail.com",
                 "--security", "ssl", "--imap-host", "imap.gmail.com", "--oauth", "gmail",
                 "--json")
    assert result.code == 0, result.err
    config = result.json["config"]
    assert (config["auth"], config["oauth"], config["smtp_port"]) == ("xoauth2", "gmail", 465)
    assert config["password_env"] is None
    for extra in (["--oauth", "yahoo"], ["--oauth", "outlook"],
                  ["--oauth", "gmail", "--password-env", "PW"], ["--security", "tls"]):
        bad = run("inbox", "add", "smtp", "x@example.com", "--smtp-host", "h", *extra)
        assert bad.code == 2, (extra, bad.err)
    outlook = run("inbox", "add", "smtp", "o@example.com", "--smtp-host", "smtp.office365.com",
                  "--oauth", "outlook", "--client-id", "app-1", "--json").json["config"]
    assert (outlook["client_id"], outlook["tenant"], outlook["smtp_port"]) == (
        "app-1", "common", 587)
