"""Spam-score 10,000 emails from the test corpus (spec section 14: "fast").

    .venv/bin/python benchmarks/bench_spam.py [--emails 10000] [--runs 3]

Scores the clean and spammy samples of tests/data/spam_corpus.json in turn, the way
`sequence validate` and `preview` score every email step, and prints the best of the runs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from seqctl.engine.spam import score_email

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "spam_corpus.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    corpus = json.loads(CORPUS.read_text("utf-8"))
    emails = corpus["clean"] + corpus["spammy"]
    best = float("inf")
    for _ in range(args.runs):
        started = time.perf_counter()
        for index in range(args.emails):
            item = emails[index % len(emails)]
            score_email(item["subject"], item["body"], first_touch=item["first_touch"])
        best = min(best, time.perf_counter() - started)
    print(f"spam-score {args.emails} emails: {best:.2f} s best of {args.runs} "
          f"({args.emails / best:,.0f} emails/s)")


if __name__ == "__main__":
    main()
