"""Stats benchmark (issue 15): `seqctl stats` on 100k enrollments and about 300k events.

    .venv/bin/python benchmarks/bench_stats.py [--enrollments 100000 300000]

Builds, straight in SQL, one A/B sequence of three email steps with N enrollments, and per
enrollment the events a real campaign leaves: about two `sent`, opens (some a scanner's),
clicks, replies, bounces, unsubscribes, meetings and auto-replies, about 3 events per
enrollment. Then times `analytics.sequence_stats` (what `seqctl stats --json` prints) against
the same counts read with one plain SQL query per counter (the baseline, same run), and checks
that both agree. Prints a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

START = "2026-01-05T09:00:00Z"


def stamp(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1767603600 + seconds))


def seed(db, enrollments: int) -> int:
    """One sequence, three email steps (step 1 with a variant B), N enrollments and their
    events. Returns the number of events."""
    rng = random.Random(15)
    conn = db.conn
    conn.execute("BEGIN")
    conn.execute("INSERT INTO users (id, email, created_at) VALUES (1, 'rep@bench.example', ?)",
                 [START])
    conn.execute("INSERT INTO inboxes (id, address, kind, user_id, created_at) "
                 "VALUES (1, 'rep@bench.example', 'maildir', 1, ?)", [START])
    conn.execute("INSERT INTO sequences (id, name, created_at, updated_at) "
                 "VALUES (1, 'bench', ?, ?)", [START, START])
    for position in (1, 2, 3):
        conn.execute(
            "INSERT INTO steps (id, sequence_id, position, step_type, subject, body, "
            "variant_b_json) VALUES (?, 1, ?, 'email', 's', 'b', ?)",
            [position, position, '{"subject": "b", "body": "b"}' if position == 1 else None])
    conn.executemany(
        "INSERT INTO contacts (id, email, created_at, updated_at) VALUES (?, ?, ?, ?)",
        ((i, f"person{i}@company{i % 5000}.example", START, START)
         for i in range(1, enrollments + 1)))
    conn.executemany(
        "INSERT INTO enrollments (id, sequence_id, contact_id, inbox_id, status, variant, "
        "anchor_at, enrolled_at, updated_at) VALUES (?, 1, ?, 1, 'active', ?, ?, ?, ?)",
        ((i, i, "AB"[i % 2], START, START, START) for i in range(1, enrollments + 1)))
    outbox, events = [], []
    outbox_id = 0
    for enrollment in range(1, enrollments + 1):
        variant = "AB"[enrollment % 2]
        steps = 1 + (rng.random() < 0.8) + (rng.random() < 0.4)
        for step in range(1, steps + 1):
            outbox_id += 1
            sent = enrollment * 7 + step * 86400 * 3
            outbox.append((outbox_id, enrollment, step, enrollment, variant,
                           f"<{outbox_id}@bench.example>", stamp(sent)))
            events.append(("sent", stamp(sent), enrollment, step, enrollment, outbox_id,
                           variant, "{}"))
            roll = rng.random()
            if roll < 0.25:
                scanner = rng.random() < 0.2
                detail = '{"scanner": true}' if scanner else "{}"
                events.append(("open", stamp(sent + (2 if scanner else 3600)), enrollment,
                               step, enrollment, outbox_id, variant, detail))
            if roll < 0.10:
                events.append(("click", stamp(sent + 4000), enrollment, step, enrollment,
                               outbox_id, variant, "{}"))
        roll = rng.random()
        kind = ("reply" if roll < 0.05 else "bounce" if roll < 0.065 else
                "unsubscribe" if roll < 0.075 else "auto_reply" if roll < 0.085 else
                "meeting" if roll < 0.09 else None)
        if kind:
            events.append((kind, stamp(enrollment * 7 + 86400 * 12), enrollment, steps,
                           enrollment, outbox_id, variant, "{}"))
    conn.executemany(
        "INSERT INTO outbox (id, enrollment_id, step_id, inbox_id, contact_id, to_email, status, "
        "variant, scheduled_at, next_attempt_at, message_id, created_at, sent_at) "
        "VALUES (?, ?, ?, 1, ?, 'x@example.com', 'sent', ?, ?, ?, ?, ?, ?)",
        ((o, e, s, c, v, t, t, m, t, t) for o, e, s, c, v, m, t in outbox))
    conn.executemany(
        "INSERT INTO events (kind, at, enrollment_id, sequence_id, step_id, contact_id, "
        "outbox_id, inbox_id, variant, detail_json) VALUES (?, ?, ?, 1, ?, ?, ?, 1, ?, ?)",
        events)
    conn.execute("COMMIT")      # no ANALYZE: seqctl never runs it
    return len(events)


BASELINE = {
    "sent": "SELECT step_id, variant, COUNT(DISTINCT outbox_id) FROM events "
            "WHERE sequence_id = 1 AND kind = 'sent' GROUP BY step_id, variant",
    "opens": "SELECT step_id, variant, COUNT(DISTINCT outbox_id) FROM events "
             "WHERE sequence_id = 1 AND kind = 'open' "
             "AND json_extract(detail_json, '$.scanner') IS NULL GROUP BY step_id, variant",
    "clicks": "SELECT step_id, variant, COUNT(DISTINCT outbox_id) FROM events "
              "WHERE sequence_id = 1 AND kind = 'click' "
              "AND json_extract(detail_json, '$.scanner') IS NULL GROUP BY step_id, variant",
    "replies": "SELECT step_id, variant, COUNT(DISTINCT enrollment_id) FROM events "
               "WHERE sequence_id = 1 AND kind = 'reply' GROUP BY step_id, variant",
}


def baseline(db) -> dict[str, dict[tuple[int, str], int]]:
    """The counts the stats need, one plain query each (the yardstick)."""
    counts: dict[str, dict[tuple[int, str], int]] = {}
    for counter, sql in BASELINE.items():
        counts[counter] = {(s, v): n for s, v, n in db.execute(sql)}
    for kind in ("bounce", "unsubscribe", "meeting"):
        counts[kind] = {(s, v): n for s, v, n in db.execute(
            "SELECT step_id, variant, COUNT(DISTINCT enrollment_id) FROM events "
            "WHERE sequence_id = 1 AND kind = ? GROUP BY step_id, variant", [kind])}
    db.execute("SELECT COUNT(*) FROM enrollments WHERE sequence_id = 1").fetchone()
    db.execute("SELECT COUNT(DISTINCT enrollment_id) FROM events WHERE sequence_id = 1 "
               "AND kind = 'auto_reply'").fetchone()
    return counts


def best(fn, runs: int = 5) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--enrollments", type=int, nargs="+", default=[100_000, 300_000])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from seqctl import db as database
    from seqctl.engine import analytics

    rows = []
    for n in args.enrollments:
        folder = Path(tempfile.mkdtemp(prefix="seqctl-bench-stats-"))
        db = database.connect(folder / "seqctl.db")
        events = seed(db, n)
        stats_time, stats = best(lambda db=db: analytics.sequence_stats(db, "bench"), args.runs)
        base_time, counts = best(lambda db=db: baseline(db), args.runs)
        sent = sum(counts["sent"].values())
        assert stats["totals"]["sent"] == sent, (stats["totals"]["sent"], sent)
        assert stats["totals"]["replies"] == sum(counts["replies"].values())
        assert stats["totals"]["opens"] == sum(counts["opens"].values())
        rows.append((f"{n:,} enrollments, {events:,} events", stats_time, base_time))
        db.close()

    print(f"seqctl stats benchmark — Python {platform.python_version()}, {os.cpu_count()} "
          f"cores, {time.strftime('%Y-%m-%d')}\n")
    print("| data | `stats` (median of runs) | plain SQL, same counts | ratio |")
    print("|---|---|---|---|")
    for label, stats_time, base_time in rows:
        print(f"| {label} | {stats_time:.2f} s | {base_time:.2f} s "
              f"| {stats_time / base_time:.1f}x |")


if __name__ == "__main__":
    main()
