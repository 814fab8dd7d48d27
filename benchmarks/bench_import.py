"""Streaming CSV import (issue 9): peak memory of `seqctl contacts import` on a big file.

    .venv/bin/python benchmarks/bench_import.py [--rows 600000]

Writes a contacts CSV of ROWS rows (600,000 rows is about 30 MB) into a temp folder, then runs
`seqctl contacts import` on it as its own process, twice (a first import creates every
contact, a second updates them all), and reports each one's wall time and peak resident memory
(max RSS of that process). Target: peak RSS of 200 MB or less. Results are printed as a
Markdown table for the README.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

# Runs in the child: the import as the CLI does it, then the child's own peak RSS (KiB on Linux).
CHILD = """
import resource, sys
from seqctl.cli import main
try:
    main(["contacts", "import", sys.argv[1]])
except SystemExit as exc:
    code = exc.code
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, code, file=sys.stderr)
"""


def write_csv(path: Path, rows: int) -> int:
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("email,first_name,last_name,company_name\n")
        for i in range(rows):
            out.write(f"p{i}@c{i % 5000}.example,F{i},L{i},Co {i % 5000}\n")
    return path.stat().st_size


def run_import(csv_path: Path, home: Path) -> tuple[float, float, str]:
    env = {**os.environ, "SEQCTL_HOME": str(home)}
    env.pop("SEQCTL_DB", None)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(csv_path)], capture_output=True,
                          text=True, env=env, cwd=HERE, check=False)
    elapsed = time.perf_counter() - started
    *messages, last = proc.stderr.strip().splitlines()
    peak_kib, code = last.split()
    if code not in ("0", "None"):
        raise SystemExit(f"import failed ({code}): {proc.stderr}")
    return elapsed, int(peak_kib) / 1024, (messages or [""])[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=600_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="seqctl-bench-import-") as folder:
        folder_path = Path(folder)
        csv_path = folder_path / "contacts.csv"
        size = write_csv(csv_path, args.rows)
        home = folder_path / "home"
        results = []
        for label in ("first import (creates)", "second import (updates)"):
            elapsed, peak, summary = run_import(csv_path, home)
            results.append((label, f"{elapsed:.1f} s", f"{peak:.0f} MB", summary))
        baseline_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"seqctl import benchmark — {platform.python_version()}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d')}; {args.rows:,} rows, {size / 1e6:.1f} MB "
          f"(this script itself: {baseline_kib / 1024:.0f} MB)\n")
    print("| import | wall time | peak RSS (target ≤ 200 MB) | summary |")
    print("|---|---|---|---|")
    for row in results:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
