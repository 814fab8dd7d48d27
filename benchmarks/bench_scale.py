"""The scale curve (issue 15): every stage at 10k, 100k and 1M enrollments.

    .venv/bin/python benchmarks/bench_scale.py [--sizes 10000 100000 1000000]

For each size N, in a process of its own (so each size has its own peak memory), on a fresh
database: import a CSV of N contacts (streamed from a file) and enroll them all, as
`seqctl enroll scale --csv FILE` does (one `enroll_stream` call: the import column ends when
enrolling starts, and the commit is in the enroll column); the same
rows written with plain `sqlite3` `executemany` into the same tables (the yardstick, same
run); an idle tick; a tick with 10,000 steps due (the engine phase, then dispatch to maildir
under the hourly cap); a sync of 1,000 replies to those emails; `stats`. No stage should grow
faster than its own work: the idle tick, the 10k-due tick and the sync do the same work at
every N. Prints a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

SEQUENCE = """
name: scale
steps:
  - step_type: email
    delay_calendar_days: 30
    subject: "Hi {{first_name}}"
    body: "Hello {{first_name}} at {{company_name}}"
  - step_type: email
    delay_business_days: 3
    body: "Following up"
"""
DUE = 10_000
REPLIES = 1_000


def write_csv(path: Path, rows: int) -> None:
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("email,first_name,last_name,company_name,job_title\n")
        for i in range(rows):
            out.write(f"person{i}@company{i % 5000}.example,First{i},Last{i},"
                      f"Company {i % 5000},Role {i % 17}\n")


def raw_executemany(folder: Path, rows: int, now: str) -> float:
    """The same contacts and enrollments written with plain sqlite3 into seqctl's schema."""
    from seqctl import db as database

    path = folder / "raw.db"
    database.connect(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("INSERT INTO sequences (id, name, created_at, updated_at) VALUES (1, 's', ?, ?)",
                 [now, now])
    conn.execute("INSERT INTO steps (id, sequence_id, position, step_type, body) "
                 "VALUES (1, 1, 1, 'email', 'b')")
    started = time.perf_counter()
    with open(folder / "contacts.csv", encoding="utf-8") as source:
        next(source)
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO contacts (email, first_name, last_name, company_name, "
            "custom_fields_json, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((e, f, la, c, json.dumps({"job_title": j}), now, now)
             for e, f, la, c, j in (line.rstrip("\n").split(",") for line in source)))
        conn.executemany(
            "INSERT INTO enrollments (sequence_id, contact_id, status, variant, step_id, "
            "anchor_at, next_run_at, enrolled_at, updated_at) "
            "VALUES (1, ?, 'active', 'A', 1, ?, ?, ?, ?)",
            ((i, now, now, now, now) for i in range(1, rows + 1)))
        conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    conn.close()
    return seconds


def reply(i: int, to_email: str, message_id: str) -> bytes:
    return (f"From: {to_email}\r\nTo: rep@scale.example\r\nSubject: Re: Hi\r\n"
            f"Message-ID: <r{i}@client.example>\r\nIn-Reply-To: {message_id}\r\n\r\n"
            f"Thanks, let's talk.\r\n").encode()


def measure(size: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="seqctl-bench-scale-"))
    os.environ["SEQCTL_HOME"] = str(folder)
    from seqctl import clock, config
    from seqctl import db as database
    from seqctl.engine import (
        accounts,
        analytics,
        cycle,
        enroll,
        sequence_reader,
        sequence_store,
        sync,
    )
    from seqctl.files import install_secret
    from seqctl.providers.maildir import create_maildir

    key = install_secret(config.home())
    db = database.get()
    now = clock.parse_instant("2026-03-02T10:00:00Z")
    clock.set_now(now)
    accounts.add_user(db, "rep@scale.example", "Rep")
    create_maildir(folder / "mail")
    accounts.add_inbox(db, "maildir", "rep@scale.example", {"dir": str(folder / "mail")})
    sequence_store.apply_spec(db, sequence_reader.validate_sequence(SEQUENCE).spec, now)
    write_csv(folder / "contacts.csv", size)
    result: dict = {"size": size}

    # `seqctl enroll scale --csv contacts.csv`: the command's engine call, with the command's
    # own result handler (without --json)
    from seqctl.commands.enroll import _Report

    report = _Report(json_out=False)
    seen = {"results": 0, "enrolling_from": 0.0}

    def enrolling(done: int, total: int) -> None:
        if not seen["enrolling_from"]:
            seen["enrolling_from"] = time.perf_counter()    # every CSV row is upserted

    def on_result(row: dict) -> None:
        seen["results"] += 1
        report.result(row)

    started = time.perf_counter()
    with open(folder / "contacts.csv", "rb") as stream:
        counts = enroll.enroll_stream(db, "scale", now, csv=(stream, "contacts.csv"),
                                      on_result=on_result, progress=enrolling)
    finished = time.perf_counter()
    report.close()
    result["import"] = seen["enrolling_from"] - started
    result["enroll"] = finished - seen["enrolling_from"]
    assert counts["enrolled"] == size == seen["results"], counts
    result["raw"] = raw_executemany(folder, size, clock.iso(now))

    later = now + timedelta(minutes=1)          # minute 1: no sync phase on */5
    times = []
    for minute in range(1, 6):
        started = time.perf_counter()
        cycle.run(db, now + timedelta(minutes=minute), key=key, phase="all")
        times.append(time.perf_counter() - started)
    result["idle_tick"] = min(times)

    due = min(DUE, size)
    db.execute("UPDATE enrollments SET next_run_at = ? WHERE id <= ?", [clock.iso(now), due])
    later = now + timedelta(minutes=11)
    started = time.perf_counter()
    counts = cycle.run(db, later, key=key, phase="all")
    result["due_tick"] = time.perf_counter() - started
    assert counts.emails_queued == due, counts
    sent = db.execute("SELECT to_email, message_id FROM outbox WHERE status = 'sent' "
                      "LIMIT ?", [REPLIES]).fetchall()
    new = folder / "mail" / "inbox" / "new"
    for i, (to_email, message_id) in enumerate(sent):
        (new / f"{1767690000 + i}.{i}_scale.host").write_bytes(reply(i, to_email, message_id))
    started = time.perf_counter()
    synced = sync.run_sync(db, later + timedelta(minutes=4))
    result["sync"] = time.perf_counter() - started
    result["synced"] = synced
    started = time.perf_counter()
    analytics.sequence_stats(db, "scale")
    result["stats"] = time.perf_counter() - started
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)   # the child's own size
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one)))
        return
    results = []
    for size in args.sizes:
        proc = subprocess.run([sys.executable, __file__, "--one", str(size)],
                              capture_output=True, text=True, check=False)
        if proc.returncode:
            raise SystemExit(proc.stderr[-3000:])
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))

    print(f"seqctl scale curve — Python {platform.python_version()}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d')}\n")
    print("| enrollments | import | enroll | import + enroll / raw executemany | idle tick "
          f"| tick, {DUE:,} due | sync, {REPLIES:,} replies | stats | peak memory |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        both = r["import"] + r["enroll"]
        print(f"| {r['size']:,} | {r['import']:.2f} s | {r['enroll']:.2f} s "
              f"| {both:.2f} s / {r['raw']:.2f} s = {both / r['raw']:.1f}x "
              f"| {r['idle_tick'] * 1000:.0f} ms | {r['due_tick']:.2f} s | {r['sync']:.2f} s "
              f"| {r['stats'] * 1000:.0f} ms | {r['peak_mb']:.0f} MB |")


if __name__ == "__main__":
    main()
