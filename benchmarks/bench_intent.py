"""Read the intent of 10,000 replies (SPEC section 18, target: 2 s or less).

    .venv/bin/python benchmarks/bench_intent.py [--replies 10000]

The replies are the labelled corpus (tests/corpus/replies/replies.yaml: four languages,
quoted history, signatures, mobile footers) taken in turn, each received on a different day
of two years. The time covers the whole of `read_intent`: cutting quotes and signatures, the
cues, the referral address and the not-now date (dateparser's reading of the same words is
cached, as it is in use; the reply's day then picks the year). The CPU time is printed too:
on a busy machine the wall time is mostly waiting. Module import and dateparser's first load
of its language data are measured apart (they happen once per process, on first use).
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

CORPUS = Path(__file__).parent.parent / "tests" / "corpus" / "replies" / "replies.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=10_000)
    args = parser.parse_args()
    corpus = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))["replies"]

    started = time.perf_counter()
    from seqctl.engine.intent import read_intent

    imported = time.perf_counter() - started
    base = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    started = time.perf_counter()
    for warm_up in ("Not now, after March 15.", "Bitte nicht vor dem 15. April.",
                    "Pas avant le 20 mars.", "Ahora no, después del 15 de abril."):
        read_intent(warm_up, base)
    warm = time.perf_counter() - started

    replies = [corpus[i % len(corpus)] for i in range(args.replies)]
    days = [base + timedelta(days=i % 730) for i in range(args.replies)]
    own = frozenset({"alex@northwindlabs.com"})
    started, cpu_started = time.perf_counter(), time.process_time()
    counts: dict[str, int] = {}
    for entry, at in zip(replies, days, strict=True):
        result = read_intent(entry["body"], at, sender=entry["from"], own_addresses=own)
        counts[result.intent] = counts.get(result.intent, 0) + 1
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started

    print(f"import seqctl.engine.intent (patterns compile on first use): {imported:.2f} s")
    print("first reply with a date in each language (imports dateparser, compiles the "
          f"patterns, loads its language data): {warm:.2f} s")
    print(f"{args.replies:,} replies: {elapsed:.2f} s ({args.replies / elapsed:,.0f} replies/s), "
          f"CPU time {cpu:.2f} s, load average {os.getloadavg()[0]:.1f}")
    print("by intent: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
