"""`seqctl tick`, `sync`, `schedule`, `cron`."""

from __future__ import annotations

import os
import shutil
import sys
from typing import Annotated

import typer
from croniter import croniter

from seqctl import clock, config, output, settings
from seqctl.commands._common import JsonOpt, SequenceArg, db, install_key, instant_option
from seqctl.engine import accounts, cycle, timeline
from seqctl.engine.counts import TickCounts
from seqctl.errors import SeqctlError


def register(root: typer.Typer) -> None:
    root.command("tick")(tick)
    root.command("sync")(sync)
    root.command("schedule")(schedule)
    root.command("cron")(cron)


def _print_counts(counts: dict, json_out: bool) -> None:
    if json_out:
        output.emit_json(counts)
    else:
        output.line(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items()
                              if isinstance(v, int)))


def tick(
    now: Annotated[str | None, typer.Option("--now", help="Run as if it were this time (ISO 8601).")] = None,
    phase: Annotated[str, typer.Option("--phase", help="all | sync | engine | dispatch")] = "all",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would happen; change nothing.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Advance everything that is due: sync replies, fire steps, send emails. Run it from cron
    every minute; overlapping runs are safe (the second exits at once).

    \b
    Examples:
      seqctl tick
      seqctl tick -v --dry-run
      seqctl tick --phase dispatch --json
    """
    if phase not in cycle.PHASES:
        raise typer.BadParameter(f"must be one of {', '.join(cycle.PHASES)}", param_hint="--phase")
    if now:
        clock.set_now(instant_option(now, "--now"))
    database = db()
    try:
        with output.progress("ticking") as advance:
            counts = cycle.run(database, clock.now(), key=install_key(), phase=phase,
                               dry_run=dry_run, progress=advance)
    except cycle.TickBusy:
        output.info("another tick is running; nothing to do")
        if json_out:
            output.emit_json({**TickCounts().as_dict(), "skipped": "another tick is running"})
        return
    result: dict = counts.as_dict()
    held = accounts.held_inboxes(database, clock.now())
    for row in held:
        if row["status"] == "throttled":
            output.warn(f"inbox {row['address']} is throttled until {row['status_until']} "
                        f"(sending resumes by itself): {row['status_message']}")
        elif row["status"] == "paused_bounces":
            output.warn(f"inbox {row['address']} is paused: {row['status_message']}")
        else:
            output.warn(f"inbox {row['address']} needs reconnecting: {row['status_message']}")
    result["inboxes_held"] = [
        {"address": row["address"], "status": row["status"], "status_until": row["status_until"],
         "status_reason": row["status_message"]} for row in held]
    _print_counts(result, json_out)


def sync(
    address: Annotated[str | None, typer.Argument(help="Only this inbox.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Read new incoming mail now and apply replies, bounces, unsubscribes and bookings.

    \b
    Examples:
      seqctl sync
      seqctl sync riley@acme.test --json
    """
    try:
        synced = cycle.sync_now(db(), clock.now(), only=address)
    except cycle.TickBusy:
        output.info("a tick is running; it syncs too")
        return
    if json_out:
        output.emit_json({"synced": synced})
    else:
        output.line(f"synced {synced} messages")


def schedule(
    sequence: SequenceArg,
    contact: Annotated[str, typer.Option("--contact", help="Contact email.")],
    json_out: JsonOpt = False,
) -> None:
    """When each step fires for CONTACT: actual times for steps done, planned for the rest (as
    if enrolled now when the contact is not enrolled).

    \b
    Example:
      seqctl schedule cold-saas-intro --contact ava@acme.test
    """
    rows = timeline.timeline(db(), sequence, contact, clock.now())
    if json_out:
        output.emit_json([{k: r[k] for k in ("step", "step_type", "fires_at")} | r for r in rows])
        return
    output.table(rows, ["step", "step_type", "fires_at", "state"])


def cron(
    split: Annotated[bool, typer.Option(
        "--split", help="Separate sync, engine and dispatch lines instead of one tick line.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Print crontab lines that run seqctl, and when they run next.

    \b
    Examples:
      seqctl cron
      seqctl cron --install
      seqctl cron --split --json
    """
    exe = shutil.which("seqctl") or os.path.abspath(sys.argv[0])
    env = f"SEQCTL_HOME={config.home()} "
    if os.environ.get("SEQCTL_DB"):
        env += f"SEQCTL_DB={config.db_path()} "
    log = config.home() / "tick.log"
    sync_schedule = settings.get(db(), "sync_schedule")
    if split:
        jobs = [
            ("* * * * *", f"{env}{exe} tick --phase engine"),
            ("* * * * *", f"{env}{exe} tick --phase dispatch"),
            (sync_schedule, f"{env}{exe} tick --phase sync"),
        ]
    else:
        jobs = [("* * * * *", f"{env}{exe} tick")]
    now = clock.now()
    rows = []
    for expr, command in jobs:
        it = croniter(expr, now)
        upcoming = [clock.iso(it.get_next(type(now))) for _ in range(3)]
        rows.append({"schedule": expr, "command": command,
                     "line": f"{expr} {command} >>{log} 2>&1", "next_runs": upcoming})
    if json_out:
        output.emit_json({"lines": rows, "sync_schedule": sync_schedule})
        return
    output.line("# seqctl: add with `crontab -e` (or: seqctl cron | crontab -)")
    if not split:
        output.line(f"# the sync phase runs inside tick on the sync_schedule '{sync_schedule}'")
    for row in rows:
        output.line(f"# next: {', '.join(row['next_runs'])}")
        output.line(row["line"])
    if not exe:
        raise SeqctlError("cannot find the seqctl executable on PATH")
