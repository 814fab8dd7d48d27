"""Start-up benchmark (issue 15): whole-process time of the short commands, paired with a baseline.

    .venv/bin/python benchmarks/bench_startup.py [--runs 15] [--seqctl PATH] [--importtime]

Times `seqctl --version`, `seqctl --help` and an idle `seqctl tick` (a maildir inbox, nothing
due, nothing to read) as whole processes, each run paired with `python -c pass` started just
before it, so the ratio holds on a loaded machine. CPU is user + system of the child (its own
accounting); wall is a monotonic clock around it. Medians are printed.

With --importtime, each command also runs once under `python -X importtime` and the slowest
top-level imports (cumulative microseconds) are printed: what start-up spends its time on.
--seqctl names another installation's `seqctl` (e.g. a checkout of an older commit in its own
virtualenv), to measure before and after on the same machine in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
DEFAULT_SEQCTL = HERE / ".venv" / "bin" / "seqctl"


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(cpu seconds, wall seconds) of one run of argv as a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def python_of(seqctl: Path) -> str:
    """The interpreter of a console script (its #! line)."""
    first = seqctl.read_text().splitlines()[0]
    return first[2:].strip() if first.startswith("#!") else sys.executable


def import_profile(python: str, args: list[str], env: dict[str, str], top: int) -> list[str]:
    """The slowest top-level imports of `python -X importtime -m seqctl ARGS`."""
    proc = subprocess.run([python, "-X", "importtime", "-m", "seqctl", *args], env=env,
                          capture_output=True, text=True, check=False)
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        _self_us, cumulative, name = line.removeprefix("import time:").split("|")
        if not cumulative.strip().isdigit():
            continue
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        rows.append((int(cumulative), depth, name.strip()))
    total = sum(c for c, depth, _ in rows if depth == 0)
    heavy = sorted((r for r in rows if r[1] <= 1), reverse=True)[:top]
    lines = [f"  all imports: {total / 1000:.0f} ms"]
    lines += [f"  {c / 1000:7.1f} ms  {'  ' * depth}{name}" for c, depth, name in heavy]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--seqctl", type=Path, default=DEFAULT_SEQCTL)
    parser.add_argument("--importtime", action="store_true")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    seqctl = args.seqctl.resolve()
    python = python_of(seqctl)

    home = Path(tempfile.mkdtemp(prefix="seqctl-startup-"))
    env = {**os.environ, "SEQCTL_HOME": str(home), "NO_COLOR": "1"}
    env.pop("SEQCTL_DB", None)
    (home / "mail").mkdir()
    # SEQCTL_NOW on a minute that is not on the sync schedule: the idle tick has no sync phase,
    # as on four of every five cron minutes
    for setup in (["users", "add", "rep@bench.example", "--first-name", "Rep"],
                  ["inbox", "add", "maildir", "rep@bench.example", "--dir", str(home / "mail")]):
        subprocess.run([str(seqctl), *setup], env=env, check=True, capture_output=True)
    idle_env = {**env, "SEQCTL_NOW": "2026-03-02T10:01:00Z"}
    sync_env = {**env, "SEQCTL_NOW": "2026-03-02T10:05:00Z"}

    baseline = [python, "-c", "pass"]
    cases = [
        ("`seqctl --version`", [str(seqctl), "--version"], env),
        ("`seqctl --help`", [str(seqctl), "--help"], env),
        ("idle `seqctl tick` (no sync this minute)", [str(seqctl), "tick"], idle_env),
        ("idle `seqctl tick` with the sync phase (empty inbox)", [str(seqctl), "tick"],
         sync_env),
    ]
    for _, argv, case_env in cases:        # warm the file cache and the .pyc files
        timed(argv, case_env)
    print(f"seqctl start-up — Python {platform.python_version()}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d %H:%M')}, {seqctl}\n")
    print("| command | CPU (median) | wall (median) | `python -c pass` CPU, same runs "
          "| ratio |")
    print("|---|---|---|---|---|")
    for label, argv, case_env in cases:
        cpu, wall, base_cpu = [], [], []
        for _ in range(args.runs):
            base_cpu.append(timed(baseline, case_env)[0])
            c, w = timed(argv, case_env)
            cpu.append(c)
            wall.append(w)
        ratio = statistics.median(c / b for c, b in zip(cpu, base_cpu, strict=True) if b)
        print(f"| {label} | {statistics.median(cpu) * 1000:.0f} ms "
              f"| {statistics.median(wall) * 1000:.0f} ms "
              f"| {statistics.median(base_cpu) * 1000:.0f} ms | {ratio:.1f}x |")
    if args.importtime:
        for label, argv, case_env in cases:
            print(f"\n`python -X importtime` of {label}:")
            print("\n".join(import_profile(python, argv[1:], case_env, args.top)))


if __name__ == "__main__":
    main()
