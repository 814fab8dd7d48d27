"""Engine benchmarks (issue 2): 100k contacts and enrollments on a real SQLite file.

    .venv/bin/python benchmarks/bench_engine.py [--contacts 100000] [--due 10000]

Measures: CSV import + enroll of N contacts; a tick whose engine phase fires DUE steps among
N active enrollments; a tick with nothing due (at N/10 and N enrollments, to show it does not
grow); peak memory (max RSS). Targets: import+enroll < 10 s, engine phase < 5 s, idle tick
< 0.3 s, peak memory < 250 MB. Results are printed as a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

SEQUENCE = """
name: bench
timezone: UTC
steps:
  - step_type: email
    subject: "Hi {{first_name}}"
    body: "Hello {{first_name}} at {{company_name}}"
  - step_type: call
    delay_business_days: 2
    title: "Call {{first_name}}"
  - step_type: email
    delay_business_days: 3
    body: "Following up"
"""


def csv_bytes(n: int) -> bytes:
    lines = ["email,first_name,last_name,company_name,job_title"]
    for i in range(n):
        lines.append(f"person{i}@company{i % 5000}.example,First{i},Last{i},Company {i % 5000},"
                     f"Role {i % 17}")
    return ("\n".join(lines) + "\n").encode()


def idle_tick(cycle, db, when, key: bytes) -> float:
    """The best of five whole ticks (sync, engine, dispatch) with nothing due, in seconds."""
    times = []
    for _ in range(5):
        started = time.perf_counter()
        cycle.run(db, when, key=key, phase="all")
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=10_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="seqctl-bench-"))
    os.environ["SEQCTL_HOME"] = str(folder)

    from seqctl import clock, config
    from seqctl import db as database
    from seqctl.engine import (
        accounts,
        contacts,
        cycle,
        enroll,
        sequence_reader,
        sequence_store,
        tick,
    )
    from seqctl.engine.counts import TickCounts
    from seqctl.files import install_secret
    from seqctl.providers.maildir import create_maildir

    db = database.get()
    key = install_secret(config.home())
    now = clock.parse_instant("2026-03-02T10:00:00Z")
    clock.set_now(now)
    accounts.add_user(db, "rep@bench.example", "Rep")
    create_maildir(folder / "mail")
    accounts.add_inbox(db, "maildir", "rep@bench.example", {"dir": str(folder / "mail")})
    validation = sequence_reader.validate_sequence(SEQUENCE)
    sequence_store.apply_spec(db, validation.spec, now)
    # the first step is due in the future for everyone, so enrolling fires nothing yet
    db.execute("UPDATE steps SET delay_calendar_days = 30 WHERE position = 1")
    results: list[tuple[str, str, str]] = []

    data = csv_bytes(args.contacts)
    t0 = time.perf_counter()
    imported = contacts.import_contacts(db, data, filename="bench.csv", keep_emails=True)
    t1 = time.perf_counter()
    tenth = args.contacts // 10
    summary = enroll.enroll(db, "bench", imported.emails[:tenth], now, normalised=True)
    t_tenth = time.perf_counter()
    idle_small = idle_tick(cycle, db, now + timedelta(minutes=5), key)
    t_gap = time.perf_counter()
    summary2 = enroll.enroll(db, "bench", imported.emails[tenth:], now, normalised=True)
    t2 = time.perf_counter() - (t_gap - t_tenth)        # enrolling time only
    assert summary["enrolled"] + summary2["enrolled"] == args.contacts
    results.append((f"CSV import of {args.contacts:,} contacts", f"{t1 - t0:.2f} s", ""))
    results.append((f"enroll {args.contacts:,} contacts", f"{t2 - t1:.2f} s", ""))
    results.append(("import + enroll", f"{t2 - t0:.2f} s", "< 10 s"))

    later = now + timedelta(minutes=5)
    results.append((f"tick with nothing due ({tenth:,} enrollments)",
                    f"{idle_small * 1000:.1f} ms", ""))
    results.append((f"tick with nothing due ({args.contacts:,} enrollments)",
                    f"{idle_tick(cycle, db, later, key) * 1000:.1f} ms", "< 300 ms, flat"))

    db.execute("UPDATE enrollments SET next_run_at = ? WHERE id <= ?",
               [clock.iso(now), args.due])
    counts = TickCounts()
    t = time.perf_counter()
    tick.run_engine(db, later, counts, key=key)
    engine_time = time.perf_counter() - t
    assert counts.emails_queued == args.due, counts
    results.append((f"engine phase: {args.due:,} due among {args.contacts:,}",
                    f"{engine_time:.2f} s", "< 5 s"))
    t = time.perf_counter()
    counts = cycle.run(db, later, key=key, phase="dispatch")
    dispatch_time = time.perf_counter() - t
    db.execute("UPDATE settings SET value = value WHERE 0")
    results.append((f"dispatch phase: {counts.emails_sent:,} emails to maildir "
                    "(hourly cap 100)", f"{dispatch_time:.2f} s", ""))

    idle = []
    for _ in range(5):
        t = time.perf_counter()
        cycle.run(db, later + timedelta(minutes=1), key=key, phase="engine")
        idle.append(time.perf_counter() - t)
    results.append(("engine phase with nothing due, after", f"{min(idle) * 1000:.1f} ms", ""))

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results.append(("peak memory (max RSS)", f"{peak:.0f} MB", "< 250 MB"))

    print(f"seqctl engine benchmark — {platform.python_version()}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d')}\n")
    print("| measurement | result | target |")
    print("|---|---|---|")
    for name, value, target in results:
        print(f"| {name} | {value} | {target} |")


if __name__ == "__main__":
    main()
