"""`seqctl stats SEQUENCE` and `seqctl compare A B`."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from seqctl import output
from seqctl.commands._common import JsonOpt, db
from seqctl.engine import analytics

if TYPE_CHECKING:
    from rich.console import Console
    from sqlite_utils import Database


def register(root: typer.Typer) -> None:
    root.command("stats")(stats)
    root.command("compare")(compare)


def stats(
    sequence: Annotated[str, typer.Argument(help="Sequence name.")],
    json_out: JsonOpt = False,
) -> None:
    """Sent, opens, clicks, replies, unsubscribes, bounces and meetings per step and A/B
    variant, with rates over sent emails. Auto-replies are not replies; clicks and opens
    that look like a mail scanner's are not counted.

    \b
    Examples:
      seqctl stats cold-saas-intro
      seqctl stats cold-saas-intro --json
    """
    if json_out:
        output.emit_json(analytics.sequence_stats(db(), sequence))
    else:
        show_stats(db(), sequence)


def compare(
    sequence_a: Annotated[str, typer.Argument(help="First sequence.")],
    sequence_b: Annotated[str, typer.Argument(help="Second sequence.")],
    by: Annotated[str, typer.Option(
        "--by", help="reply: rank by reply rate | positive: by positive-reply rate (replies "
                     "whose intent is positive).")] = "reply",
    json_out: JsonOpt = False,
) -> None:
    """Rank two sequences by reply rate (or `--by positive`: positive-reply rate), with a
    two-proportion z-test of the difference ("not enough data yet" below 30 sent emails
    each). Example: `seqctl compare cold-saas-intro cold-saas-short --by positive`."""
    result = analytics.compare(db(), sequence_a, sequence_b, by=by)
    if json_out:
        output.emit_json(result)
        return
    count, rate_key, _ = analytics.COMPARE_BY[by]
    rows = [{"rank": index, **row, rate_key: f"{row[rate_key] * 100:.1f}%"}
            for index, row in enumerate(result["ranking"], 1)]
    output.table(rows, ["rank", "sequence", "sent", count, rate_key])
    output.line(result["verdict"])


# --- the terminal view ---------------------------------------------------------------------


def percent(fraction: float) -> str:
    return f"{fraction * 100:.1f}%"


def bar(fraction: float, width: int = 10) -> str:
    """`█████░░░░░ 50.0%`: a rate readable at a glance."""
    fraction = min(max(fraction, 0.0), 1.0)
    filled = round(fraction * width)
    return "█" * filled + "░" * (width - filled) + f" {fraction * 100:5.1f}%"


def _count(number: int, word: str, plural: str | None = None) -> str:
    return f"{number} {word if number == 1 else (plural or word + 's')}"


def show_stats(db: Database, name: str, console: Console | None = None) -> None:
    """Print the stats of a sequence: a totals line, then per email step a table with the
    variants side by side (counts, and bars for the rates), and under it the A/B verdict."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(highlight=False, soft_wrap=True)
    stats = analytics.sequence_stats(db, name)
    totals = stats["totals"]
    console.print(
        f"[bold]{name}[/bold]: {totals['enrolled']} enrolled, "
        f"{_count(totals['sent'], 'email')} sent, "
        f"{_count(totals['replies'], 'reply', 'replies')} ({percent(totals['reply_rate'])}), "
        f"{_count(totals['meetings'], 'meeting')}, {totals['unsubscribes']} unsubscribed, "
        f"{totals['bounces']} bounced, "
        f"{_count(totals['auto_replies'], 'auto-reply', 'auto-replies')} (not counted)")
    if totals["replies"]:
        split = ", ".join(f"{intent} {n}" for intent, n in totals["replies_by_intent"].items()
                          if n)
        console.print(f"replies by intent: {split}; positive-reply rate "
                      f"{percent(totals['positive_reply_rate'])}", markup=False)
    console.print(
        f"per contact: {totals['contacts_replied']} of {totals['contacts_reached']} reached "
        f"replied ({percent(totals['contact_reply_rate'])}); tasks: "
        f"{totals['tasks_done']} of {totals['tasks_created']} done", markup=False)
    for task in stats["tasks"]:
        where = f"Step {task['step']}" if task["step"] is not None else "Removed step"
        console.print(f"{where} · {task['step_type']}: {task['created']} created, "
                      f"{task['done']} done, {task['skipped']} skipped, {task['open']} open",
                      markup=False)
    tracked = analytics.tracked(db, name)
    if not stats["steps"]:
        console.print("no emails sent yet")
        return
    tests = {test["step"]: test for test in stats["ab_tests"]}
    steps: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in stats["steps"]:
        steps[row["step"]].append(row)
    metrics = [("sent", "sent", None), ("opened", "opens", "open_rate"),
               ("clicked", "clicks", "click_rate"), ("replied", "replies", "reply_rate"),
               ("unsubscribed", "unsubscribes", None), ("bounced", "bounces", None),
               ("meetings", "meetings", None)]
    for step, rows in steps.items():
        console.print()
        title = f"Step {step} · email" if step is not None else "Removed step · email"
        table = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
        table.add_column("", no_wrap=True)
        for row in rows:
            table.add_column(f"variant {row['variant']}", no_wrap=True)
        for label, counter, rate_key in metrics:
            off = (counter == "opens" and not tracked[0]) or (
                counter == "clicks" and not tracked[1])
            cells = ["    -  not tracked" if off and not row[counter] else
                     f"{row[counter]:>5}" + (f"  {bar(row[rate_key])}" if rate_key else "")
                     for row in rows]
            table.add_row(label, *cells)
        console.print(table)
        if step in tests:
            console.print(f"A vs B reply rate: {tests[step]['verdict']}", markup=False)
