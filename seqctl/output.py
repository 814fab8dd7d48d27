"""Printing: exactly one JSON document with --json, Rich tables otherwise; messages to stderr."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from json.encoder import encode_basestring as _quote
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


def plural(count: int, noun: str, many: str | None = None) -> str:
    """"1 step", "2 steps", "1 business day"."""
    return f"{count} {noun if count == 1 else (many or noun + 's')}"


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")


class _Spool:
    """A temporary file, opened at the first write (most spools stay empty)."""

    def __init__(self) -> None:
        self._file: Any = None
        self.count = 0

    def _write(self, text: str) -> None:
        if self._file is None:
            import tempfile

            self._file = tempfile.TemporaryFile("w+", encoding="utf-8")
        self._file.write(text)

    def _read(self) -> Any:
        self._file.seek(0)
        return self._file

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class TextSpool(_Spool):
    """Lines to print later (e.g. after a commit), kept in a temporary file, not in memory."""

    def write(self, line: str) -> None:
        self._write(line.replace("\n", " ") + "\n")
        self.count += 1

    def each(self, show: Callable[[str], None]) -> None:
        if self.count:
            for line in self._read():
                show(line[:-1])


class JsonList(_Spool):
    """The items of one list in a JSON document, written to a temporary file as they come, so
    that `emit_json_spooled` prints a document of a million items in exactly the bytes
    `emit_json` would, without holding them in memory."""

    def append(self, item: Any) -> None:
        self._write((",\n    " if self.count else "\n    ")
                    + _indented_json(item).replace("\n", "\n    "))
        self.count += 1

    def write_to(self, out: Any) -> None:
        if not self.count:
            out.write("[]")
            return
        import shutil

        out.write("[")
        shutil.copyfileobj(self._read(), out)
        out.write("\n  ]")


def _indented_json(item: Any) -> str:
    """`json.dumps(item, indent=2, ensure_ascii=False)`; a flat dict of strings, numbers, None
    and lists of strings (a per-contact result) without the pure-Python encoder `indent` uses."""
    if type(item) is not dict:
        return json.dumps(item, indent=2, ensure_ascii=False, default=str)
    parts = []
    for key, value in item.items():
        kind = type(value)
        if kind is str:
            text = _quote(value)
        elif kind is int or value is None:
            text = "null" if value is None else str(value)
        elif kind is list and all(type(v) is str for v in value):
            text = ("[\n    " + ",\n    ".join(map(_quote, value)) + "\n  ]") if value else "[]"
        else:
            return json.dumps(item, indent=2, ensure_ascii=False, default=str)
        parts.append(f"  {_quote(key)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}" if parts else "{}"


def emit_json_spooled(document: dict[str, Any]) -> None:
    """`emit_json` of a dict whose values may be `JsonList`s, streamed from their files."""
    out = sys.stdout
    if not document:
        out.write("{}\n")
        return
    out.write("{")
    for index, (key, value) in enumerate(document.items()):
        out.write(f"{',' if index else ''}\n  {_quote(key)}: ")
        if isinstance(value, JsonList):
            value.write_to(out)
        else:
            out.write(json.dumps(value, indent=2, ensure_ascii=False,
                                 default=str).replace("\n", "\n  "))
    out.write("\n}\n")


def info(message: str) -> None:
    """Progress and notes: stderr, so stdout stays clean for pipes."""
    if _log_file is not None:
        return _log(message)
    sys.stderr.write(f"{message}\n")


def warn(message: str) -> None:
    if _log_file is not None:
        return _log(f"warning: {message}")
    if sys.stderr.isatty():
        _err().print(f"warning: {message}", markup=False, style="yellow")
    else:
        sys.stderr.write(f"warning: {message}\n")


def line(message: str = "") -> None:
    if _log_file is not None:
        return _log(message)
    sys.stdout.write(f"{message}\n")


def error(message: str) -> None:
    """The one line of a failed command (`error: ...`)."""
    if _log_file is not None:
        return _log(message)
    sys.stderr.write(message + "\n")


# -- the tick log ------------------------------------------------------------------------------
LOG_MAX_BYTES = 1_000_000
LOG_KEEP = 3
_log_file: Any = None


def log_to(path: Any) -> None:
    """Send this process's messages to PATH instead of the terminal (`tick --log`): each line
    starts with its time, and at LOG_MAX_BYTES the file becomes PATH.1 (PATH.1 becomes
    PATH.2, ...; LOG_KEEP old files are kept)."""
    global _log_file
    _log_file = path


def _log(message: str) -> None:
    import fcntl
    from pathlib import Path

    from seqctl import clock

    path = Path(_log_file)
    stamp = clock.iso(clock.now())
    text = "".join(f"{stamp} {part}\n" for part in (message.splitlines() or [""]))
    # cron --split runs several ticks at once: one lock, so rotation never loses a line
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if path.exists() and path.stat().st_size + len(text) > LOG_MAX_BYTES:
                for n in range(LOG_KEEP - 1, 0, -1):
                    older = path.with_name(f"{path.name}.{n}")
                    if older.exists():
                        older.replace(path.with_name(f"{path.name}.{n + 1}"))
                path.replace(path.with_name(path.name + ".1"))
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(text)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# Colours for the values people scan for; Rich drops them off a terminal and under NO_COLOR.
STYLES = {
    "active": "green", "paused": "yellow", "exited": "dim", "failed": "bold red",
    "queued": "cyan", "sending": "cyan", "sent": "green", "unknown": "magenta",
    "skipped": "dim", "cancelled": "dim", "open": "yellow", "done": "green",
    "needs_reauth": "bold red", "paused_bounces": "yellow",
    "green": "green", "amber": "yellow", "red": "bold red",
}
STYLED_COLUMNS = ("status", "band", "state")
# Columns that may be cut (with "…") when a table is wider than the terminal; an email address
# or an id never is.
SHRINKABLE = ("title", "subject", "what", "command", "company_name", "error", "via", "inbox",
              "owner_email", "sequence", "name")
_GAP = 2


def _width() -> int | None:
    """The terminal's width; None off a terminal (piped tables are never cut)."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return _out().width
    return None


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def table(rows: Iterable[dict[str, Any]], columns: Sequence[str], *, title: str | None = None,
          empty: str = "nothing to show", below: str | None = None,
          fold: Sequence[str] = ()) -> None:
    """A table of `columns` (keys of each row) on stdout that fits the terminal. When it is too
    wide, the `fold` columns move onto a line under their row ("next: ..."), then long cells
    of the SHRINKABLE columns are cut; an email address never is. The `below` key of a row (a
    long reason) is always printed, wrapped, under its row."""
    from rich.text import Text

    rows = list(rows)
    if not rows:
        info(empty)
        return
    columns = list(columns)
    limit = _width()

    def measure(names: list[str]) -> list[int]:
        return [max(len(n), *(len("" if r.get(n) is None else str(r.get(n))) for r in rows))
                for n in names]

    widths = measure(columns)
    folded: list[str] = []
    for name in fold:
        if limit is None or sum(widths) + _GAP * (len(widths) - 1) <= limit:
            break
        if name in columns:
            folded.append(name)
            columns.remove(name)
            widths = measure(columns)
    if limit is not None:
        excess = sum(widths) + _GAP * (len(widths) - 1) - limit
        for name in SHRINKABLE:
            if excess <= 0:
                break
            if name in columns:
                i = columns.index(name)
                floor = max(len(columns[i]), 8)
                take = min(excess, max(widths[i] - floor, 0))
                widths[i] -= take
                excess -= take
    if title:
        _out().print(Text(title, style="bold"))
    last = len(columns) - 1
    _out().print(Text("".join(c.ljust(widths[i]) + " " * _GAP if i < last else c
                            for i, c in enumerate(columns)), style="bold"))
    room = max((limit or 100) - 4, 20)
    for row in rows:
        line = Text()
        for i, column in enumerate(columns):
            raw = "" if row.get(column) is None else str(row.get(column))
            value = _cut(raw, widths[i])
            line.append(value, style=STYLES.get(raw, "") if column in STYLED_COLUMNS else "")
            if i < last:
                line.append(" " * (widths[i] - len(value) + _GAP))
        _out().print(line)
        extra = [f"{name}: {row[name]}" for name in folded if row.get(name)]
        if below and row.get(below):
            extra.append(str(row[below]))
        if extra:
            import textwrap

            for part in textwrap.wrap(" · ".join(extra), width=room):
                _out().print(Text("    " + part, style="dim"))


def styled(value: str) -> Any:
    """A status or band word, coloured on a terminal."""
    from rich.text import Text

    return Text(value, style=STYLES.get(value, ""))


def line_with_word(before: str, word: str, after: str = "") -> None:
    """A line of stdout whose status or band `word` is coloured on a terminal (plain in pipes,
    in the tick log and under NO_COLOR)."""
    if _log_file is not None or not sys.stdout.isatty():
        return line(f"{before}{word}{after}")
    from rich.text import Text

    _out().print(Text.assemble(before, styled(word), after))


def is_tty() -> bool:
    return sys.stderr.isatty()


@contextmanager
def progress(label: str) -> Iterator[Callable[..., None] | None]:
    """`with progress("enrolling") as advance:` gives `advance(done, total)` that draws a bar
    on stderr when it is a terminal, and None otherwise (scripts and pipes stay clean).
    `advance(done, total, "next stage")` relabels the bar (one live display at a time)."""
    if not is_tty():
        yield None
        return
    from rich.progress import Progress

    with Progress(transient=True, console=_err()) as bar:
        task = bar.add_task(label, total=None)

        def advance(done: int, total: int, label: str | None = None) -> None:
            bar.update(task, completed=done, total=total,
                       **({"description": label} if label else {}))

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


def local_time(value: Any, zone: str | None = None, now: Any = None, *,
               relative: bool = True) -> str:
    """A stored UTC time for people: "Tue 10 Mar 09:00 CDT, in 3 h" in `zone` (an IANA name;
    None: the machine's zone). The year shows when it is not the year of `now`."""
    from datetime import datetime

    from seqctl import clock

    if value in (None, ""):
        return ""
    moment = value if isinstance(value, datetime) else clock.from_iso(str(value))
    now = now or clock.now()
    local = moment.astimezone(_zone(zone))
    text = local.strftime("%a %d %b %H:%M" if local.year == now.astimezone(local.tzinfo).year
                          else "%a %d %b %Y %H:%M")
    text += f" {local.tzname() or ''}".rstrip()
    return f"{text}, {ago(moment, now)}" if relative else text


def ago(moment: Any, now: Any) -> str:
    """"in 3 h", "5 min ago", "now"."""
    seconds = (moment - now).total_seconds()
    size = abs(seconds)
    if size < 60:
        return "now"
    if size < 3600:
        amount = f"{int(size // 60)} min"
    elif size < 48 * 3600:
        amount = f"{round(size / 3600)} h"
    else:
        amount = f"{round(size / 86400)} d"
    return f"in {amount}" if seconds > 0 else f"{amount} ago"


def _zone(name: str | None) -> Any:
    if not name:
        return None     # astimezone(None): the machine's zone
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
