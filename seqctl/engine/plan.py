"""A sequence's live steps and send window, loaded once per command and shared by the engine.

Steps are read from the database on every tick, so a re-applied YAML changes steps that have
not fired yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from seqctl.engine.schedule import SendWindow, due_time
from seqctl.engine.sequence_spec import sequence_window, step_delay

if TYPE_CHECKING:
    from sqlite_utils import Database


@dataclass
class Plan:
    sequence: dict[str, Any]
    steps: list[dict[str, Any]]  # live steps, by position
    by_id: dict[int, dict[str, Any]] = field(default_factory=dict)
    windows: dict[str | None, SendWindow] = field(default_factory=dict)

    def window_for(self, contact_timezone: str | None) -> SendWindow:
        """The sequence's window, in the contact's timezone when `send_in_contact_timezone`."""
        window = self.windows.get(contact_timezone)
        if window is None:
            window = self.windows[contact_timezone] = sequence_window(self.sequence,
                                                                      contact_timezone)
        return window

    def next_step(self, step_id: int) -> dict[str, Any] | None:
        """The live step after `step_id` (None past the last)."""
        step = self.by_id.get(step_id)
        if step is None:
            return None
        index = step["_index"] + 1
        return self.steps[index] if index < len(self.steps) else None


def due(anchor: datetime, step: dict[str, Any], window: SendWindow) -> datetime:
    """When `step` is due, counting from `anchor` (the previous step's actual fire/send time)."""
    return due_time(anchor, step_delay(step), window)


_STEP_COLUMNS: list[str] | None = None


def load(db: Database, sequence_id: int) -> Plan:
    global _STEP_COLUMNS
    cursor = db.execute("SELECT * FROM sequences WHERE id = ?", [sequence_id])
    columns = [c[0] for c in cursor.description]
    sequence = dict(zip(columns, cursor.fetchone(), strict=True))
    cursor = db.execute(
        "SELECT * FROM steps WHERE sequence_id = ? AND removed = 0 ORDER BY position", [sequence_id]
    )
    step_columns = [c[0] for c in cursor.description]
    steps = [dict(zip(step_columns, row, strict=True)) for row in cursor.fetchall()]
    for index, step in enumerate(steps):
        step["_index"] = index
    return Plan(sequence=sequence, steps=steps, by_id={s["id"]: s for s in steps})


class Plans(dict):
    """Plans by sequence id, loaded on first use (one tick's cache)."""

    def __init__(self, db: Database):
        super().__init__()
        self.db = db

    def __missing__(self, sequence_id: int) -> Plan:
        plan = load(self.db, sequence_id)
        self[sequence_id] = plan
        return plan
