"""`seqctl report`: one self-contained HTML page of how the sequences are doing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from seqctl import clock, output
from seqctl.commands._common import JsonOpt, db
from seqctl.engine import report as workflow


def register(root: typer.Typer) -> None:
    root.command("report")(report)


def report(
    sequences: Annotated[list[str] | None, typer.Argument(
        help="Sequences to show (default: every sequence).", show_default=False)] = None,
    out: Annotated[Path, typer.Option(
        "-o", "--output", metavar="FILE.html", help="The HTML file to write (its folder must "
        "exist; an existing file is replaced).")] = ...,
    json_out: JsonOpt = False,
) -> None:
    """Write one self-contained HTML page of how your sequences are doing. Per sequence: the
    funnel per step, A/B tests with their verdict and p-value, replies by intent,
    sends and replies per day, and tasks open and done. The numbers are those of
    `seqctl stats --json`; CSS and SVG charts are inline, so the file opens offline and makes
    no network request. It reads well from phone width to desktop.

    Example: `seqctl report cold-saas-intro -o report.html`
    """
    result = workflow.write_report(db(), list(sequences or []), out, clock.now())
    if json_out:
        output.emit_json(result)
    else:
        output.info(f"wrote {result['path']} ({', '.join(result['sequences'])})")
