"""`seqctl doctor` against a real DNS server (dnsmasq on loopback) serving good and broken
zones, and against one that stops answering."""

from __future__ import annotations

import os

import pytest

from seqctl import db as database
from seqctl.engine import accounts
from tests.servers.dns_server import DnsServer, find_dnsmasq

DKIM_KEY = ("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"
            + "q1w2e3r4t5y6u7i8o9p0" * 16 + "IDAQAB")     # longer than one 255-byte string

PROVIDERS = [
    ("_spf.google.com", "TXT", "v=spf1 include:_netblocks.google.com "
     "include:_netblocks2.google.com include:_netblocks3.google.com ~all"),
    ("_netblocks.google.com", "TXT", "v=spf1 ip4:35.190.247.0/24 ip4:64.233.160.0/19 ~all"),
    ("_netblocks2.google.com", "TXT", "v=spf1 ip6:2001:4860:4000::/36 ~all"),
    ("_netblocks3.google.com", "TXT", "v=spf1 ip4:172.217.0.0/19 ~all"),
    ("spf.protection.outlook.com", "TXT",
     "v=spf1 ip4:40.92.0.0/15 include:spfd.protection.outlook.com -all"),
    ("spfd.protection.outlook.com", "TXT", "v=spf1 ip4:51.4.72.0/24 -all"),
]
GOOGLE_MX = [(1, "aspmx.l.google.com"), (5, "alt1.aspmx.l.google.com")]


def gmail_domain(domain: str, *, spf: list[str] | None = None, dkim: bool = True,
                 dmarc: str | None = "v=DMARC1; p=reject; rua=mailto:dmarc@{d}"):
    records = [(domain, "MX", mx) for mx in GOOGLE_MX]
    records.append((domain, "TXT", "google-site-verification=abc123"))
    for text in spf if spf is not None else ["v=spf1 include:_spf.google.com ~all"]:
        records.append((domain, "TXT", text))
    if dkim:
        records.append((f"google._domainkey.{domain}", "TXT", DKIM_KEY))
    if dmarc:
        records.append((f"_dmarc.{domain}", "TXT", dmarc.format(d=domain)))
    return records


ZONES = [
    *PROVIDERS,
    *gmail_domain("good.test"),
    *gmail_domain("twospf.test", spf=["v=spf1 include:_spf.google.com ~all",
                                      "v=spf1 ip4:192.0.2.1 -all"]),
    *gmail_domain("plusall.test", spf=["v=spf1 include:_spf.google.com +all"]),
    *gmail_domain("manylookups.test", spf=[
        "v=spf1 include:_spf.google.com include:a.manylookups.test "
        "include:b.manylookups.test mx a ~all"]),
    ("a.manylookups.test", "TXT", "v=spf1 a mx ptr ~all"),
    ("b.manylookups.test", "TXT", "v=spf1 exists:%{i}.x.manylookups.test a:x.test mx:y.test ~all"),
    *gmail_domain("nodmarc.test", dmarc=None),
    *gmail_domain("nodkim.test", dkim=False),
    ("s2025._domainkey.nodkim.test", "TXT", DKIM_KEY),
    # news.inherit.test has no DMARC record of its own; its organizational domain has one
    *gmail_domain("news.inherit.test", dmarc=None),
    ("_dmarc.inherit.test", "TXT", "v=DMARC1; p=quarantine; sp=reject"),
    # Microsoft 365: DKIM selectors are CNAMEs into the tenant's onmicrosoft domain
    ("contoso.test", "MX", (0, "contoso-test.mail.protection.outlook.com")),
    ("contoso.test", "TXT", "v=spf1 include:spf.protection.outlook.com -all"),
    ("selector1._domainkey.contoso.test", "CNAME",
     "selector1-contoso-test._domainkey.contoso.onmicrosoft.test"),
    ("selector1-contoso-test._domainkey.contoso.onmicrosoft.test", "TXT", DKIM_KEY),
    ("_dmarc.contoso.test", "TXT", "v=DMARC1; p=none; rua=mailto:d@contoso.test"),
]


@pytest.fixture(scope="module")
def dns_server():
    if find_dnsmasq() is None:
        if os.environ.get("CI"):
            pytest.fail("dnsmasq is missing: scripts/test-services.sh should have installed it")
        pytest.skip("dnsmasq is not installed (run scripts/test-services.sh)")
    server = DnsServer(ZONES)
    yield server
    server.stop()


@pytest.fixture
def doctor(run, dns_server):
    """`seqctl doctor ARGS` against the test DNS server, with the settings a good setup has."""
    run("settings", "set", "tracking_base_url", "https://t.good.test")
    run("settings", "set", "physical_address", "1 Main St, Springfield")

    def _doctor(*args: str, server: str | None = None):
        return run("doctor", *args, env={"SEQCTL_DNS_SERVER": server or dns_server.address},
                   timeout=90)

    return _doctor


def add_inbox(kind: str, address: str, **kwargs) -> None:
    accounts.add_inbox(database.get(), kind, address, {}, **kwargs)
    database.reset()


def checks_of(result, index: int = 0) -> dict[str, dict]:
    return {check["name"]: check for check in result.json["inboxes"][index]["checks"]}


def test_a_well_set_up_gmail_domain_passes_every_check(home, doctor):
    add_inbox("gmail", "riley@good.test")
    result = doctor("--json")
    assert result.code == 0, result.err
    document = result.json
    assert document["ok"] is True
    [report] = document["inboxes"]
    assert (report["address"], report["domain"]) == ("riley@good.test", "good.test")
    checks = checks_of(result)
    assert list(checks) == ["mx", "spf", "dkim", "dmarc", "one_click", "physical_address",
                            "bounce_rate", "caps"]
    assert {name: check["status"] for name, check in checks.items()} == dict.fromkeys(
        checks, "pass")
    assert "aspmx.l.google.com" in checks["mx"]["detail"]
    assert "4 of 10 lookups" in checks["spf"]["detail"]       # include + Google's three
    assert "google._domainkey.good.test" in checks["dkim"]["detail"]
    assert "policy reject" in checks["dmarc"]["detail"]
    assert "2,000 a day" in checks["caps"]["detail"]          # Workspace, not consumer
    for check in checks.values():
        assert set(check) == {"name", "status", "detail", "fix"}


def test_two_spf_records_fail_with_a_fix_to_merge_them(home, doctor):
    result = doctor("rep@twospf.test", "--json")
    assert result.code == 1
    assert result.json["ok"] is False
    spf = checks_of(result)["spf"]
    assert spf["status"] == "fail"
    assert "2 SPF records" in spf["detail"]
    assert "merge" in spf["fix"]
    assert result.json["inboxes"][0]["provider"] == "gmail"      # told by the MX hosts


def test_plus_all_fails(home, doctor):
    spf = checks_of(doctor("rep@plusall.test", "--json"))["spf"]
    assert spf["status"] == "fail"
    assert "+all" in spf["detail"]


def test_more_than_ten_dns_lookups_fail(home, doctor):
    result = doctor("rep@manylookups.test", "--json")
    spf = checks_of(result)["spf"]
    assert result.code == 1
    assert spf["status"] == "fail"
    assert "(limit 10)" in spf["detail"]
    assert int(spf["detail"].split("needs ")[1].split()[0]) > 10


def test_a_domain_without_dmarc_fails_and_the_fix_names_the_record(home, doctor):
    dmarc = checks_of(doctor("rep@nodmarc.test", "--json"))["dmarc"]
    assert dmarc["status"] == "fail"
    assert "_dmarc.nodmarc.test" in dmarc["detail"]
    assert "_dmarc.nodmarc.test: v=DMARC1; p=quarantine" in dmarc["fix"]


def test_dmarc_is_inherited_from_the_organizational_domain_with_its_subdomain_policy(
        home, doctor):
    # .test is on no public-suffix rule: the default rule `*` makes inherit.test the
    # organizational domain of news.inherit.test
    dmarc = checks_of(doctor("rep@news.inherit.test", "--json"))["dmarc"]
    assert dmarc["status"] == "pass"
    assert "inherited from _dmarc.inherit.test" in dmarc["detail"]
    assert "policy reject" in dmarc["detail"]                 # sp= applies, not p=


def test_outlook_dkim_at_selector1_through_a_cname_and_dmarc_none_is_a_warning(home, doctor):
    add_inbox("outlook", "sam@contoso.test", daily_cap=800)
    result = doctor("--json")
    assert result.code == 0, result.err                        # warnings do not fail
    checks = checks_of(result)
    assert result.json["inboxes"][0]["provider"] == "outlook"
    assert checks["dkim"]["status"] == "pass"
    assert "selector1._domainkey.contoso.test" in checks["dkim"]["detail"]
    assert checks["spf"]["status"] == "pass"
    assert "Exchange Online" in checks["spf"]["detail"]
    assert checks["dmarc"]["status"] == "warn"
    assert "policy none" in checks["dmarc"]["detail"]
    assert checks["dmarc"]["fix"]
    assert checks["caps"]["status"] == "pass"


def test_no_key_at_the_google_selector_fails_but_one_at_a_named_selector_passes(home, doctor):
    add_inbox("gmail", "rep@nodkim.test")
    dkim = checks_of(doctor("--json"))["dkim"]
    assert dkim["status"] == "fail"
    assert "google._domainkey.nodkim.test" in dkim["detail"]
    named = checks_of(doctor("--dkim-selector", "s2025", "--json"))["dkim"]
    assert named["status"] == "pass"
    assert "s2025._domainkey.nodkim.test" in named["detail"]


def test_caps_over_the_providers_limits_fail(home, doctor, run):
    add_inbox("gmail", "big@good.test", daily_cap=3000)
    add_inbox("outlook", "fast@contoso.test")
    run("settings", "set", "sequence_hourly_send_cap", "2400")
    result = doctor("--json")
    assert result.code == 1
    gmail, outlook = (checks_of(result, i)["caps"] for i in (0, 1))
    assert gmail["status"] == "fail"
    assert "3,000 is over Gmail (Workspace)'s 2,000 a day" in gmail["detail"]
    assert outlook["status"] == "fail"
    assert "30 a minute" in outlook["detail"]


def test_the_text_report_shows_each_check_and_the_fix_of_what_failed(home, doctor):
    result = doctor("rep@plusall.test")
    assert result.code == 1
    assert "rep@plusall.test (Gmail)" in result.out
    assert "FAIL  spf" in result.out
    assert "fix: end it with ~all or -all" in result.out
    assert "ok    mx" in result.out
    assert "1 failed" in result.out


def test_a_dns_server_that_stops_answering_makes_dns_checks_unknown_not_a_crash(
        home, doctor, dns_server):
    add_inbox("gmail", "riley@good.test")
    dns_server.pause()
    try:
        result = doctor("--json")
    finally:
        dns_server.resume()
    assert result.err == ""
    assert result.code == 0                  # unknown is not a failure
    checks = checks_of(result)
    for name in ("mx", "spf", "dkim", "dmarc"):
        assert checks[name]["status"] == "unknown", checks[name]
        assert "did not answer" in checks[name]["detail"]
    assert checks["one_click"]["status"] == "pass"
    assert checks["caps"]["status"] == "pass"               # the inbox kind says Gmail


def test_a_dns_error_answer_is_unknown(home, doctor):
    # the test server refuses names outside its zones, as a misconfigured resolver would
    result = doctor("rep@elsewhere.example", "--json")
    checks = checks_of(result)
    assert checks["mx"]["status"] == "unknown"
    assert "REFUSED" in checks["mx"]["detail"]
    assert checks["spf"]["status"] == "unknown"
    assert checks["dmarc"]["status"] == "unknown"
    # the provider (and so its DKIM selectors) could not be told from the MX hosts: DKIM is
    # unknown too, not a warning that asks for --dkim-selector
    assert checks["dkim"]["status"] == "unknown"
    assert "REFUSED" in checks["dkim"]["detail"]


def test_a_server_with_nothing_listening_is_unknown_within_the_lookup_limit(home, doctor):
    from tests.servers.dns_server import _free_udp_tcp_port

    result = doctor("rep@good.test", "--json", server=f"127.0.0.1:{_free_udp_tcp_port()}")
    assert result.err == ""
    assert {checks_of(result)[name]["status"] for name in ("mx", "spf", "dmarc")} == {"unknown"}


@pytest.mark.parametrize("value", ["127.0.0.1:0", "127.0.0.1:dns", "[::1", "no-such-host.invalid"])
def test_a_bad_dns_server_setting_is_one_line_and_exit_1(home, run, value):
    result = run("doctor", "rep@good.test", env={"SEQCTL_DNS_SERVER": value})
    assert result.code == 1
    assert result.err.startswith("error: SEQCTL_DNS_SERVER")
    assert len(result.err.strip().splitlines()) == 1


def test_no_inboxes_and_no_address_is_a_clear_error(home, run):
    result = run("doctor")
    assert result.code == 1
    assert "no inboxes to check" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_text_from_dns_cannot_drive_the_terminal(capsys):
    # a hostile domain's records end up in details (an SPF term, a DMARC p=): control
    # characters are shown escaped, never written to the terminal as they are
    from seqctl.commands import doctor as command

    hostile = "unknown mechanism '\x1b]0;owned\x07\x1b[2J\r'"
    command._print({"ok": False, "inboxes": [{
        "address": "rep@evil.test", "domain": "evil.test", "provider": None, "inbox": False,
        "checks": [{"name": "spf", "status": "fail", "detail": hostile, "fix": "fix\x1b[8m"}]}]})
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert "\\x1b]0;owned\\x07" in out
    assert "fix: fix\\x1b[8m" in out


def test_a_silent_server_is_asked_one_question_per_run_so_the_run_is_bounded(home, run):
    # a real UDP server on loopback that reads every query and never answers: once the first
    # question has timed out, doctor asks nothing more, so a dead server costs one time limit
    # per run, not one per record and inbox
    import socket
    import threading

    import dns.message

    questions: list[str] = []
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            try:
                data, _ = sock.recvfrom(4096)
            except TimeoutError:
                continue
            questions.append(dns.message.from_wire(data).question[0].name.to_text())

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    try:
        add_inbox("gmail", "riley@good.test")
        add_inbox("outlook", "sam@contoso.test")
        result = run("doctor", "--json", env={
            "SEQCTL_DNS_SERVER": f"127.0.0.1:{sock.getsockname()[1]}"}, timeout=90)
    finally:
        stop.set()
        listener.join()
        sock.close()
    assert result.err == ""
    for index in (0, 1):
        assert {checks_of(result, index)[name]["status"] for name in
                ("mx", "spf", "dkim", "dmarc")} == {"unknown"}
    assert set(questions) == {"good.test."}          # the first MX question, and nothing after


def test_bounce_rate_counts_the_hard_bounces_of_the_inboxs_sends(home, doctor):
    from seqctl.engine import outcomes
    from tests.helpers import apply_yaml, enroll_all, setup_account, tick
    from tests.test_analytics import T0

    db, _ = setup_account(home, "rep@good.test")
    apply_yaml(db, """
        name: one
        steps:
          - step_type: email
            subject: "Hi {{first_name}}"
            body: "Short note."
    """, T0)
    emails = [f"p{n}@c{n}.test" for n in range(8)]
    enroll_all(db, "one", emails, T0)
    tick(db, T0)
    assert db.execute("SELECT COUNT(*) FROM outbox WHERE status = 'sent'").fetchone()[0] == 8
    for email in emails[:2]:
        contact = db.execute("SELECT id FROM contacts WHERE email = ?", [email]).fetchone()[0]
        outcomes.on_bounce(db, contact, T0)
    outcomes.on_bounce(db, db.execute("SELECT id FROM contacts WHERE email = ?",
                                      [emails[2]]).fetchone()[0], T0, hard=False)   # soft
    database.reset()
    result = doctor("--json")
    bounce = checks_of(result)["bounce_rate"]
    assert bounce["status"] == "fail", bounce
    assert bounce["detail"].startswith("2 of the last 8 sends bounced (25.0%)")
    assert result.code == 1


def test_a_server_that_answers_each_question_slowly_is_bounded_per_run(dns_server):
    """A real UDP relay in front of dnsmasq that holds every answer back half a second: each
    lookup is within its own limit, but the run's lookups share one budget, after which the
    rest are `unknown` without asking the server again."""
    import socket
    import threading
    import time

    from seqctl.engine.doctor import Lookup

    host, port = dns_server.address.split(":")
    relay = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    relay.bind(("127.0.0.1", 0))
    relay.settimeout(0.2)
    questions: list[bytes] = []
    stop = threading.Event()

    def forward(data: bytes, client) -> None:
        time.sleep(0.5)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as upstream:
            upstream.settimeout(2)
            upstream.sendto(data, (host, int(port)))
            relay.sendto(upstream.recv(4096), client)

    def listen() -> None:
        while not stop.is_set():
            try:
                data, client = relay.recvfrom(4096)
            except TimeoutError:
                continue
            questions.append(data)
            threading.Thread(target=forward, args=(data, client), daemon=True).start()

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    try:
        lookup = Lookup(("127.0.0.1", relay.getsockname()[1]), timeout=3.0, budget=0.75)
        answers = [lookup.mx("good.test"), lookup.txt("good.test"),
                   lookup.txt("_dmarc.good.test"), lookup.txt("google._domainkey.good.test"),
                   lookup.mx("contoso.test"), lookup.txt("contoso.test")]
    finally:
        stop.set()
        listener.join()
        relay.close()
    assert answers[0].error is None and answers[0].values        # a slow answer still counts
    assert len(questions) <= 2                                     # then the budget is spent
    assert all("answered too slowly" in (a.error or "") for a in answers[len(questions):])
