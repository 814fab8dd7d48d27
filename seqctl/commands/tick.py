"""`seqctl tick`, `sync`, `schedule`, `cron`."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from seqctl import clock, config, output, settings
from seqctl.commands._common import (
    JsonOpt,
    SequenceArg,
    db,
    display_zone,
    install_key,
    instant_option,
)
from seqctl.engine import accounts, cycle, timeline
from seqctl.engine import enroll as engine_enroll
from seqctl.engine.counts import TickCounts


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


def _next_line(database, upcoming: dict | None, now) -> str:
    """"next: 22 emails, cold-saas-intro step 2, Wed 09:00 CST, in 21 h"."""
    if upcoming is None:
        return "next: nothing scheduled (enroll contacts with `seqctl enroll`)"
    what = _plural(upcoming["count"], _NOUNS.get(upcoming["step_type"], "step"))
    if upcoming["queued"]:
        what = f"{what} waiting in the outbox"
    where = f", {upcoming['sequence']} step {upcoming['step']}" if upcoming["sequence"] else ""
    when = output.local_time(upcoming["at"], display_zone(database, upcoming["timezone"]), now)
    return f"next: {what}{where}, {when}"


_NOUNS = {"email": "email", "call": "call", "linkedin": "LinkedIn task", "task": "task",
          "wait": "wait"}


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def tick(
    now: Annotated[str | None, typer.Option("--now", help="Run as if it were this time (ISO 8601).")] = None,
    phase: Annotated[str, typer.Option("--phase", help="all | sync | engine | dispatch")] = "all",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would happen; change nothing.")] = False,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="List each email sent and each task created (with --dry-run: that would be).")] = False,
    log: Annotated[Path | None, typer.Option(
        "--log", help="Write the messages to this file instead of the terminal, each line "
                      "timestamped; the file is rotated at 1 MB (3 old ones kept).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Advance everything that is due: sync replies, fire steps, send emails. Run it from cron
    every minute; overlapping runs are safe (the second exits at once). When nothing was due,
    it says what is next.

    \b
    Examples:
      seqctl tick
      seqctl tick -v
      seqctl tick --phase dispatch --json
    """
    from seqctl.engine import activity

    if log is not None:
        output.log_to(log)
    if phase not in cycle.PHASES:
        raise typer.BadParameter(f"must be one of {', '.join(cycle.PHASES)}", param_hint="--phase")
    if now:
        clock.set_now(instant_option(now, "--now"))
    database = db()
    moment = clock.now()
    before = activity.marks(database)
    would_do: list[dict] = []
    try:
        with output.progress("ticking") as advance:
            counts = cycle.run(database, moment, key=install_key(), phase=phase,
                               dry_run=dry_run, progress=advance, waiting=lambda: output.info(
                                   f"phase {phase}: waiting for another tick to finish"),
                               would_do=would_do if verbose else None)
    except cycle.TickBusy:
        output.info("another tick is running; nothing to do" if phase == "all" else
                    f"phase {phase}: another tick held the lock for {cycle.PHASE_WAIT:.0f} s; "
                    "skipped this minute")
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
    upcoming = activity.next_due(database, moment)
    if json_out:
        output.emit_json({**result, "next": upcoming})
        return
    if verbose:
        zone = display_zone(database)
        for item in would_do if dry_run else activity.since(database, before):
            where = f"{item['sequence']} step {item['step']}" if item["sequence"] else ""
            kind = "sent" if item["what"] == "email" else f"task ({item['kind']})"
            if dry_run:
                kind = "would send" if item["what"] == "email" else f"would create {kind}"
            output.line(f"  {kind}: {item['email']}, {where}: {item['title']}"
                        + ("" if item["what"] == "email" else
                           f" (due {output.local_time(item['at'], zone, moment, relative=False)})"))
    if any(result.values()):
        _print_counts(result, False)
    else:
        output.line(f"nothing due{' (dry run)' if dry_run else ''}; "
                    + _next_line(database, upcoming, moment))
    if dry_run:
        output.info("this was a dry run: nothing was sent or changed")


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
    database = db()
    now = clock.now()
    rows = timeline.timeline(database, sequence, contact, now)
    if json_out:
        output.emit_json([{k: r[k] for k in ("step", "step_type", "fires_at")} | r for r in rows])
        return
    zone = display_zone(database, engine_enroll.sequence_by_name(database, sequence)["timezone"])
    for row in rows:
        row["fires"] = output.local_time(row["fires_at"], zone, now)
    output.table(rows, ["step", "step_type", "fires", "state"])


def cron(
    split: Annotated[bool, typer.Option(
        "--split", help="Separate sync, engine and dispatch lines instead of one tick line.")] = False,
    install: Annotated[bool, typer.Option(
        "--install", help="Add the lines to your crontab, keeping every other line (running it "
                          "again changes nothing).")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Print crontab lines that run seqctl, and when they run next; --install adds them to
    your crontab. Each run logs to tick.log in the data folder (timestamped, rotated).

    \b
    Examples:
      seqctl cron
      seqctl cron --install
      seqctl cron --split --json
    """
    from seqctl.engine import crontab

    exe = shutil.which("seqctl") or os.path.abspath(sys.argv[0])
    env = f"SEQCTL_HOME={config.home()} "
    if os.environ.get("SEQCTL_DB"):
        env += f"SEQCTL_DB={config.db_path()} "
    database = db()
    sync_schedule = settings.get(database, "sync_schedule")
    now = clock.now()
    rows = crontab.jobs(env + exe, config.home() / "tick.log", sync_schedule, split, now)
    lines = [row["line"] for row in rows]
    changed = crontab.install(lines) if install else None
    if json_out:
        output.emit_json({"lines": rows, "sync_schedule": sync_schedule,
                          **({"installed": changed} if install else {})})
        return
    if install:
        output.info("crontab updated: seqctl's lines added" if changed else
                    "crontab already has these lines; nothing changed")
        return
    output.line("# seqctl: add with `seqctl cron --install` (keeps your other crontab lines)")
    if not split:
        output.line(f"# the sync phase runs inside tick on the sync_schedule '{sync_schedule}'")
    zone = display_zone(database)
    for row in rows:
        output.line("# next: " + ", ".join(output.local_time(at, zone, now, relative=False)
                                            for at in row["next_runs"]))
        output.line(row["line"])
