"""`seqctl report` (SPEC 20): read each sequence's numbers (those of `stats --json`, replies by
intent, sends and replies per day, tasks) and write one self-contained HTML file."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlite_utils import Database

from seqctl.clock import from_iso
from seqctl.engine import analytics, pages
from seqctl.errors import SeqctlError
from seqctl.files import refuse_special, write_private

UNKNOWN_INTENT = "unknown"      # a reply with no intent (the word `stats` uses)


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def first_replies(db: Database, sequence_id: int) -> list[tuple[str, str]]:
    """(time, intent) of the replies `stats` counts: each enrollment's first reply that is
    attributed to an email step. (Replies by intent are taken from `stats` itself when it
    splits them, so the report shows its numbers.)"""
    return [(at, intent or UNKNOWN_INTENT) for at, intent in db.execute(
        "SELECT e.at, json_extract(e.detail_json, '$.intent') FROM events e JOIN ("
        " SELECT MIN(id) AS id FROM events WHERE sequence_id = ? AND kind = 'reply'"
        " AND enrollment_id IS NOT NULL GROUP BY enrollment_id) f ON f.id = e.id "
        "JOIN steps s ON s.id = e.step_id AND s.step_type = 'email' ORDER BY e.at",
        [sequence_id])]


def per_day(sent_times: list[str], reply_times: list[str], zone: ZoneInfo) -> list[dict]:
    """Sends and replies per local day, every day from the first to the last (zeros kept)."""
    def day(at: str) -> str:
        moment = from_iso(at)
        assert moment is not None
        return moment.astimezone(zone).date().isoformat()

    sent, replies = Counter(map(day, sent_times)), Counter(map(day, reply_times))
    days = sorted(set(sent) | set(replies))
    if not days:
        return []
    first, last = (datetime.fromisoformat(d).date() for d in (days[0], days[-1]))
    out = []
    current = first
    while current <= last:
        key = current.isoformat()
        out.append({"day": key, "sent": sent[key], "replies": replies[key]})
        current += timedelta(days=1)
    return out


def tasks_of(db: Database, sequence_id: int) -> dict[str, Any]:
    totals = dict.fromkeys(pages.TASK_STATUSES, 0)
    by_kind: dict[str, dict[str, Any]] = {}
    for kind, status, count in db.execute(
            "SELECT kind, status, COUNT(*) FROM tasks WHERE sequence_id = ? "
            "GROUP BY kind, status ORDER BY kind", [sequence_id]):
        row = by_kind.setdefault(kind, {"kind": kind, **dict.fromkeys(pages.TASK_STATUSES, 0)})
        row[status] = row.get(status, 0) + count
        totals[status] = totals.get(status, 0) + count
    return {"totals": totals, "by_kind": list(by_kind.values())}


def sequence_report(db: Database, name: str) -> dict[str, Any]:
    """Everything the report shows of one sequence, as plain values."""
    sequence_id = analytics.find_sequence(db, name)
    description, timezone = db.execute(
        "SELECT description, timezone FROM sequences WHERE id = ?", [sequence_id]).fetchone()
    zone = _zone(timezone)
    replies = first_replies(db, sequence_id)
    sent_times = [row[0] for row in db.execute(
        "SELECT e.at FROM events e JOIN steps s ON s.id = e.step_id AND s.step_type = 'email' "
        "WHERE e.sequence_id = ? AND e.kind = 'sent'", [sequence_id])]
    stats = analytics.sequence_stats(db, name)
    by_intent = stats["totals"].get("replies_by_intent")
    intents = Counter({intent: count for intent, count in by_intent.items() if count}
                      if isinstance(by_intent, dict) else (intent for _, intent in replies))
    return {
        "name": name,
        "description": description,
        "timezone": zone.key,
        "stats": stats,
        "intents": [{"intent": intent, "replies": count}
                    for intent, count in sorted(intents.items(), key=lambda i: (-i[1], i[0]))],
        "days": per_day(sent_times, [at for at, _ in replies], zone),
        "tasks": tasks_of(db, sequence_id),
    }


def build(db: Database, names: list[str], now: datetime) -> dict[str, Any]:
    """The report's data for `names` (every sequence when empty). An unknown name is an
    error before anything is read further."""
    if not names:
        names = [row[0] for row in db.execute("SELECT name FROM sequences ORDER BY name")]
        if not names:
            raise SeqctlError("no sequences yet: `seqctl sequence apply FILE.yaml` first")
    for name in names:
        analytics.find_sequence(db, name)
    return {"generated_at": now.strftime("%Y-%m-%d %H:%M UTC"),
            "sequences": [sequence_report(db, name) for name in dict.fromkeys(names)]}


def write_report(db: Database, names: list[str], path: Path, now: datetime) -> dict[str, Any]:
    """Write the report to `path` (atomically: a reader never sees half a file). The folder
    must exist; a path that is a link, device or pipe is refused. Returns {"path",
    "sequences", "bytes"}."""
    if path.is_dir():
        raise SeqctlError(f"{path} is a folder: name the HTML file to write, e.g. -o report.html")
    if not path.parent.is_dir():
        raise SeqctlError(f"the folder {path.parent} does not exist")
    refuse_special(path)                  # before any work: nothing to throw away
    data = build(db, names, now)
    text = pages.report_page(data)
    try:
        write_private(path, text, mode=0o644)
    except OSError as exc:
        raise SeqctlError(f"cannot write {path}: {exc.strerror or exc}") from None
    return {"path": str(path), "sequences": [seq["name"] for seq in data["sequences"]],
            "bytes": len(text.encode("utf-8"))}
