"""Printing: exactly one JSON document with --json, Rich tables otherwise; messages to stderr."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

# Rich is imported only for tables, colour and progress bars: a plain line (an idle tick's
# summary) is written as it is, so short commands do not pay for Rich's import.


@cache
def _err() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


@cache
def _out() -> Console:
    from rich.console import Console

    # Piped output is read by people later (less, a file) or by scripts: do not cut values to
    # fit an imaginary 80-column terminal.
    return Console(highlight=False, soft_wrap=True,
                   width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200)


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")


def info(message: str) -> None:
    """Progress and notes: stderr, so stdout stays clean for pipes."""
    sys.stderr.write(f"{message}\n")


def warn(message: str) -> None:
    if sys.stderr.isatty():
        _err().print(f"warning: {message}", markup=False, style="yellow")
    else:
        sys.stderr.write(f"warning: {message}\n")


def line(message: str = "") -> None:
    sys.stdout.write(f"{message}\n")


def table(rows: Iterable[dict[str, Any]], columns: Sequence[str], *, title: str | None = None,
          empty: str = "nothing to show") -> None:
    """A table of `columns` (keys of each row) on stdout."""
    from rich.table import Table

    rows = list(rows)
    if not rows:
        info(empty)
        return
    tbl = Table(title=title, show_edge=False, header_style="bold")
    for column in columns:
        tbl.add_column(column)
    for row in rows:
        tbl.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    _out().print(tbl)


def is_tty() -> bool:
    return sys.stderr.isatty()


@contextmanager
def progress(label: str) -> Iterator[Callable[[int, int], None] | None]:
    """`with progress("enrolling") as advance:` gives `advance(done, total)` that draws a bar
    on stderr when it is a terminal, and None otherwise (scripts and pipes stay clean)."""
    if not is_tty():
        yield None
        return
    from rich.progress import Progress

    with Progress(transient=True, console=_err()) as bar:
        task = bar.add_task(label, total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


class _Notices(logging.Handler):
    """The engine's notices (logger "seqctl") as plain lines on the current stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def show_engine_notices() -> None:
    """Route the engine's notices to stderr, once per process (the engine never prints)."""
    logger = logging.getLogger("seqctl")
    if not any(isinstance(h, _Notices) for h in logger.handlers):
        logger.addHandler(_Notices())
        logger.setLevel(logging.INFO)
        logger.propagate = False


def missing_field_lines(email: str, missing: list[str], held: list[str] = ()) -> list[str]:
    """Warnings about merge fields a contact lacks: printed empty, or holding the email back
    (`require_fields`)."""
    lines = []
    printed = [name for name in missing if name not in held]
    if printed:
        names = ", ".join(printed)
        lines.append(f"{email}: no {names}: the email prints nothing there "
                     f"(`seqctl contacts set {email} {printed[0]} VALUE`, or "
                     f"{{{{ {printed[0]} | default(\"...\") }}}} in the template)")
    if held:
        lines.append(f"{email}: no {', '.join(held)}: require_fields holds this email back "
                     f"until it is set (`seqctl contacts set {email} {held[0]} VALUE`)")
    return lines
