"""`seqctl enroll`, `pause`, `resume`, `unenroll`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from seqctl import clock, output
from seqctl.commands._common import EmailArg, JsonOpt, SequenceArg, db, input_file
from seqctl.engine import enroll as engine
from seqctl.errors import SeqctlError

MISSING_SHOWN = 20     # per-contact missing-field warnings before a summary line


def register(root: typer.Typer) -> None:
    root.command("enroll")(enroll)
    root.command("pause")(pause)
    root.command("resume")(resume)
    root.command("unenroll")(unenroll)


def enroll(
    sequence: SequenceArg,
    emails: Annotated[list[str] | None, typer.Argument(help="Contact emails.")] = None,
    csv: Annotated[Path | None, typer.Option(
        "--csv", help="Contacts CSV to import and enroll ('-' reads standard input).")] = None,
    inbox: Annotated[str | None, typer.Option("--inbox", help="Send from this inbox.")] = None,
    reenroll: Annotated[bool, typer.Option(
        "--reenroll", help="Enroll again contacts whose earlier enrollment has exited.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Enroll contacts in SEQUENCE. Exits 1 when any contact failed (or any CSV row was bad),
    so a script can tell.

    \b
    Examples:
      seqctl enroll cold-saas-intro ava@acme.test ben@acme.test
      seqctl enroll cold-saas-intro --csv leads.csv --inbox riley@acme.test
    """
    from seqctl.engine.contacts import import_contacts

    if not emails and csv is None:
        raise typer.BadParameter("give contact emails or --csv FILE", param_hint="EMAILS")
    database = db()
    engine.check_enrollable(database, sequence, inbox)     # before any CSV row is imported
    wanted = list(emails or [])
    bad_rows: list[dict] = []
    if csv is not None:
        with input_file(csv) as (stream, name), output.progress("importing") as advance:
            imported = import_contacts(database, stream, filename=name, progress=advance)
        bad_rows = imported.invalid
        for bad in bad_rows:
            output.warn(f"{name}:{bad['line']}: {bad['reason']} ({bad['email']})")
        wanted += imported.emails
    with output.progress("enrolling") as advance:
        summary = engine.enroll(database, sequence, wanted, clock.now(), inbox_address=inbox,
                                reenroll=reenroll, progress=advance,
                                normalised=csv is not None and not emails)
    if bad_rows:
        summary["invalid_rows"] = bad_rows
    if json_out:
        output.emit_json(summary)
    else:
        for result in summary["results"]:
            if result["status"] == "failed":
                output.warn(f"{result['email']}: {result['message']}")
        lacking = [r for r in summary["results"] if r.get("missing_fields")]
        for result in lacking[:MISSING_SHOWN]:
            for text in output.missing_field_lines(result["email"], result["missing_fields"]):
                output.warn(text)
        if len(lacking) > MISSING_SHOWN:
            output.warn(f"... and {len(lacking) - MISSING_SHOWN} more contacts lack fields "
                        "their emails use (see --json: results[].missing_fields)")
        output.line(f"enrolled {summary['enrolled']}, skipped {summary['skipped_duplicates']} "
                    f"duplicates, failed {summary['failed']}")
    if summary["failed"] or bad_rows:
        raise typer.Exit(1)


def pause(sequence: SequenceArg, email: EmailArg) -> None:
    """Pause EMAIL in SEQUENCE: nothing fires or sends until `seqctl resume`.

    \b
    Example:
      seqctl pause cold-saas-intro ava@acme.test
    """
    database = db()
    found = engine.find_enrollment(database, sequence, email)
    try:
        engine.pause(database, found, clock.now())
    except SeqctlError as exc:
        raise SeqctlError(f"{email} in {sequence} {exc.message}") from None
    output.info(f"paused {email} in {sequence}")


def resume(
    sequence: Annotated[str | None, typer.Argument(help="The sequence's name.")] = None,
    email: Annotated[str | None, typer.Argument(help="The contact's email address.")] = None,
    failed: Annotated[bool, typer.Option(
        "--failed", help="Resume every failed enrollment (with --inbox: that failed on it).")] = False,
    inbox: Annotated[str | None, typer.Option(
        "--inbox", help="With --failed: only enrollments that send from (or failed for want of) this inbox.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Resume a paused or failed enrollment (SEQUENCE EMAIL), or with --failed every failed
    one (of --inbox ADDRESS, after reconnecting it).

    \b
    Examples:
      seqctl resume cold-saas-intro ava@acme.test
      seqctl resume --failed --inbox riley@acme.test
    """
    database = db()
    now = clock.now()
    if failed:
        ids = engine.failed_enrollment_ids(database, inbox)
        resumed = [i for i in ids if engine.resume(database, i, now) == "active"]
        if json_out:
            output.emit_json({"resumed": len(resumed), "still_failed": len(ids) - len(resumed)})
        else:
            output.line(f"resumed {len(resumed)} of {len(ids)} failed enrollments")
        if len(resumed) < len(ids):
            raise typer.Exit(1)
        return
    if not sequence or not email:
        raise typer.BadParameter("give SEQUENCE EMAIL, or --failed [--inbox ADDRESS]")
    found = engine.find_enrollment(database, sequence, email)
    try:
        status = engine.resume(database, found["id"], now)
    except SeqctlError as exc:
        raise SeqctlError(f"{email} in {sequence} {exc.message}") from None
    if status != "active":
        raise SeqctlError(f"{email} still cannot run: {engine.failure_message(database, found['id'])}")
    if json_out:
        output.emit_json(engine.enrollment_rows(database, sequence=sequence, email=email)[-1])
    else:
        output.info(f"resumed {email} in {sequence}")


def unenroll(sequence: SequenceArg, email: EmailArg) -> None:
    """Take EMAIL out of SEQUENCE for good (exit reason `manual`).

    \b
    Example:
      seqctl unenroll cold-saas-intro ava@acme.test
    """
    database = db()
    found = engine.find_enrollment(database, sequence, email)
    if not engine.unenroll(database, found["id"], clock.now()):
        raise SeqctlError(f"{email} has already exited {sequence}")
    output.info(f"unenrolled {email} from {sequence}")
