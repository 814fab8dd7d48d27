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
    if not emails and csv is None:
        raise typer.BadParameter("give contact emails or --csv FILE", param_hint="EMAILS")
    database = db()
    engine.check_enrollable(database, sequence, inbox)     # before any CSV row is imported
    report = _Report(json_out)
    try:
        with output.progress("importing" if csv is not None else "enrolling") as advance:
            enrolling = advance and (lambda done, total: advance(done, total, "enrolling"))
            if csv is None:
                counts = engine.enroll_stream(database, sequence, clock.now(), emails=emails,
                                              inbox_address=inbox, reenroll=reenroll,
                                              on_result=report.result, progress=enrolling)
            else:
                with input_file(csv) as (stream, name):
                    report.filename = name
                    counts = engine.enroll_stream(
                        database, sequence, clock.now(), emails=emails or (),
                        csv=(stream, name), inbox_address=inbox, reenroll=reenroll,
                        on_result=report.result, on_invalid=report.invalid,
                        import_progress=advance, progress=enrolling)
        report.show(counts)
    finally:
        report.close()
    if counts["failed"] or counts["invalid_rows"]:
        raise typer.Exit(1)


class _Report:
    """What `enroll` prints, gathered as the contacts stream: results and bad rows wait in
    temporary files (printed once everything is committed), so memory stays flat; of the
    missing-field warnings only the first MISSING_SHOWN are kept, the rest counted."""

    def __init__(self, json_out: bool):
        self.filename = ""
        self.bad_lines = output.TextSpool()
        self.bad_rows = output.JsonList()
        self.results = output.JsonList() if json_out else None
        self.failures = output.TextSpool()
        self.lacking: list[tuple[str, list[str]]] = []
        self.lacking_count = 0

    def result(self, result: dict) -> None:
        if self.results is not None:
            self.results.append(result)
            return
        if result["status"] == "failed":
            self.failures.write(f"{result['email']}: {result['message']}")
        if result["missing_fields"]:
            self.lacking_count += 1
            if len(self.lacking) < MISSING_SHOWN:
                self.lacking.append((result["email"], result["missing_fields"]))

    def invalid(self, bad: dict) -> None:
        self.bad_rows.append(bad)
        self.bad_lines.write(f"{self.filename}:{bad['line']}: {bad['reason']} ({bad['email']})")

    def show(self, counts: dict) -> None:
        self.bad_lines.each(output.warn)
        if self.results is not None:
            document = {key: counts[key] for key in ("enrolled", "skipped_duplicates", "failed")}
            document["results"] = self.results
            if counts["invalid_rows"]:
                document["invalid_rows"] = self.bad_rows
            output.emit_json_spooled(document)
            return
        self.failures.each(output.warn)
        for email, missing in self.lacking:
            for text in output.missing_field_lines(email, missing):
                output.warn(text)
        if self.lacking_count > MISSING_SHOWN:
            output.warn(f"... and {self.lacking_count - MISSING_SHOWN} more contacts lack fields "
                        "their emails use (see --json: results[].missing_fields)")
        output.line(f"enrolled {counts['enrolled']}, skipped {counts['skipped_duplicates']} "
                    f"duplicates, failed {counts['failed']}")

    def close(self) -> None:
        for spool in (self.bad_lines, self.bad_rows, self.results, self.failures):
            if spool is not None:
                spool.close()


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
