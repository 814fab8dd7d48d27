"""What one tick did, counted (pure): the phases add to one `TickCounts`."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class TickCounts:
    synced: int = 0
    exited: int = 0
    steps_fired: int = 0
    emails_queued: int = 0
    emails_sent: int = 0
    tasks_created: int = 0
    skipped_suppressed: int = 0
    deferred: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
