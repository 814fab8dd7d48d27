"""The sequence spec (SPEC 3): its keys and defaults, the dataclasses a read file becomes, and
the send window and delays of stored rows. Pure.

Defaults when a key is absent: `active` true, `timezone` UTC, send window 0-24 (every hour) and
`send_weekdays_only` false (a sequence that names no window sends at any time of any day; give
`send_window_start_hour`/`send_window_end_hour` and `send_weekdays_only: true` for office hours),
no holidays, `exit_on_reply`/`exit_on_booking`/`pause_on_auto_reply` true, every other flag
false. Step delays default to 0. `type` is an alias of `step_type`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from seqctl.engine.schedule import (
    Delay,
    SendWindow,
    valid_timezone,
)

STEP_TYPES = ("email", "call", "linkedin", "task", "wait")
TASK_TYPES = ("call", "linkedin", "task")
DELETED_MARK = "#deleted-"

# Column name -> default, in SPEC 3 order (also the export order).
SEQUENCE_DEFAULTS: dict[str, Any] = {
    "description": "",
    "active": True,
    "timezone": "UTC",
    "send_window_start_hour": 0,
    "send_window_end_hour": 24,
    "send_weekdays_only": False,
    "holidays": None,
    "send_in_contact_timezone": False,
    "exit_on_reply": True,
    "exit_on_stage_change": False,
    "exit_on_booking": True,
    "exit_on_company_reply": False,
    "pause_on_auto_reply": True,
    "pause_on_not_now": False,
    "track_opens": False,
    "track_clicks": False,
    "require_fields": "",   # stored: "" (none), "all", or "first_name,company_name"
}
BOOL_SETTINGS = tuple(k for k, v in SEQUENCE_DEFAULTS.items() if isinstance(v, bool))
WINDOW_SETTINGS = (
    "timezone",
    "send_window_start_hour",
    "send_window_end_hour",
    "send_weekdays_only",
    "holidays",
    "send_in_contact_timezone",
)
SEQUENCE_KEYS = ("name", *SEQUENCE_DEFAULTS, "steps")
STEP_KEYS = (
    "id",
    "step_type",
    "type",
    "delay_business_days",
    "delay_calendar_days",
    "delay_hours",
    "subject",
    "body",
    "cc",
    "bcc",
    "variant_b",
    "template",
    "title",
    "notes",
)
VARIANT_KEYS = ("subject", "body")
REQUIRE_ALL = "all"
DELAY_LIMITS = {"delay_business_days": 1000, "delay_calendar_days": 3650, "delay_hours": 87600}
MAX_NAME_LENGTH = 200

# Fields each step kind may have, beyond id, step_type and the delays.
_KIND_FIELDS = {
    "email": ("subject", "body", "cc", "bcc", "variant_b", "template"),
    "call": ("title", "notes"),
    "linkedin": ("title", "notes"),
    "task": ("title", "notes"),
    "wait": (),
}

YAML_TAG = "tag:yaml.org,2002:"


# --- the spec -------------------------------------------------------------------------------


def required_fields(stored: str | None) -> list[str] | str:
    """The `require_fields` of a stored sequence: "all", or the list of field names."""
    if stored == REQUIRE_ALL:
        return REQUIRE_ALL
    return [name for name in (stored or "").split(",") if name]


@dataclass
class StepSpec:
    step_type: str
    key: str | None = None  # the YAML `id`
    delay_business_days: int = 0
    delay_calendar_days: int = 0
    delay_hours: float = 0
    subject: str | None = None
    body: str | None = None
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    variant_b: dict[str, str] | None = None
    template: str | None = None
    title: str | None = None
    notes: str | None = None
    line: int | None = None
    key_line: int | None = None


@dataclass
class SequenceSpec:
    name: str
    settings: dict[str, Any]  # every SEQUENCE_DEFAULTS key
    steps: list[StepSpec]


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or, as a warning, suspicious) in a sequence file."""

    line: int | None
    field: str
    message: str

    def format(self, file: str, *, warning: bool = False) -> str:
        where = f"{file}:{self.line}" if self.line else file
        kind = "warning: " if warning else ""
        return f"{where}: {kind}{self.field}: {self.message}"

    def as_json(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "message": self.message}


@dataclass
class Validation:
    """The outcome of reading one sequence file: a spec when there are no errors."""

    spec: SequenceSpec | None
    name: str | None
    errors: list[Problem]
    warnings: list[Problem]
    spam: list[dict[str, Any]]

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_json(self, file: str) -> dict[str, Any]:
        return {
            "file": file,
            "name": self.name,
            "ok": self.ok,
            "errors": [p.as_json() for p in self.errors],
            "warnings": [p.as_json() for p in self.warnings],
            "spam": self.spam,
        }


def sequence_window(row: Mapping[str, Any], contact_timezone: str | None = None) -> SendWindow:
    """The send window of a `sequences` row; in the contact's timezone when the sequence has
    `send_in_contact_timezone` and the contact has a valid one."""
    zone = row["timezone"]
    if row["send_in_contact_timezone"] and contact_timezone and valid_timezone(contact_timezone):
        zone = contact_timezone
    return SendWindow(
        timezone=zone,
        start_hour=int(row["send_window_start_hour"]),
        end_hour=int(row["send_window_end_hour"]),
        weekdays_only=bool(row["send_weekdays_only"]),
        holidays=row["holidays"] or None,
    )


def step_delay(step_row: Mapping[str, Any]) -> Delay:
    """The delays of a `steps` row."""
    return Delay(
        business_days=int(step_row["delay_business_days"]),
        calendar_days=int(step_row["delay_calendar_days"]),
        hours=float(step_row["delay_hours"]),
    )


@cache
def _dumper() -> type:
    import yaml  # only when YAML is written: an idle tick never needs it

    class Dumper(yaml.SafeDumper):
        """Block scalars (`|`) for multi-line text; list items indented under their key."""

        def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
            super().increase_indent(flow, False)

    def represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar(YAML_TAG + "str", value, style=style)

    Dumper.add_representer(str, represent_text)
    return Dumper


def dump_yaml(document: Mapping[str, Any]) -> str:
    """Sequence YAML for a mapping, keys in the order given (`sequence export`, `sequence
    draft`): block scalars for multi-line text, so the file reads like one written by hand."""
    import yaml

    return yaml.dump(dict(document), Dumper=_dumper(), sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=4096)
