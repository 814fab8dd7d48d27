"""Analytics: the counting rules of SPEC 13 on real sent emails, the significance test against
a reference, and scanner detection."""

from __future__ import annotations

import email
import email.policy
import json
import re
from datetime import timedelta

import pytest

from seqctl import config
from seqctl.commands.stats import bar
from seqctl.engine import analytics, outcomes, tracking
from seqctl.engine import links as signed
from seqctl.engine.render import variant_for
from seqctl.files import install_secret
from tests.helpers import apply_yaml, at, enroll_all, setup_account, tick

T0 = at("2026-03-02T14:00:00Z")           # a Monday
STEP2_AT = T0 + timedelta(days=2)

TRACKED = """
    name: numbers
    timezone: UTC
    pause_on_auto_reply: false
    track_opens: true
    track_clicks: true
    steps:
      - step_type: email
        subject: "Hello {{first_name}}"
        body: "Hi, see https://acme.test/demo and https://acme.test/pricing?plan=pro"
        variant_b:
          subject: "A question"
          body: "Hi, a look: https://acme.test/demo and https://acme.test/pricing?plan=pro"
      - step_type: email
        delay_calendar_days: 2
        body: "Bumping this: https://acme.test/demo"
"""

CONTACTS = [f"c{n}@client{n}.test" for n in range(1, 9)]


def setup_tracked(home, base_url: str = "https://t.acme.test", contacts=CONTACTS):
    """A maildir account, the tracked two-step sequence, `contacts` enrolled at T0 and the
    first email sent to each at T0. Returns the database."""
    db, _ = setup_account(home)
    db.execute("INSERT INTO settings (key, value) VALUES ('tracking_base_url', ?)", [base_url])
    apply_yaml(db, TRACKED, T0)
    enroll_all(db, "numbers", contacts, T0)
    tick(db, T0)
    return db


def sent_raw(db, address: str, position: int) -> bytes:
    row = db.execute(
        "SELECT o.raw FROM outbox o JOIN steps s ON s.id = o.step_id "
        "WHERE o.to_email = ? AND s.position = ? AND o.status = 'sent'", [address, position]
    ).fetchone()
    assert row is not None, f"no email {position} sent to {address}"
    return bytes(row[0]) if not isinstance(row[0], str) else row[0].encode()


def links(raw: bytes) -> dict:
    """The tracking links of a sent message: pixel, click links by target URL, unsubscribe."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    html_part = message.get_body(preferencelist=("html",)).get_content()
    clicks = {}
    for href, text in re.findall(r'<a href="([^"]+)">([^<]+)</a>', html_part):
        if "/c/" in href:
            clicks[text.replace("&amp;", "&")] = href.replace("&amp;", "&")
    pixel = re.search(r'<img src="([^"]+)"', html_part)
    unsubscribe = re.search(r"<(https?://[^>]+/u/[^>]+)>", str(message["List-Unsubscribe"]))
    return {"pixel": pixel[1] if pixel else None, "clicks": clicks,
            "unsubscribe": unsubscribe[1] if unsubscribe else None}


def key() -> bytes:
    """The install secret of the test home (what `seqctl serve` signs and checks with)."""
    return install_secret(config.home())


def token(url: str, kind: str) -> signed.Token:
    verified = signed.verify(kind, url.rsplit("/", 1)[1], key=key())
    assert verified is not None
    return verified


def contact_id(db, address: str) -> int:
    return db.execute("SELECT id FROM contacts WHERE email = ?", [address]).fetchone()[0]


def test_stats_match_hand_counted_sends_opens_clicks_and_outcomes(home):
    db = setup_tracked(home)
    variants = dict(db.execute(
        "SELECT c.email, e.variant FROM enrollments e JOIN contacts c ON c.id = e.contact_id"))
    # the A/B split is a hash of the enrollment id: enrollments 1..8
    assert [variants[a] for a in CONTACTS] == [variant_for(n) for n in range(1, 9)]
    assert [variants[a] for a in CONTACTS] == ["B", "A", "A", "B", "B", "B", "B", "A"]
    c1, c2, c3, c4, c5, c6, c7, c8 = CONTACTS
    first = {address: links(sent_raw(db, address, 1)) for address in CONTACTS}
    demo, pricing = "https://acme.test/demo", "https://acme.test/pricing?plan=pro"
    assert set(first[c3]["clicks"]) == {demo, pricing}

    def open_(address, when, step=first):
        assert tracking.record_open(db, token(step[address]["pixel"], "o"), when)

    def click(address, url, when, step=first):
        assert tracking.record_click(
            db, token(step[address]["clicks"][url], "c"), when, key=key()
        ) == url

    # c1 (B) replies, then writes again: one reply
    outcomes.on_reply(db, contact_id(db, c1), T0 + timedelta(hours=1))
    outcomes.on_reply(db, contact_id(db, c1), T0 + timedelta(hours=2))
    # c2 (A) opens and sends an out-of-office: an auto-reply is not a reply
    open_(c2, T0 + timedelta(minutes=30))
    outcomes.on_auto_reply(db, contact_id(db, c2), T0 + timedelta(hours=1))
    # c3 (A) opens twice and clicks the same link twice: one open, one click
    open_(c3, T0 + timedelta(minutes=10))
    click(c3, demo, T0 + timedelta(minutes=11))
    open_(c3, T0 + timedelta(minutes=20))
    click(c3, demo, T0 + timedelta(minutes=21))
    # c4 (B): a gateway fetches the pixel and a link seconds after delivery; a soft bounce
    open_(c4, T0 + timedelta(seconds=3))
    click(c4, demo, T0 + timedelta(seconds=2))
    outcomes.on_bounce(db, contact_id(db, c4), T0 + timedelta(minutes=1), hard=False)
    # c5 (B) opens; a scanner follows every link within a second, later on
    open_(c5, T0 + timedelta(minutes=5))
    click(c5, demo, T0 + timedelta(minutes=7))
    click(c5, pricing, T0 + timedelta(minutes=7, seconds=1))
    # c6 (B) bounces hard, c7 (B) books a meeting
    outcomes.on_bounce(db, contact_id(db, c6), T0 + timedelta(minutes=1))
    outcomes.on_meeting(db, contact_id(db, c7), T0 + timedelta(days=1))
    # c8 (A) opens and clicks pricing
    open_(c8, T0 + timedelta(hours=1))
    click(c8, pricing, T0 + timedelta(hours=1, minutes=1))

    tick(db, STEP2_AT)   # step 2 goes to c2, c3, c4, c5, c8 (c1, c6, c7 exited)
    second = {a: links(sent_raw(db, a, 2)) for a in (c2, c3, c4, c5, c8)}
    # c3 replies to step 2; c8 opens step 2 and unsubscribes with its one-click link
    outcomes.on_reply(db, contact_id(db, c3), STEP2_AT + timedelta(hours=1))
    open_(c8, STEP2_AT + timedelta(minutes=10), second)
    assert tracking.unsubscribe(db, token(second[c8]["unsubscribe"], "u"),
                                STEP2_AT + timedelta(hours=1), via="test")

    flagged = db.execute("SELECT COUNT(*) FROM events WHERE kind IN ('open', 'click') "
                         "AND detail_json LIKE '%scanner%'").fetchone()[0]
    assert flagged == 4      # c4's open and click, c5's two burst clicks

    stats = analytics.sequence_stats(db, "numbers")
    assert stats["sequence"] == "numbers"
    assert stats["steps"] == [
        {"step": 1, "variant": "A", "sent": 3, "opens": 3, "clicks": 2, "replies": 0,
         "positive_replies": 0, "unsubscribes": 0, "bounces": 0, "meetings": 0,
         "open_rate": 1.0, "click_rate": 0.6667, "reply_rate": 0.0, "positive_reply_rate": 0.0},
        {"step": 1, "variant": "B", "sent": 5, "opens": 1, "clicks": 0, "replies": 1,
         "positive_replies": 0, "unsubscribes": 0, "bounces": 1, "meetings": 1,
         "open_rate": 0.2, "click_rate": 0.0, "reply_rate": 0.2, "positive_reply_rate": 0.0},
        # step 2 has no variant_b of its own, but B contacts follow up in B's thread: the
        # split goes on (c3, c8 and c2 are A; c4 and c5 are B)
        {"step": 2, "variant": "A", "sent": 3, "opens": 1, "clicks": 0, "replies": 1,
         "positive_replies": 0, "unsubscribes": 1, "bounces": 0, "meetings": 0,
         "open_rate": 0.3333, "click_rate": 0.0, "reply_rate": 0.3333, "positive_reply_rate": 0.0},
        {"step": 2, "variant": "B", "sent": 2, "opens": 0, "clicks": 0, "replies": 0,
         "positive_replies": 0, "unsubscribes": 0, "bounces": 0, "meetings": 0,
         "open_rate": 0.0, "click_rate": 0.0, "reply_rate": 0.0, "positive_reply_rate": 0.0},
    ]
    totals = stats["totals"]
    assert {k: totals[k] for k in analytics.COUNTERS} == {
        "sent": 13, "opens": 5, "clicks": 2, "replies": 2, "positive_replies": 0,
        "unsubscribes": 1, "bounces": 1, "meetings": 1}
    assert (totals["open_rate"], totals["click_rate"], totals["reply_rate"]) == (
        0.3846, 0.1538, 0.1538)
    assert totals["enrolled"] == 8 and totals["auto_replies"] == 1
    # replies logged without an intent are `unknown`
    assert totals["replies_by_intent"]["unknown"] == 2
    assert sum(totals["replies_by_intent"].values()) == totals["replies"]
    assert stats["ab_tests"][0]["step"] == 1
    assert stats["ab_tests"][0]["verdict"].startswith("not enough data yet")


def test_rates_are_zero_when_nothing_was_sent(home):
    db, _ = setup_account(home)
    apply_yaml(db, TRACKED, T0)
    stats = analytics.sequence_stats(db, "numbers")
    # step 1 has a variant B, so both arms are listed; step 2 has no sends yet
    assert [(r["step"], r["variant"], r["sent"], r["reply_rate"]) for r in stats["steps"]] == [
        (1, "A", 0, 0.0), (1, "B", 0, 0.0)]
    assert stats["totals"]["sent"] == 0 and stats["totals"]["open_rate"] == 0.0


def test_unknown_sequence_is_a_clean_error(home):
    from seqctl import db as database
    from seqctl.errors import SeqctlError

    with pytest.raises(SeqctlError, match="no sequence named 'nope'"):
        analytics.sequence_stats(database.get(), "nope")


def test_click_only_redirects_to_links_of_that_email(home):
    db = setup_tracked(home, contacts=CONTACTS[:2])
    message_id = db.execute("SELECT message_id FROM outbox WHERE to_email = ?",
                            [CONTACTS[0]]).fetchone()[0]
    later = T0 + timedelta(hours=1)
    for url, allowed in [
        ("https://acme.test/demo", True),
        ("HTTPS://ACME.test:443/demo", True),           # the same URL, normalised
        ("https://acme.test/pricing?plan=pro", True),
        ("https://acme.test/pricing?plan=enterprise", False),
        ("https://evil.test/demo", False),
        ("javascript:alert(1)", False),
    ]:
        forged = signed.link("https://t.acme.test", "c", message_id, url, key=key())
        result = tracking.record_click(db, token(forged, "c"), later, key=key())
        assert (result is not None) == allowed, url
    # demo twice in the same minute (once written differently) is one click
    assert db.execute("SELECT COUNT(*) FROM events WHERE kind = 'click'").fetchone()[0] == 2


def _click_events(db) -> list[tuple[str, str]]:
    return [(row[0], json.loads(row[1])["url"]) for row in db.execute(
        "SELECT at, detail_json FROM events WHERE kind = 'click' ORDER BY id")]


def test_clicks_are_one_per_email_link_and_minute(home):
    db = setup_tracked(home, contacts=CONTACTS[:2])
    ann, bob = (links(sent_raw(db, address, 1)) for address in CONTACTS[:2])
    demo, pricing = "https://acme.test/demo", "https://acme.test/pricing?plan=pro"
    minute = T0 + timedelta(hours=1)
    for seconds in (0, 20, 59):            # one minute, one link, one email: one click
        assert tracking.record_click(db, token(ann["clicks"][demo], "c"),
                                     minute + timedelta(seconds=seconds), key=key()) == demo
    tracking.record_click(db, token(ann["clicks"][pricing], "c"), minute, key=key())  # a link
    tracking.record_click(db, token(bob["clicks"][demo], "c"), minute, key=key())     # an email
    tracking.record_click(db, token(ann["clicks"][demo], "c"), minute + timedelta(minutes=1),
                          key=key())
    assert _click_events(db) == [
        ("2026-03-02T15:00:00Z", demo), ("2026-03-02T15:00:00Z", pricing),
        ("2026-03-02T15:00:00Z", demo), ("2026-03-02T15:01:00Z", demo)]


def _vm_steps(db, action) -> int:
    """SQLite virtual-machine steps `action` takes: a cost measure that no machine load
    changes."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    db.conn.set_progress_handler(count, 1)
    try:
        action()
    finally:
        db.conn.set_progress_handler(None, 1)
    return steps


def test_recording_a_click_costs_the_same_however_many_came_before(home):
    db = setup_tracked(home, contacts=CONTACTS[:1])
    demo_link = token(links(sent_raw(db, CONTACTS[0], 1))["clicks"]["https://acme.test/demo"],
                      "c")

    def click_at(minutes: int) -> None:
        tracking.record_click(db, demo_link, T0 + timedelta(hours=1, minutes=minutes), key=key())

    for minutes in range(10):
        click_at(minutes)
    after_ten = _vm_steps(db, lambda: click_at(10))
    for minutes in range(11, 2000):
        click_at(minutes)
    after_two_thousand = _vm_steps(db, lambda: click_at(2000))
    assert len(_click_events(db)) == 2001
    # reading every earlier click made this 200 times dearer; an index lookup grows by a level
    assert after_two_thousand < after_ten * 1.5, (after_ten, after_two_thousand)


# --- pure pieces ---------------------------------------------------------------------------

Z_CASES = [
    (10, 100, 20, 100),
    (30, 300, 45, 310),
    (1, 30, 5, 30),
    (0, 40, 3, 40),
    (50, 1000, 50, 1000),
    (120, 2000, 90, 2100),
    (7, 31, 2, 45),
    (400, 1000, 520, 1000),
]


@pytest.mark.parametrize("x1,n1,x2,n2", Z_CASES)
def test_z_test_matches_scipy_chi_square_on_the_two_by_two_table(x1, n1, x2, n2):
    # the pooled two-proportion z-test is Pearson's chi-square without continuity correction
    stats = pytest.importorskip("scipy.stats")
    chi2, p_value, _, _ = stats.chi2_contingency([[x1, n1 - x1], [x2, n2 - x2]],
                                                 correction=False)
    result = analytics.two_proportion_z_test(x1, n1, x2, n2)
    assert result.p_value == pytest.approx(p_value, rel=1e-9, abs=1e-12)
    assert result.z ** 2 == pytest.approx(chi2, rel=1e-9)
    assert (result.z > 0) == (x1 / n1 > x2 / n2)


def test_z_test_without_data_or_variation_finds_no_difference():
    assert analytics.two_proportion_z_test(0, 0, 3, 10).p_value == 1.0
    assert analytics.two_proportion_z_test(0, 50, 0, 50).p_value == 1.0
    assert analytics.two_proportion_z_test(50, 50, 50, 50).p_value == 1.0


def test_verdict_needs_thirty_sent_per_arm():
    few = analytics.compare_reply_rates("A", 10, 29, "B", 0, 29)
    assert not few.significant and not few.enough_data
    assert few.text.startswith("not enough data yet") and few.p_value is not None
    clear = analytics.compare_reply_rates("A", 15, 40, "B", 1, 40)
    assert clear.significant and clear.text.startswith("A has the higher reply rate")
    close = analytics.compare_reply_rates("A", 5, 40, "B", 4, 40)
    assert not close.significant and close.text.startswith("no significant difference")


def test_rates_round_to_four_decimals():
    assert analytics.rate(2, 3) == 0.6667
    assert analytics.rate(1, 0) == 0.0


def test_clicks_seconds_after_sending_are_a_scanners():
    sent = T0
    clicks = [(T0 + timedelta(seconds=4), "https://a.test/"),
              (T0 + timedelta(minutes=3), "https://a.test/")]
    assert analytics.scanner_clicks(sent, clicks, 1) == {0}
    assert analytics.is_early(sent, T0 + timedelta(seconds=9))
    assert not analytics.is_early(sent, T0 + timedelta(seconds=10))


def test_every_link_clicked_within_seconds_is_a_scanner_burst():
    later = T0 + timedelta(hours=2)
    links_ = ["https://a.test/", "https://b.test/", "https://c.test/"]
    burst = [(later + timedelta(seconds=i), url) for i, url in enumerate(links_)]
    assert analytics.scanner_clicks(T0, burst, 3) == {0, 1, 2}
    # the same three links over a minute are a person reading
    slow = [(later + timedelta(seconds=30 * i), url) for i, url in enumerate(links_)]
    assert analytics.scanner_clicks(T0, slow, 3) == set()
    # two of three links at once is not "every link"
    assert analytics.scanner_clicks(T0, burst[:2], 3) == set()


def test_bar_shows_the_rate():
    assert bar(0.5) == "█████░░░░░  50.0%"
    assert bar(0.0).startswith("░" * 10)
