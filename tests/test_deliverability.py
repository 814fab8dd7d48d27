"""The doctor's judgements as pure functions: records and settings in, a check out."""

from __future__ import annotations

import socket

import pytest

from seqctl.engine import deliverability as d
from seqctl.engine.deliverability import SpfWalk


@pytest.mark.parametrize("domain, org", [
    ("mail.sub.example", "sub.example"),      # no rule matches: the default rule `*`
    ("news.inherit.test", "inherit.test"),
    ("a.b.co.uk", "b.co.uk"),
    ("example.co.uk", "example.co.uk"),
    ("acme.com", "acme.com"),
    ("deep.mail.acme.com.", "acme.com"),
    ("riley.github.io", "riley.github.io"),   # a private-section suffix counts too
    ("com", "com"),
])
def test_organizational_domain_follows_the_public_suffix_list(domain, org):
    assert d.organizational_domain(domain) == org


def test_the_public_suffix_list_is_read_from_the_package_and_nothing_is_fetched(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the public suffix list must not be fetched")

    d._suffix_extractor.cache_clear()
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    assert d.organizational_domain("x.y.example.co.uk") == "example.co.uk"


def test_parse_spf_counts_lookups_and_reads_the_all_qualifier():
    record = d.parse_spf("v=spf1 ip4:192.0.2.0/24 a mx/24 include:_spf.google.com "
                         "exists:%{i}.x.test ptr ~all")
    assert record.lookups == 5
    assert record.includes == ("_spf.google.com",)
    assert record.all_qualifier == "~"
    assert d.parse_spf("v=spf1 all").all_qualifier == "+"        # a bare all is +all
    redirect = d.parse_spf("v=spf1 redirect=_spf.acme.test exp=explain.acme.test")
    assert (redirect.redirect, redirect.lookups, redirect.all_qualifier) == (
        "_spf.acme.test", 1, None)
    assert d.parse_spf("v=spf1 include: bogus ~all").errors == (
        "include without a domain", "unknown mechanism 'bogus'")


def test_spf_records_are_only_v_spf1_ones():
    assert d.spf_records(["v=spf1 -all", "v=spf10 x", "google-site-verification=1",
                          "V=SPF1 ~all"]) == ["v=spf1 -all", "V=SPF1 ~all"]


def walk(record: str, lookups: int = 1, domains=("_spf.google.com",), **kw) -> SpfWalk:
    return SpfWalk((record,), lookups, tuple(domains), **kw)


@pytest.mark.parametrize("spf_walk, provider, status, words", [
    (SpfWalk((), 0, ()), "gmail", "fail", "no SPF record"),
    (SpfWalk(("v=spf1 -all", "v=spf1 ~all"), 0, ()), None, "fail", "2 SPF records"),
    (walk("v=spf1 include:_spf.google.com +all"), "gmail", "fail", "+all"),
    (walk("v=spf1 include:_spf.google.com ~all", lookups=11), "gmail", "fail", "11 DNS lookups"),
    (walk("v=spf1 include:spf.acme.test ~all", domains=("spf.acme.test",)), "gmail", "fail",
     "does not cover Gmail"),
    (walk("v=spf1 include:_spf.google.com"), "gmail", "warn", "no `all`"),
    (walk("v=spf1 include:_spf.google.com ?all"), "gmail", "warn", "?all"),
    (walk("v=spf1 include:x.test ~all", domains=("x.test",), unresolved=("x.test",)), "gmail",
     "unknown", "could not follow x.test"),
    (walk("v=spf1 include:x.test ~all", domains=("x.test",), problems=("x.test has no SPF "
                                                                       "record",)),
     None, "fail", "x.test has no SPF record"),
    (walk("v=spf1 ip4:192.0.2.1 -all", lookups=0, domains=()), None, "pass", "0 of 10"),
    (walk("v=spf1 include:_spf.google.com -all", lookups=4), "gmail", "pass", "covers Gmail"),
])
def test_judge_spf(spf_walk, provider, status, words):
    check = d.judge_spf("acme.test", spf_walk, provider)
    assert check.status == status
    assert words in check.detail
    assert (check.fix == "") == (status == "pass")


def test_a_failed_spf_lookup_is_unknown():
    check = d.judge_spf("acme.test", None, "gmail", "timed out")
    assert (check.status, check.detail) == ("unknown", "SPF lookup for acme.test failed: timed out")


def test_dkim_needs_a_non_empty_public_key():
    key = "v=DKIM1; k=rsa; p=MIIBIjAN"
    assert d.judge_dkim("a.test", {"google": [key]}).status == "pass"
    revoked = d.judge_dkim("a.test", {"google": ["v=DKIM1; p="]})
    assert (revoked.status, "revoked" in revoked.detail) == ("fail", True)
    assert d.judge_dkim("a.test", {"selector1": [], "selector2": []}).status == "fail"
    assert d.judge_dkim("a.test", {"selector1": [], "selector2": None},
                        {"selector2": "timeout"}).status == "unknown"
    assert d.judge_dkim("a.test", {}).status == "warn"          # provider unknown
    assert d.judge_dkim("a.test", {}, mx_error="timed out").status == "unknown"   # untold
    assert d.judge_dkim_managed("gmail.com").status == "pass"
    assert d.judge_dkim_managed("acme.test") is None


@pytest.mark.parametrize("here, org_record, status, words", [
    (["v=DMARC1; p=reject"], None, "pass", "at _dmarc.mail.acme.test, policy reject"),
    (["v=DMARC1; p=quarantine; pct=50"], None, "warn", "applied to 50%"),
    (["v=DMARC1; p=none"], None, "warn", "policy none"),
    (["v=DMARC1; rua=mailto:x@acme.test"], None, "fail", "no valid policy"),
    (["v=DMARC1; p=reject", "v=DMARC1; p=none"], None, "fail", "2 DMARC records"),
    ([], ["v=DMARC1; p=none; sp=quarantine"], "pass", "inherited from _dmarc.acme.test, "
     "policy quarantine"),
    ([], ["v=DMARC1; p=reject"], "pass", "inherited from _dmarc.acme.test, policy reject"),
    ([], [], "fail", "no DMARC record at _dmarc.mail.acme.test or _dmarc.acme.test"),
])
def test_judge_dmarc(here, org_record, status, words):
    check = d.judge_dmarc("mail.acme.test", "acme.test", here, org_record)
    assert check.status == status
    assert words in check.detail


def test_dmarc_lookup_failures_are_unknown():
    assert d.judge_dmarc("acme.test", "acme.test", None, None, "timeout").status == "unknown"
    assert d.judge_dmarc("m.acme.test", "acme.test", [], None, "timeout").status == "unknown"


def test_mx():
    assert d.judge_mx("a.test", [(10, "mx2.a.test"), (1, "mx1.a.test")]).detail == (
        "a.test has MX mx1.a.test, mx2.a.test")
    assert d.judge_mx("a.test", []).status == "fail"
    assert "null MX" in d.judge_mx("a.test", [(0, "")]).detail
    assert d.judge_mx("a.test", None, "timeout").status == "unknown"


@pytest.mark.parametrize("url, status", [
    ("", "fail"), ("https://t.acme.test", "pass"), ("http://127.0.0.1:8080", "warn"),
    ("http://t.acme.test", "fail"),
])
def test_one_click_needs_an_https_tracking_base_url(url, status):
    assert d.judge_one_click(url).status == status


def test_physical_address():
    assert d.judge_physical_address("").status == "fail"
    assert d.judge_physical_address(" 1 Main St\n Springfield ").detail == (
        "set: 1 Main St Springfield")


@pytest.mark.parametrize("sent, bounced, status", [
    (0, 0, "pass"), (100, 1, "pass"), (100, 2, "warn"), (100, 5, "warn"), (100, 6, "fail"),
    (20, 2, "fail"),
])
def test_bounce_rate_over_the_pause_threshold_fails(sent, bounced, status):
    assert d.judge_bounce_rate(sent, bounced, 0.05).status == status


@pytest.mark.parametrize("provider, domain, daily, hourly, status", [
    ("gmail", "acme.test", 2000, 100, "pass"),
    ("gmail", "acme.test", 2001, 100, "fail"),
    ("gmail", "gmail.com", 600, 100, "fail"),        # consumer account: 500 a day
    ("gmail", "gmail.com", 500, 100, "pass"),
    ("outlook", "acme.test", 10_000, 1800, "pass"),
    ("outlook", "acme.test", 10_001, 100, "fail"),
    ("outlook", "acme.test", 1000, 1801, "fail"),    # over 30 a minute
    ("gmail", "acme.test", None, 100, "pass"),       # an address that is no inbox
    (None, "acme.test", 500, 100, "unknown"),
])
def test_caps_within_the_providers_limits(provider, domain, daily, hourly, status):
    assert d.judge_caps(provider, domain, daily, hourly).status == status


@pytest.mark.parametrize("kind, config, mx, provider", [
    ("gmail", {}, [], "gmail"),
    ("outlook", {}, [], "outlook"),
    ("smtp", {"smtp_host": "smtp.gmail.com"}, [], "gmail"),
    ("smtp", {"smtp_host": "smtp.office365.com"}, [], "outlook"),
    (None, None, ["acme-test.mail.protection.outlook.com"], "outlook"),
    (None, None, ["aspmx.l.google.com"], "gmail"),
    ("maildir", {}, ["mx.acme.test"], None),
])
def test_the_provider_is_told_by_inbox_kind_smtp_host_or_mx(kind, config, mx, provider):
    assert d.provider_of(kind, config, mx) == provider


def test_overall_ok_is_false_only_when_a_check_failed():
    checks = [d.Check("mx", "pass", ""), d.Check("spf", "warn", ""), d.Check("x", "unknown", "")]
    assert d.overall_ok(checks)
    assert not d.overall_ok([*checks, d.Check("dkim", "fail", "")])
