"""Window queries benchmark (issue 15): the hourly cap and the bounce-rate check at 1M sent rows.

    .venv/bin/python benchmarks/bench_queries.py [--sent 1000000]

Fills one inbox's history straight in SQL: N sent emails over about a year (the newest in the
current hour), one `sent` event each, a bounce on every 50th, and a pause and a resume of the
inbox. Then times, median of many calls, what a busy tick asks on every dispatch and every sync:
the hourly-cap count (`dispatch.sent_this_hour`) and the bounce-rate check
(`inbox_health.check_bounce_rate`). The same calls are timed again with the window indexes of
`m_throughput_cap_and_bounce_indexes` dropped, in the same run: the "before".
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

NOW = "2026-12-01T10:30:00Z"


def seed(db, sent: int, now) -> None:
    from seqctl.clock import iso

    conn = db.conn
    start = iso(now)
    conn.execute("BEGIN")
    conn.execute("INSERT INTO users (id, email, created_at) VALUES (1, 'rep@bench.example', ?)",
                 [start])
    conn.execute("INSERT INTO inboxes (id, address, kind, user_id, created_at) "
                 "VALUES (1, 'rep@bench.example', 'maildir', 1, ?)", [start])
    step = 365 * 86400 // sent           # seconds between sends, the newest 30 min ago
    times = [iso(now - timedelta(seconds=1800 + (sent - i) * step)) for i in range(sent)]
    conn.executemany(
        "INSERT INTO outbox (id, inbox_id, to_email, status, scheduled_at, next_attempt_at, "
        "message_id, created_at, sent_at) VALUES (?, 1, 'x@example.com', 'sent', ?, ?, ?, ?, ?)",
        ((i + 1, t, t, f"<{i + 1}@bench.example>", t, t) for i, t in enumerate(times)))
    conn.executemany(
        "INSERT INTO events (kind, at, outbox_id, inbox_id) VALUES ('sent', ?, ?, 1)",
        ((t, i + 1) for i, t in enumerate(times)))
    conn.executemany(
        "INSERT INTO events (kind, at, outbox_id, inbox_id) VALUES ('bounce', ?, ?, 1)",
        ((t, i + 1) for i, t in enumerate(times) if i % 50 == 0))
    conn.execute("INSERT INTO events (kind, at, inbox_id) VALUES ('inbox_paused', ?, 1)",
                 [times[sent // 2]])
    conn.execute("INSERT INTO events (kind, at, inbox_id) VALUES ('inbox_resumed', ?, 1)",
                 [times[sent // 2 + 10]])
    conn.execute("COMMIT")      # no ANALYZE: seqctl never runs it, so neither does this


def median_ms(fn, calls: int) -> float:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sent", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    from seqctl import clock
    from seqctl import db as database
    from seqctl.engine import dispatch, inbox_health

    folder = Path(tempfile.mkdtemp(prefix="seqctl-bench-queries-"))
    db = database.connect(folder / "seqctl.db")
    now = clock.parse_instant(NOW)
    t = time.perf_counter()
    seed(db, args.sent, now)
    seeded = time.perf_counter() - t
    checks = [
        ("hourly-cap count (`dispatch.sent_this_hour`)",
         lambda: dispatch.sent_this_hour(db, now)),
        ("bounce-rate check (`inbox_health.check_bounce_rate`)",
         lambda: inbox_health.check_bounce_rate(db, 1, now)),
    ]
    after = [median_ms(fn, args.calls) for _, fn in checks]
    results = [fn() for _, fn in checks]
    db.execute("DROP INDEX outbox_sent_at")
    db.execute("DROP INDEX events_inbox")
    before = [median_ms(fn, max(3, args.calls // 10)) for _, fn in checks]
    assert [fn() for _, fn in checks] == results

    print(f"seqctl window queries — Python {platform.python_version()}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d')}; {args.sent:,} sent emails (seeded in {seeded:.0f} s)\n")
    print("| query, per busy tick | without the window indexes | with them | target |")
    print("|---|---|---|---|")
    for (label, _), b, a in zip(checks, before, after, strict=True):
        target = "≤ 5 ms" if "cap" in label else ""
        print(f"| {label} | {b:.1f} ms | {a:.2f} ms | {target} |")


if __name__ == "__main__":
    main()
