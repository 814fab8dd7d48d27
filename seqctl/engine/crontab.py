"""The crontab lines that run seqctl, and installing them without touching the user's others."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from croniter import croniter

from seqctl.clock import iso
from seqctl.errors import SeqctlError

BEGIN = "# >>> seqctl: managed by `seqctl cron --install`; edits inside are replaced >>>"
END = "# <<< seqctl <<<"


def jobs(command: str, log: Path, sync_schedule: str, split: bool, now: datetime,
         ) -> list[dict[str, Any]]:
    """The crontab entries: one `tick` a minute, or (split) the engine and dispatch phases a
    minute and the sync phase on `sync_schedule`. `command` is the environment and program
    (`SEQCTL_HOME=... /usr/bin/seqctl`); each run logs to `log`."""
    if split:
        entries = [("* * * * *", f"{command} tick --phase engine"),
                   ("* * * * *", f"{command} tick --phase dispatch"),
                   (sync_schedule, f"{command} tick --phase sync")]
    else:
        entries = [("* * * * *", f"{command} tick")]
    rows = []
    for expression, run in entries:
        upcoming = croniter(expression, now)
        rows.append({"schedule": expression, "command": run,
                     "line": f"{expression} {run} --log {log} 2>>{log}",
                     "next_runs": [iso(upcoming.get_next(datetime)) for _ in range(3)]})
    return rows


def merged(existing: str, lines: list[str]) -> str:
    """`existing` crontab text with seqctl's block replaced by `lines` (appended when there
    is none yet); every other line is kept as it was."""
    kept: list[str] = []
    inside = False
    for line in existing.splitlines():
        if line == BEGIN:
            inside = True
        elif line == END and inside:
            inside = False
        elif not inside:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    block = [BEGIN, *lines, END]
    return "\n".join([*kept, *([""] if kept else []), *block]) + "\n"


Runner = Callable[..., subprocess.CompletedProcess]


def install(lines: list[str], run: Runner = subprocess.run) -> bool:
    """Put `lines` into the user's crontab (through the `crontab` program) and keep every
    other line. Returns False when they were already there (nothing is written)."""
    try:
        current = run(["crontab", "-l"], capture_output=True, text=True)
    except FileNotFoundError:
        raise SeqctlError("no `crontab` program on PATH: add the lines printed by `seqctl "
                          "cron` to your scheduler by hand") from None
    if current.returncode != 0:
        if "no crontab" not in (current.stderr or "").lower():
            raise SeqctlError(f"crontab -l failed: {(current.stderr or '').strip()}")
        existing = ""
    else:
        existing = current.stdout
    wanted = merged(existing, lines)
    if wanted == existing:
        return False
    written = run(["crontab", "-"], input=wanted, capture_output=True, text=True)
    if written.returncode != 0:
        raise SeqctlError(f"crontab refused the new table: {(written.stderr or '').strip()}")
    return True
