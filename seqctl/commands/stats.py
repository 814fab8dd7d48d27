"""`seqctl stats SEQUENCE` and `seqctl compare A B`."""

from __future__ import annotations

from typing import Annotated

import typer

from seqctl import output
from seqctl.commands._common import JsonOpt, db
from seqctl.engine import analytics


def register(root: typer.Typer) -> None:
    root.command("stats")(stats)
    root.command("compare")(compare)


def stats(
    sequence: Annotated[str, typer.Argument(help="Sequence name.")],
    json_out: JsonOpt = False,
) -> None:
    """Sent, opens, clicks, replies, unsubscribes, bounces and meetings per step and A/B
    variant, with rates over sent emails. Auto-replies are not replies; clicks and opens
    that look like a mail scanner's are not counted."""
    if json_out:
        output.emit_json(analytics.sequence_stats(db(), sequence))
    else:
        analytics.render_stats(db(), sequence)


def compare(
    sequence_a: Annotated[str, typer.Argument(help="First sequence.")],
    sequence_b: Annotated[str, typer.Argument(help="Second sequence.")],
    json_out: JsonOpt = False,
) -> None:
    """Rank two sequences by reply rate, with a two-proportion z-test of the difference
    ("not enough data yet" below 30 sent emails each)."""
    result = analytics.compare(db(), sequence_a, sequence_b)
    if json_out:
        output.emit_json(result)
        return
    rows = [{"rank": index, **row, "reply_rate": f"{row['reply_rate'] * 100:.1f}%"}
            for index, row in enumerate(result["ranking"], 1)]
    output.table(rows, ["rank", "sequence", "sent", "replies", "reply_rate"])
    output.line(result["verdict"])
