"""`seqctl report`: what the HTML file holds (read back with the stdlib HTML parser), that it
is self-contained, and that wrong arguments write nothing. The browser test is
tests/test_report_browser.py."""

from __future__ import annotations

import os
import re
import stat
from datetime import timedelta
from html.parser import HTMLParser

import pytest

from seqctl.engine import outcomes, report
from tests.helpers import apply_yaml, enroll_all, setup_account, tick
from tests.test_analytics import T0

SEQUENCE = """
    name: {name}
    timezone: America/Chicago
    steps:
      - step_type: email
        subject: "Hi {{{{first_name}}}}"
        body: "Short note."
        variant_b:
          subject: "Hello {{{{first_name}}}}"
          body: "Another short note."
      - step_type: call
        delay_calendar_days: 1
        title: "Call {{{{first_name}}}}"
      - step_type: email
        delay_calendar_days: 2
        body: "Following up."
"""


class Cells(HTMLParser):
    """Collects the data-* attributes and text of elements that carry any."""

    def __init__(self):
        super().__init__()
        self.stack: list[dict] = []
        self.items: list[dict] = []

    def handle_starttag(self, tag, attrs):
        data = {k[5:]: v for k, v in attrs if k.startswith("data-")}
        item = {"tag": tag, **data, "text": ""}
        if tag not in ("meta", "br", "img", "input"):
            self.stack.append(item)
        if data:
            self.items.append(item)

    def handle_endtag(self, tag):
        if self.stack:
            self.stack.pop()

    def handle_data(self, data):
        for item in self.stack:
            item["text"] += data


def parse(text: str) -> list[dict]:
    parser = Cells()
    parser.feed(text)
    return parser.items


@pytest.fixture
def campaign(home):
    """alpha: 6 contacts, 3 replies (2 positive, 1 without an intent), 1 of 6 call tasks done;
    beta: 3 contacts, no replies."""
    db, _ = setup_account(home)
    for name, count in (("alpha", 6), ("beta", 3)):
        apply_yaml(db, SEQUENCE.format(name=name), T0)
        enroll_all(db, name, [f"{name}{n}@c{n}.test" for n in range(count)], T0)
    tick(db, T0)
    tick(db, T0 + timedelta(days=1, hours=1))
    for n, intent in ((0, "positive"), (1, "positive"), (2, None)):
        contact = db.execute("SELECT id FROM contacts WHERE email = ?",
                             [f"alpha{n}@c{n}.test"]).fetchone()[0]
        outcomes.on_reply(db, contact, T0 + timedelta(days=1, hours=2))
        db.execute("UPDATE events SET detail_json = json_set(detail_json, '$.intent', ?) "
                   "WHERE kind = 'reply' AND contact_id = ?", [intent, contact])
    db.execute("UPDATE tasks SET status = 'done' WHERE id = (SELECT MIN(id) FROM tasks)")
    tick(db, T0 + timedelta(days=4))
    return db


def test_the_report_holds_the_numbers_of_stats_json_for_each_sequence(campaign, run, tmp_path):
    out = tmp_path / "report.html"
    result = run("report", "alpha", "beta", "-o", out, now="2026-03-10T12:00:00Z")
    assert result.code == 0, result.err
    assert f"wrote {out}" in result.err
    items = parse(out.read_text())
    assert [i["sequence"] for i in items if "sequence" in i] == ["alpha", "beta"]
    for name in ("alpha", "beta"):
        stats = run("stats", name, "--json").json
        html_text = out.read_text()
        section = html_text.split(f'data-sequence="{name}"')[1].split("<section")[0]
        rows = [i for i in parse(section) if i["tag"] == "tr" and "variant" in i]
        assert [(r["step"], r["variant"]) for r in rows] == [
            (str(s["step"]), s["variant"]) for s in stats["steps"]]
        cells = [i for i in parse(section) if i["tag"] == "td" and "metric" in i]
        expected = []
        for step in stats["steps"]:
            expected += [("sent", str(step["sent"])), ("opens", str(step["opens"])),
                         ("clicks", str(step["clicks"])), ("replies", str(step["replies"])),
                         ("bounces", str(step["bounces"])),
                         ("unsubscribes", str(step["unsubscribes"])),
                         ("reply_rate", f"{step['reply_rate'] * 100:.1f}%")]
        assert [(c["metric"], c["text"].strip()) for c in cells
                if c["metric"] != "p_value"] == expected
        totals = {i["total"]: i["value"] for i in parse(section) if "total" in i}
        assert totals["sent"] == str(stats["totals"]["sent"])
        assert totals["replies"] == str(stats["totals"]["replies"])
        for test in stats["ab_tests"]:
            assert test["verdict"] in section
        p_values = [c["text"].strip() for c in cells if c["metric"] == "p_value"]
        assert p_values == [f"{test['p_value']:.4f}" if test["p_value"] is not None else "–"
                            for test in stats["ab_tests"]]
        assert len(stats["ab_tests"]) >= 1
    alpha = run("stats", "alpha", "--json").json
    assert alpha["totals"]["replies"] == 3 and alpha["totals"]["sent"] == 6 + 3   # repliers exit


def test_replies_by_intent_days_and_tasks(campaign):
    data = report.sequence_report(campaign, "alpha")
    assert data["intents"] == [{"intent": "positive", "replies": 2},
                               {"intent": "unknown", "replies": 1}]
    # days in the sequence's zone (Chicago): T0 is Monday 08:00 there
    assert data["days"][0] == {"day": "2026-03-02", "sent": 6, "replies": 0}
    assert sum(day["sent"] for day in data["days"]) == data["stats"]["totals"]["sent"]
    assert sum(day["replies"] for day in data["days"]) == 3
    assert [day["day"] for day in data["days"]] == [
        f"2026-03-{n:02d}" for n in range(2, 2 + len(data["days"]))]   # no day missing
    assert data["tasks"]["totals"] == {"open": 5, "done": 1, "skipped": 0}
    assert data["tasks"]["by_kind"] == [{"kind": "call", "open": 5, "done": 1, "skipped": 0}]


def test_the_page_shows_replies_by_intent_days_and_tasks_as_stats_counts_them(campaign, run,
                                                                             tmp_path):
    out = tmp_path / "report.html"
    assert run("report", "alpha", "-o", out, now="2026-03-10T12:00:00Z").code == 0
    text = out.read_text()
    by_intent = run("stats", "alpha", "--json").json["totals"]["replies_by_intent"]
    shown = {intent: int(count) for intent, count in re.findall(
        r'data-intent="(\w+)"><td>[^<]*</td><td data-count="(\d+)"', text)}
    assert shown == {name: n for name, n in by_intent.items() if n} == {"positive": 2,
                                                                       "unknown": 1}
    tasks = dict(re.findall(r'data-tasks="(\w+)"><span class="value">(\d+)</span>', text))
    assert tasks == {"open": "5", "done": "1", "skipped": "0"}
    row = text.split('data-kind="call">')[1].split("</tr>")[0]
    assert re.findall(r"<td>([^<]*)</td>", row) == ["call", "5", "1", "0"]
    days = text.split("Sends and replies per day")[1].split('<div class="card">')[0]
    assert "<svg" in days and "03-02" in days and "America/Chicago" in days


def test_every_sequence_by_default_and_the_page_is_self_contained(campaign, run, tmp_path):
    out = tmp_path / "all.html"
    assert run("report", "-o", out).code == 0
    text = out.read_text()
    assert [i["sequence"] for i in parse(text) if "sequence" in i] == ["alpha", "beta"]
    assert "<style>" in text and text.count("<svg") >= 4
    assert 'http-equiv="Content-Security-Policy" content="default-src \'none\'' in text
    # nothing to fetch: no src/href to anywhere, no CSS import or url(), no script
    assert re.findall(r'\b(?:src|href)\s*=', text) == []
    assert "@import" not in text and "url(" not in text
    assert "<script" not in text
    assert oct(out.stat().st_mode & 0o777) == "0o644"


def test_a_name_with_markup_is_escaped(home, run, tmp_path):
    db, _ = setup_account(home)
    apply_yaml(db, SEQUENCE.format(name="'<b>x</b>'"), T0)
    out = tmp_path / "r.html"
    assert run("report", "-o", out).code == 0
    assert "<b>x</b>" not in out.read_text()
    assert "&lt;b&gt;x&lt;/b&gt;" in out.read_text()


@pytest.mark.parametrize("args, message", [
    (["nope", "-o", "{tmp}/r.html"], "no sequence named 'nope'"),
    (["alpha", "-o", "{tmp}/missing/r.html"], "does not exist"),
    (["alpha", "-o", "{tmp}"], "is a folder"),
])
def test_wrong_arguments_are_one_line_exit_1_and_write_nothing(campaign, run, tmp_path, args,
                                                              message):
    before = sorted(tmp_path.rglob("*"))
    result = run("report", *[a.format(tmp=tmp_path) for a in args])
    assert result.code in (1, 2)
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert sorted(tmp_path.rglob("*")) == before


def test_the_output_file_is_required(home, run):
    result = run("report", "alpha")
    assert result.code == 2
    assert "-o" in result.err


def test_no_sequences_is_a_clear_error(home, run, tmp_path):
    result = run("report", "-o", tmp_path / "r.html")
    assert result.code == 1
    assert "no sequences yet" in result.err
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_an_output_path_that_is_no_regular_file_is_refused_and_left_as_it_was(
        campaign, run, tmp_path, kind):
    # `-o /dev/null` or `-o /dev/stdout` once replaced the device node or the link with a
    # regular file (the atomic write renames over the path): a link, device or pipe is refused
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "elsewhere.html"
    target.write_text("keep me")
    out = folder / "out.html"
    if kind == "symlink":
        out.symlink_to(target)
    else:
        os.mkfifo(out)
    result = run("report", "alpha", "-o", out)
    assert result.code == 1
    assert "not a regular file" in result.err
    assert len(result.err.strip().splitlines()) == 1
    mode = out.lstat().st_mode
    assert stat.S_ISLNK(mode) if kind == "symlink" else stat.S_ISFIFO(mode)
    assert target.read_text() == "keep me"
    assert sorted(p.name for p in folder.iterdir()) == ["elsewhere.html", "out.html"]
