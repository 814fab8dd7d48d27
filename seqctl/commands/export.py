"""`seqctl export events|enrollments --csv`: flat tables for spreadsheets."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer

from seqctl import output
from seqctl.commands._common import db, group
from seqctl.engine import analytics
from seqctl.errors import SeqctlError
from seqctl.files import private_text_file

app = group(
    "Export events or enrollments as CSV (a header row, one row per item).",
    examples=["seqctl export events -o events.csv"],
)

CsvOpt = Annotated[bool, typer.Option("--csv", help="CSV with a header row (the default).",
                                      show_default=False)]
SequenceOpt = Annotated[str | None, typer.Option("--sequence", help="Only this sequence.")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o",
                                                help="Write to FILE instead of stdout.")]


def _write(columns: list[str], rows: Iterable[list[Any]], target: Path | None) -> None:
    if target is None:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        return
    count = 0
    try:
        with private_text_file(target) as handle:      # 0600: contacts' data
            writer = csv.writer(handle)
            writer.writerow(columns)
            for row in rows:
                writer.writerow(row)
                count += 1
    except OSError as exc:
        raise SeqctlError(f"cannot write {target}: {exc.strerror or exc}") from None
    output.info(f"wrote {count} rows to {target}")


@app.command("events")
def events(csv_out: CsvOpt = True, sequence: SequenceOpt = None, to: OutputOpt = None) -> None:
    """Every event (sent, open, click, reply, ...) with its sequence, step, variant and
    contact, oldest first.

    \b
    Example:
      seqctl export events > events.csv
    """
    rows = analytics.export_events(db(), sequence)
    first = next(rows, None)        # a bad --sequence fails before the header is printed
    _write(analytics.EVENT_COLUMNS, _chain(first, rows), to)


@app.command("enrollments")
def enrollments(csv_out: CsvOpt = True, sequence: SequenceOpt = None,
                to: OutputOpt = None) -> None:
    """Every enrollment with its contact, status, exit reason, variant and next step.

    \b
    Example:
      seqctl export enrollments --sequence cold-saas-intro -o enrollments.csv
    """
    rows = analytics.export_enrollments(db(), sequence)
    first = next(rows, None)
    _write(analytics.ENROLLMENT_COLUMNS, _chain(first, rows), to)


def _chain(first: list[Any] | None, rest: Iterable[list[Any]]) -> Iterable[list[Any]]:
    if first is not None:
        yield first
        yield from rest
