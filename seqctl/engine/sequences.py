"""Sequences: the YAML format (SPEC 3), its validation, and applying it to the database.

Reading a file is pure: `validate_sequence(text, known_custom=..., templates=...)` turns YAML text
into a `SequenceSpec`, or into a list of `Problem`s, each with the line and field it is about.
Every problem is reported, not just the first. `validation_context(db)` supplies what the pure
validator needs from the database (custom-field names of contacts, saved templates).

Defaults when a key is absent: `active` true, `timezone` UTC, send window 0-24 (every hour) and
`send_weekdays_only` false (a sequence that names no window sends at any time of any day; give
`send_window_start_hour`/`send_window_end_hour` and `send_weekdays_only: true` for office hours),
no holidays, `exit_on_reply`/`exit_on_booking`/`pause_on_auto_reply` true, every other flag
false. Step delays default to 0. `type` is an alias of `step_type`.

Applying (`apply_spec`) creates the sequence, or updates the one with the same name in place:
- Steps match by their `id` when they have one, else by position. A matched step keeps its
  database row (enrollments pointing at it keep pointing); new steps are inserted; old steps
  that match nothing are marked removed (never deleted: history refers to them).
- An enrollment whose up-next step is removed moves to the first step after it, in the old
  order, that still exists; with none left it is due now, and the engine completes it.
- Active enrollments not waiting on a send, whose up-next step's delays or whose sequence's
  send window changed (or that moved), get a new `next_run_at`: the new due time, but never
  earlier than the next open slot from now (a live edit never fires a step outside its window).

Activation: an inactive sequence accepts no new enrollments; enrollments already in it keep
running (deactivating pauses nothing). Deleting: a sequence with open (active, paused or failed)
enrollments is refused unless forced, which exits them with reason `manual`. A sequence that
nothing refers to is deleted outright; one with history is soft-deleted (renamed to
`NAME#deleted-ID`, made inactive and hidden from listings) so that stats and events keep their
sequence, and the name is free for reuse.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml
from sqlite_utils import Database

from seqctl.clock import from_iso, iso
from seqctl.db import transaction
from seqctl.engine import exits
from seqctl.engine.render import BUILTIN_VARIABLES, check_template
from seqctl.engine.schedule import (
    Delay,
    SendWindow,
    due_time,
    into_window,
    valid_holiday_country,
    valid_timezone,
)
from seqctl.engine.spam import score_email
from seqctl.errors import SeqctlError

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
    "track_opens": False,
    "track_clicks": False,
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

_TAG = "tag:yaml.org,2002:"


# --- the spec -------------------------------------------------------------------------------


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


# --- reading YAML with line numbers ---------------------------------------------------------


class _Reader:
    """Walks the composed YAML nodes, collecting problems with their lines."""

    def __init__(self, loader: yaml.SafeLoader):
        self.loader = loader
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []

    def error(self, node: yaml.Node | None, where: str, message: str) -> None:
        self.errors.append(Problem(_line(node), where, message))

    def warn(self, node: yaml.Node | None, where: str, message: str) -> None:
        self.warnings.append(Problem(_line(node), where, message))

    def mapping(
        self, node: yaml.MappingNode, where: str, known: tuple[str, ...], hint: str
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """The entries of a mapping node by key: unknown and duplicate keys are errors."""
        entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.error(key_node, where or "key", "keys must be plain names (fix the YAML)")
                continue
            key = key_node.value
            field_name = f"{where}.{key}" if where else key
            if key in entries:
                first = _line(entries[key][0])
                self.error(key_node, field_name, f"duplicate key (also on line {first}; keep one)")
                continue
            if key not in known:
                self.error(key_node, field_name, f"unknown key ({_suggest(key, known, hint)})")
                continue
            entries[key] = (key_node, value_node)
        return entries

    def scalar(self, node: yaml.Node) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError:
            return node.value if isinstance(node, yaml.ScalarNode) else None

    def text(self, node: yaml.Node, where: str, *, required: bool = False) -> str | None:
        """A text value. Any plain scalar counts as its text (`id: 1` is "1", `holidays: NO`
        is "NO", not YAML 1.1's false); null means absent."""
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _TAG + "null":
                if required:
                    self.error(node, where, "is empty (give a value)")
                return None
            return node.value
        self.error(node, where, f"must be text, not a {_kind(node)} (write a single value)")
        return None

    def boolean(self, node: yaml.Node, where: str) -> bool | None:
        value = self.scalar(node) if isinstance(node, yaml.ScalarNode) else node
        if isinstance(value, bool):
            return value
        self.error(node, where, f"must be true or false, not {_shown(node)}")
        return None

    def integer(
        self, node: yaml.Node, where: str, low: int, high: int, *, allow_float: bool = False
    ) -> float | int | None:
        value = self.scalar(node) if isinstance(node, yaml.ScalarNode) else None
        numeric = (int, float) if allow_float else (int,)
        kind = "a number" if allow_float else "a whole number"
        if isinstance(value, bool) or not isinstance(value, numeric) or value != value:
            self.error(node, where, f"must be {kind}, not {_shown(node)}")
            return None
        if value < low:
            what = "cannot be negative" if low == 0 else f"must be at least {low}"
            self.error(node, where, f"{what}, got {_shown(node)} (use {low} to {high})")
            return None
        if value > high:
            self.error(node, where, f"must be at most {high}, got {_shown(node)}")
            return None
        return value

    def text_list(self, node: yaml.Node, where: str) -> list[tuple[str, yaml.Node]] | None:
        if isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "null":
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.error(
                node,
                where,
                f"must be a list of addresses, not {_shown(node)} "
                f"(write [{node.value if isinstance(node, yaml.ScalarNode) else '...'}])",
            )
            return None
        items = []
        for item in node.value:
            value = self.text(item, where)
            if value is not None:
                items.append((value, item))
        return items


def _line(node: yaml.Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None and node.start_mark else None


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "mapping"
    if isinstance(node, yaml.SequenceNode):
        return "list"
    return "value"


def _shown(node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode):
        if node.tag == _TAG + "null":
            return "empty"
        return repr(node.value) if node.tag == _TAG + "str" else node.value
    return f"a {_kind(node)}"


def _suggest(word: str, known: tuple[str, ...] | list[str], hint: str) -> str:
    match = difflib.get_close_matches(word, list(known), n=1, cutoff=0.7)
    if match:
        return f"did you mean {match[0]}?"
    return hint


# --- validation ------------------------------------------------------------------------------


def validate_sequence(
    text: str,
    *,
    known_custom: set[str] | frozenset[str] = frozenset(),
    templates: Mapping[str, Mapping[str, Any]] | None = None,
) -> Validation:
    """Read and check one sequence file's text (pure).

    `known_custom`: custom-field names of existing contacts (merge variables that are not
    misspellings). `templates`: saved templates by name ({"subject", "body"}); None skips the
    check that `template:` names exist. Errors make `spec` None; warnings (unknown merge
    variables that are not near misses) do not.
    """
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        context_mark = getattr(exc, "context_mark", None)
        if context_mark is not None and mark is not None and mark.index >= len(text.rstrip()):
            mark = context_mark  # "unexpected end of stream": where the unclosed thing began
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        detail = f"{context}, {problem}" if context else problem
        loader.dispose()
        return Validation(
            None, None, [Problem(line, "yaml", f"{detail} (fix the YAML syntax)")], [], []
        )
    reader = _Reader(loader)
    if root is None:
        reader.error(None, "yaml", "the file is empty (a sequence needs at least name and steps)")
        return Validation(None, None, reader.errors, [], [])
    if not isinstance(root, yaml.MappingNode):
        reader.error(
            root,
            "yaml",
            f"the top level must be a mapping of keys (name:, steps:, ...), not a {_kind(root)}",
        )
        return Validation(None, None, reader.errors, [], [])

    entries = reader.mapping(root, "", SEQUENCE_KEYS, "the keys are listed in docs/sequences.md")
    name = _read_name(reader, root, entries)
    settings = _read_settings(reader, entries)
    known = set(known_custom) | set(BUILTIN_VARIABLES)
    steps = _read_steps(reader, root, entries, known, templates)
    spam = _spam_scores(steps, templates) if steps else []
    spec = None
    if not reader.errors and name is not None and steps is not None:
        spec = SequenceSpec(name=name, settings=settings, steps=steps)
    return Validation(spec, name, reader.errors, reader.warnings, spam)


def _read_name(reader: _Reader, root: yaml.Node, entries: dict) -> str | None:
    if "name" not in entries:
        reader.error(root, "name", "missing (every sequence needs a unique name)")
        return None
    node = entries["name"][1]
    name = reader.text(node, "name", required=True)
    if name is None:
        return None
    if not name.strip() or name != name.strip() or "\n" in name:
        reader.error(node, "name", "must be one line without leading or trailing spaces")
        return None
    if len(name) > MAX_NAME_LENGTH:
        reader.error(node, "name", f"is too long (at most {MAX_NAME_LENGTH} characters)")
        return None
    if DELETED_MARK in name:
        reader.error(
            node,
            "name",
            f"'{DELETED_MARK}' is reserved for deleted sequences (choose another name)",
        )
        return None
    return name


def _read_settings(reader: _Reader, entries: dict) -> dict[str, Any]:
    settings = dict(SEQUENCE_DEFAULTS)
    for key in BOOL_SETTINGS:
        if key in entries:
            value = reader.boolean(entries[key][1], key)
            if value is not None:
                settings[key] = value
    if "description" in entries:
        settings["description"] = reader.text(entries["description"][1], "description") or ""
    if "timezone" in entries:
        node = entries["timezone"][1]
        zone = reader.text(node, "timezone", required=True)
        if zone is not None:
            if valid_timezone(zone):
                settings["timezone"] = zone
            else:
                reader.error(
                    node,
                    "timezone",
                    f"unknown timezone '{zone}' (use an IANA name "
                    "such as America/Chicago or Europe/Berlin)",
                )
    if "holidays" in entries:
        node = entries["holidays"][1]
        country = reader.text(node, "holidays")
        if country is not None:
            if valid_holiday_country(country):
                settings["holidays"] = country
            elif valid_holiday_country(country.upper()):
                reader.error(
                    node,
                    "holidays",
                    f"unknown holiday country '{country}' (did you mean {country.upper()}?)",
                )
            else:
                reader.error(
                    node,
                    "holidays",
                    f"unknown holiday country '{country}' (use a "
                    "country code of the python `holidays` package, such as US or DE)",
                )
    hours_ok = True
    for key, low, high in (("send_window_start_hour", 0, 23), ("send_window_end_hour", 1, 24)):
        if key in entries:
            value = reader.integer(entries[key][1], key, low, high)
            if value is None:
                hours_ok = False
            else:
                settings[key] = value
    start, end = settings["send_window_start_hour"], settings["send_window_end_hour"]
    if hours_ok and start >= end:
        node = (entries.get("send_window_end_hour") or entries.get("send_window_start_hour"))[1]
        reader.error(
            node,
            "send_window_end_hour",
            f"the window ends ({end}) at or before it "
            f"starts ({start}) (the end hour is exclusive and must be later)",
        )
    return settings


def _read_steps(
    reader: _Reader,
    root: yaml.Node,
    entries: dict,
    known: set[str],
    templates: Mapping[str, Mapping[str, Any]] | None,
) -> list[StepSpec] | None:
    if "steps" not in entries:
        reader.error(root, "steps", "missing (a sequence needs at least one step)")
        return None
    node = entries["steps"][1]
    if not isinstance(node, yaml.SequenceNode):
        reader.error(node, "steps", f"must be a list of steps, not {_shown(node)}")
        return None
    if not node.value:
        reader.error(node, "steps", "is empty (a sequence needs at least one step)")
        return None
    steps: list[StepSpec] = []
    seen_ids: dict[str, int | None] = {}
    first_email = True
    for position, step_node in enumerate(node.value, start=1):
        where = f"steps[{position}]"
        step = _read_step(reader, step_node, where, known, templates, first_email)
        if step is None:
            continue
        if step.step_type == "email":
            first_email = False
        if step.key is not None:
            if step.key in seen_ids:
                reader.errors.append(
                    Problem(
                        step.key_line,
                        f"{where}.id",
                        f"duplicate step id "
                        f"'{step.key}' (also on line {seen_ids[step.key]}; "
                        "ids must be unique)",
                    )
                )
            seen_ids.setdefault(step.key, step.key_line)
        steps.append(step)
    return steps


def _read_step(
    reader: _Reader,
    node: yaml.Node,
    where: str,
    known: set[str],
    templates: Mapping[str, Mapping[str, Any]] | None,
    first_email: bool,
) -> StepSpec | None:
    if not isinstance(node, yaml.MappingNode):
        reader.error(
            node, where, f"a step must be a mapping (step_type: ..., ...), not {_shown(node)}"
        )
        return None
    entries = reader.mapping(node, where, STEP_KEYS, f"step keys: {', '.join(STEP_KEYS)}")
    if "type" in entries and "step_type" in entries:
        reader.error(
            entries["type"][0],
            f"{where}.type",
            "given together with step_type (type is an alias; keep one)",
        )
    type_entry = entries.get("step_type") or entries.get("type")
    if type_entry is None:
        reader.error(node, f"{where}.step_type", f"missing (one of {', '.join(STEP_TYPES)})")
        return None
    step_type = reader.text(type_entry[1], f"{where}.step_type", required=True)
    if step_type is None:
        return None
    if step_type not in STEP_TYPES:
        reader.error(
            type_entry[1],
            f"{where}.step_type",
            f"unknown step type '{step_type}' "
            f"({_suggest(step_type, STEP_TYPES, 'one of ' + ', '.join(STEP_TYPES))})",
        )
        return None
    step = StepSpec(step_type=step_type, line=_line(node))

    if "id" in entries:
        key_node = entries["id"][1]
        step.key = reader.text(key_node, f"{where}.id", required=True)
        step.key_line = _line(key_node)
        if step.key is not None and not step.key.strip():
            reader.error(key_node, f"{where}.id", "is blank (give a short name or remove it)")
    for key in DELAY_LIMITS:
        if key in entries:
            value = reader.integer(
                entries[key][1],
                f"{where}.{key}",
                0,
                DELAY_LIMITS[key],
                allow_float=key == "delay_hours",
            )
            if value is not None:
                setattr(step, key, value)

    allowed = _KIND_FIELDS[step_type]
    for key in ("subject", "body", "cc", "bcc", "variant_b", "template", "title", "notes"):
        if key in entries and key not in allowed:
            reader.error(
                entries[key][0],
                f"{where}.{key}",
                f"{step_type} steps have no {key} ({_belongs(key)})",
            )

    for key in ("subject", "body", "template", "title", "notes"):
        if key in entries and key in allowed:
            setattr(step, key, reader.text(entries[key][1], f"{where}.{key}"))
    for key in ("cc", "bcc"):
        if key in entries and key in allowed:
            items = reader.text_list(entries[key][1], f"{where}.{key}")
            if items is not None:
                setattr(step, key, [value for value, _ in items])
                for value, item in items:
                    _check_merge(reader, value, item, f"{where}.{key}", known)
    if "variant_b" in entries and "variant_b" in allowed:
        step.variant_b = _read_variant(
            reader, entries["variant_b"][1], f"{where}.variant_b", known, first_email
        )

    if step_type == "email":
        _check_email(reader, step, entries, node, where, known, templates, first_email)
    elif step_type in TASK_TYPES and not (step.title or "").strip():
        target = entries["title"][1] if "title" in entries else node
        reader.error(
            target,
            f"{where}.title",
            f'a {step_type} step needs a title (e.g. title: "Call {{{{first_name}}}}")',
        )
    return step


def _belongs(key: str) -> str:
    if key in ("title", "notes"):
        return "title and notes are for call, linkedin and task steps"
    return f"{key} is for email steps"


def _check_email(
    reader: _Reader,
    step: StepSpec,
    entries: dict,
    node: yaml.Node,
    where: str,
    known: set[str],
    templates: Mapping[str, Mapping[str, Any]] | None,
    first_email: bool,
) -> None:
    template_subject = None
    if step.template is not None:
        template_node = entries["template"][1]
        for key in ("subject", "body"):
            if key in entries:
                reader.error(
                    entries[key][0],
                    f"{where}.{key}",
                    "given together with template "
                    "(the template supplies subject and body; keep one)",
                )
        if templates is not None:
            saved = templates.get(step.template)
            if saved is None:
                reader.error(
                    template_node,
                    f"{where}.template",
                    f"no saved template "
                    f"'{step.template}' (save one with `seqctl templates save`, "
                    "or write subject and body)",
                )
            else:
                template_subject = saved.get("subject")
                if first_email and not (template_subject or "").strip():
                    reader.error(
                        template_node,
                        f"{where}.template",
                        f"template "
                        f"'{step.template}' has no subject, and the first email step "
                        "needs one (use a template with a subject, or add a step)",
                    )
        return
    if "subject" in entries and step.subject is not None:
        if not step.subject.strip():
            reader.error(
                entries["subject"][1],
                f"{where}.subject",
                "is blank (write a subject, "
                "or remove the key to reply in the thread of the previous email)",
            )
        else:
            _check_merge(reader, step.subject, entries["subject"][1], f"{where}.subject", known)
    elif first_email:
        reader.error(
            node,
            f"{where}.subject",
            "the first email step needs a subject (later "
            "email steps without one reply in the same thread)",
        )
    if not (step.body or "").strip():
        target = entries["body"][1] if "body" in entries else node
        reader.error(
            target,
            f"{where}.body",
            "an email step needs a body (add body: |, or template: NAME for a saved template)",
        )
    else:
        _check_merge(reader, step.body, entries["body"][1], f"{where}.body", known)


def _read_variant(
    reader: _Reader, node: yaml.Node, where: str, known: set[str], first_email: bool
) -> dict[str, str] | None:
    if not isinstance(node, yaml.MappingNode):
        reader.error(node, where, f"must be a mapping with subject and body, not {_shown(node)}")
        return None
    entries = reader.mapping(node, where, VARIANT_KEYS, "variant_b has subject and body")
    variant: dict[str, str] = {}
    for key in VARIANT_KEYS:
        if key in entries:
            value = reader.text(entries[key][1], f"{where}.{key}")
            if value is not None and value.strip():
                variant[key] = value
                _check_merge(reader, value, entries[key][1], f"{where}.{key}", known)
    if "body" not in variant:
        reader.error(node, f"{where}.body", "variant B needs a body (add body: under variant_b)")
    if first_email and "subject" not in variant:
        reader.error(
            node,
            f"{where}.subject",
            "variant B of the first email step needs a subject (add subject:)",
        )
    return variant


def _check_merge(
    reader: _Reader, template: str, node: yaml.Node, where: str, known: set[str]
) -> None:
    """Template syntax and merge variables: near misses are errors, other unknowns warnings."""
    base = _line(node) or 1
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        base += 1  # a block scalar's text starts on the line after the indicator
    for problem in check_template(template, known):
        line = base + (problem.line - 1 if problem.line else 0)
        if problem.kind == "unknown_variable":
            reader.warnings.append(
                Problem(
                    line,
                    where,
                    f"{problem.message} (it renders empty until a contact has that field)",
                )
            )
        elif problem.kind == "near_miss":
            reader.errors.append(
                Problem(
                    line,
                    where,
                    f"unknown merge variable "
                    f"'{problem.variable}' (did you mean "
                    f"{problem.suggestion}?)",
                )
            )
        else:
            reader.errors.append(
                Problem(line, where, f"{problem.message} (fix the {{{{ }}}} or {{% %}} tags)")
            )


def _spam_scores(
    steps: list[StepSpec], templates: Mapping[str, Mapping[str, Any]] | None
) -> list[dict[str, Any]]:
    """The spam-risk score of every email step (and its variant B), SPEC 14."""
    scores = []
    first = True
    for position, step in enumerate(steps, start=1):
        if step.step_type != "email":
            continue
        subject, body = step.subject, step.body
        if step.template is not None:
            saved = (templates or {}).get(step.template) or {}
            subject, body = saved.get("subject"), saved.get("body")
        variants = [("A", subject, body)]
        if step.variant_b:
            variants.append(("B", step.variant_b.get("subject"), step.variant_b.get("body")))
        for variant, v_subject, v_body in variants:
            if not v_body:
                continue
            report = score_email(v_subject or "", v_body, first_touch=first)
            scores.append(
                {
                    "step": position,
                    "variant": variant,
                    "score": report.score,
                    "band": report.band,
                    "reasons": [_plain(r) for r in report.reasons],
                }
            )
        first = False
    return scores


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


# --- what the validator needs from the database ----------------------------------------------


def validation_context(db: Database) -> tuple[set[str], dict[str, dict[str, Any]]]:
    """(custom-field names of all contacts, saved templates by name) for `validate_sequence`."""
    custom = {
        row[0]
        for row in db.execute(
            "SELECT DISTINCT j.key FROM contacts, json_each(contacts.custom_fields_json) j "
            "WHERE json_valid(contacts.custom_fields_json)"
        ).fetchall()
    }
    templates: dict[str, dict[str, Any]] = {}
    for name, subject, body in db.execute(
        "SELECT name, subject, body FROM templates ORDER BY id"
    ).fetchall():
        templates.setdefault(name, {"subject": subject, "body": body})
    return custom, templates


def validate_text(db: Database, text: str) -> Validation:
    """`validate_sequence` with the database's custom fields and templates."""
    custom, templates = validation_context(db)
    return validate_sequence(text, known_custom=custom, templates=templates)


# --- the engine's view ------------------------------------------------------------------------


def _rows(cursor) -> list[dict[str, Any]]:
    columns = [c[0] for c in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def live_steps(db: Database, sequence_id: int) -> list[dict[str, Any]]:
    """The sequence's current steps (not removed), by position: the `steps` row of each, plus
    `cc`, `bcc` (lists) and `variant_b` (dict or None) decoded from their JSON columns."""
    steps = _rows(
        db.execute(
            "SELECT * FROM steps WHERE sequence_id = ? AND removed = 0 ORDER BY position",
            [sequence_id],
        )
    )
    for step in steps:
        step["cc"] = json.loads(step["cc_json"] or "[]")
        step["bcc"] = json.loads(step["bcc_json"] or "[]")
        step["variant_b"] = json.loads(step["variant_b_json"]) if step["variant_b_json"] else None
    return steps


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


def get_sequence(db: Database, name: str) -> dict[str, Any]:
    """The `sequences` row named `name` (deleted ones are not found); SeqctlError if none."""
    rows = _rows(db.execute("SELECT * FROM sequences WHERE name = ?", [name]))
    if not rows or DELETED_MARK in name:
        raise SeqctlError(f"no sequence '{name}' (see `seqctl sequence list`)")
    return rows[0]


# --- applying ---------------------------------------------------------------------------------


@dataclass
class ApplyResult:
    name: str
    action: str  # created | updated | unchanged
    steps: int
    steps_added: int = 0
    steps_changed: int = 0
    steps_removed: int = 0
    enrollments_moved: int = 0
    enrollments_rescheduled: int = 0
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _sequence_columns(settings: Mapping[str, Any]) -> dict[str, Any]:
    return {k: int(v) if isinstance(v, bool) else v for k, v in settings.items()}


def _step_columns(step: StepSpec, position: int) -> dict[str, Any]:
    return {
        "step_key": step.key,
        "position": position,
        "step_type": step.step_type,
        "delay_business_days": step.delay_business_days,
        "delay_calendar_days": step.delay_calendar_days,
        "delay_hours": step.delay_hours,
        "subject": step.subject,
        "body": step.body,
        "cc_json": json.dumps(step.cc),
        "bcc_json": json.dumps(step.bcc),
        "variant_b_json": json.dumps(step.variant_b) if step.variant_b else None,
        "template": step.template,
        "title": step.title,
        "notes": step.notes,
        "removed": 0,
    }


def _insert(db: Database, table: str, values: Mapping[str, Any]) -> int:
    columns = ", ".join(values)
    marks = ", ".join("?" * len(values))
    return db.execute(
        f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(values.values())
    ).lastrowid


def _update(db: Database, table: str, row_id: int, values: Mapping[str, Any]) -> None:
    assignments = ", ".join(f"{column} = ?" for column in values)
    db.execute(f"UPDATE {table} SET {assignments} WHERE id = ?", [*values.values(), row_id])


def _match_steps(old: list[dict[str, Any]], new: list[StepSpec]) -> list[dict[str, Any] | None]:
    """For each new step, the old live step it updates (by id, else by position), or None."""
    by_key = {step["step_key"]: step for step in old if step["step_key"] is not None}
    new_keys = {step.key for step in new if step.key is not None}
    matched: list[dict[str, Any] | None] = [None] * len(new)
    taken: set[int] = set()
    for index, step in enumerate(new):
        if step.key is not None and step.key in by_key:
            matched[index] = by_key[step.key]
            taken.add(by_key[step.key]["id"])
    for index, step in enumerate(new):
        if step.key is not None or index >= len(old):
            continue
        candidate = old[index]
        if candidate["id"] in taken or candidate["step_key"] in new_keys:
            continue
        matched[index] = candidate
        taken.add(candidate["id"])
    return matched


def apply_spec(db: Database, spec: SequenceSpec, now: datetime) -> ApplyResult:
    """Create the sequence, or update the one with the same name (see the module docstring)."""
    with transaction(db):
        rows = _rows(db.execute("SELECT * FROM sequences WHERE name = ?", [spec.name]))
        columns = _sequence_columns(spec.settings)
        if not rows:
            sequence_id = _insert(
                db,
                "sequences",
                {"name": spec.name, **columns, "created_at": iso(now), "updated_at": iso(now)},
            )
            for position, step in enumerate(spec.steps, start=1):
                _insert(db, "steps", {"sequence_id": sequence_id, **_step_columns(step, position)})
            return ApplyResult(spec.name, "created", len(spec.steps), steps_added=len(spec.steps))
        return _update_sequence(db, rows[0], columns, spec, now)


def _update_sequence(
    db: Database, row: dict[str, Any], columns: dict[str, Any], spec: SequenceSpec, now: datetime
) -> ApplyResult:
    sequence_id = row["id"]
    result = ApplyResult(spec.name, "unchanged", len(spec.steps))
    changed_settings = {k: v for k, v in columns.items() if row[k] != v}
    window_changed = any(k in changed_settings for k in WINDOW_SETTINGS)
    if changed_settings:
        _update(db, "sequences", sequence_id, changed_settings)

    old = _rows(
        db.execute(
            "SELECT * FROM steps WHERE sequence_id = ? AND removed = 0 ORDER BY position",
            [sequence_id],
        )
    )
    matched = _match_steps(old, spec.steps)
    delay_changed: set[int] = set()
    for position, (step, previous) in enumerate(zip(spec.steps, matched, strict=True), start=1):
        values = _step_columns(step, position)
        if previous is None:
            _insert(db, "steps", {"sequence_id": sequence_id, **values})
            result.steps_added += 1
            continue
        diff = {k: v for k, v in values.items() if previous[k] != v}
        if not diff:
            continue
        _update(db, "steps", previous["id"], diff)
        if set(diff) - {"position"}:
            result.steps_changed += 1
        if any(k.startswith("delay_") for k in diff):
            delay_changed.add(previous["id"])
        if "step_type" in diff:
            waiting = _up_next_count(db, previous["id"])
            if waiting:
                result.warnings.append(
                    f"step {position} changed from {previous['step_type']} to "
                    f"{step.step_type} while up next for {waiting} enrollment(s); "
                    f"they will get the new {step.step_type} step"
                )

    kept = {m["id"] for m in matched if m is not None}
    removed = [step for step in old if step["id"] not in kept]
    moved: set[int] = set()
    for step in removed:
        db.execute("UPDATE steps SET removed = 1, position = NULL WHERE id = ?", [step["id"]])
        result.steps_removed += 1
        index = old.index(step)
        successor = next((s for s in old[index + 1 :] if s["id"] in kept), None)
        waiting = _rows(
            db.execute(
                "SELECT id, status, waiting_outbox_id FROM enrollments "
                "WHERE step_id = ? AND status != 'exited'",
                [step["id"]],
            )
        )
        if not waiting:
            continue
        label = f"'{step['step_key']}'" if step["step_key"] else str(step["position"])
        where = "the next remaining step" if successor else "the end (they complete)"
        result.warnings.append(
            f"removed step {label} was up next for {len(waiting)} "
            f"enrollment(s); they move to {where}"
        )
        for enrollment in waiting:
            if successor is not None:
                db.execute(
                    "UPDATE enrollments SET step_id = ?, updated_at = ? WHERE id = ?",
                    [successor["id"], iso(now), enrollment["id"]],
                )
            elif enrollment["status"] == "active" and enrollment["waiting_outbox_id"] is None:
                db.execute(
                    "UPDATE enrollments SET step_id = NULL, next_run_at = ?, "
                    "updated_at = ? WHERE id = ?",
                    [iso(now), iso(now), enrollment["id"]],
                )
            else:
                db.execute(
                    "UPDATE enrollments SET step_id = NULL, updated_at = ? WHERE id = ?",
                    [iso(now), enrollment["id"]],
                )
            moved.add(enrollment["id"])
    result.enrollments_moved = len(moved)
    result.enrollments_rescheduled = _reschedule(
        db, sequence_id, now, window_changed, delay_changed, moved
    )

    if (
        changed_settings
        or result.steps_added
        or result.steps_removed
        or any(
            (m is None or m["position"] != position) for position, m in enumerate(matched, start=1)
        )
        or result.steps_changed
    ):
        result.action = "updated"
        db.execute("UPDATE sequences SET updated_at = ? WHERE id = ?", [iso(now), sequence_id])
    return result


def _up_next_count(db: Database, step_id: int) -> int:
    return db.execute(
        "SELECT COUNT(*) FROM enrollments WHERE step_id = ? AND status != 'exited'", [step_id]
    ).fetchone()[0]


def _reschedule(
    db: Database,
    sequence_id: int,
    now: datetime,
    window_changed: bool,
    delay_changed: set[int],
    moved: set[int],
) -> int:
    """New `next_run_at` for the active enrollments the edit affects (see module docstring)."""
    if not (window_changed or delay_changed or moved):
        return 0
    sequence = _rows(db.execute("SELECT * FROM sequences WHERE id = ?", [sequence_id]))[0]
    steps = {step["id"]: step for step in live_steps(db, sequence_id)}
    enrollments = _rows(
        db.execute(
            "SELECT e.id, e.step_id, e.anchor_at, e.next_run_at, c.timezone AS contact_timezone "
            "FROM enrollments e JOIN contacts c ON c.id = e.contact_id "
            "WHERE e.sequence_id = ? AND e.status = 'active' AND e.waiting_outbox_id IS NULL "
            "AND e.step_id IS NOT NULL",
            [sequence_id],
        )
    )
    count = 0
    for enrollment in enrollments:
        step = steps.get(enrollment["step_id"])
        if step is None:
            continue
        if not (window_changed or step["id"] in delay_changed or enrollment["id"] in moved):
            continue
        window = sequence_window(sequence, enrollment["contact_timezone"])
        due = due_time(from_iso(enrollment["anchor_at"]), step_delay(step), window)
        next_run_at = iso(max(due, into_window(now, window)))
        if next_run_at != enrollment["next_run_at"]:
            db.execute(
                "UPDATE enrollments SET next_run_at = ?, updated_at = ? WHERE id = ?",
                [next_run_at, iso(now), enrollment["id"]],
            )
            count += 1
    return count


# --- export -----------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block scalars (`|`) for multi-line text; list items indented under their key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar(_TAG + "str", value, style=style)


_Dumper.add_representer(str, _represent_text)


def _number(value: float | int) -> float | int:
    return int(value) if float(value).is_integer() else value


def export_document(db: Database, name: str) -> dict[str, Any]:
    """The sequence as the mapping its YAML holds (keys in SPEC 3 order)."""
    sequence = get_sequence(db, name)
    document: dict[str, Any] = {"name": sequence["name"]}
    for key, default in SEQUENCE_DEFAULTS.items():
        value = sequence[key]
        if isinstance(default, bool):
            value = bool(value)
        if key == "description" and not value:
            continue
        if key == "holidays" and not value:
            continue
        document[key] = value
    document["steps"] = [_export_step(step) for step in live_steps(db, sequence["id"])]
    return document


def _export_step(step: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if step["step_key"] is not None:
        out["id"] = step["step_key"]
    out["step_type"] = step["step_type"]
    for key in DELAY_LIMITS:
        if step[key]:
            out[key] = _number(step[key])
    for key in ("subject", "body"):
        if step[key] is not None:
            out[key] = step[key]
    for key in ("cc", "bcc"):
        if step[key]:
            out[key] = step[key]
    if step["variant_b"]:
        out["variant_b"] = {k: step["variant_b"][k] for k in VARIANT_KEYS if k in step["variant_b"]}
    for key in ("template", "title", "notes"):
        if step[key] is not None:
            out[key] = step[key]
    return out


def export_yaml(db: Database, name: str) -> str:
    """YAML that `apply` accepts unchanged (round trip)."""
    return yaml.dump(
        export_document(db, name),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=4096,
    )


# --- listing, showing and managing ------------------------------------------------------------


def list_sequences(db: Database) -> list[dict[str, Any]]:
    """Every (not deleted) sequence with its step count and enrollment counts by status."""
    rows = _rows(
        db.execute(
            "SELECT s.id, s.name, s.description, s.active, "
            "(SELECT COUNT(*) FROM steps WHERE sequence_id = s.id AND removed = 0) AS steps, "
            "(SELECT COUNT(*) FROM enrollments WHERE sequence_id = s.id AND status = 'active') "
            "  AS active_enrollments, "
            "(SELECT COUNT(*) FROM enrollments WHERE sequence_id = s.id AND status = 'paused') "
            "  AS paused_enrollments, "
            "(SELECT COUNT(*) FROM enrollments WHERE sequence_id = s.id AND status = 'exited') "
            "  AS exited_enrollments, "
            "(SELECT COUNT(*) FROM enrollments WHERE sequence_id = s.id AND status = 'failed') "
            "  AS failed_enrollments "
            "FROM sequences s WHERE instr(s.name, ?) = 0 ORDER BY s.name",
            [DELETED_MARK],
        )
    )
    for row in rows:
        row["active"] = bool(row["active"])
        del row["id"]
    return rows


def show(db: Database, name: str) -> dict[str, Any]:
    """The sequence's settings, enrollment counts and live steps (SPEC 16-style document)."""
    sequence = get_sequence(db, name)
    document: dict[str, Any] = {"name": sequence["name"]}
    for key, default in SEQUENCE_DEFAULTS.items():
        value = sequence[key]
        document[key] = bool(value) if isinstance(default, bool) else value
    document["created_at"] = sequence["created_at"]
    document["updated_at"] = sequence["updated_at"]
    counts = dict(
        db.execute(
            "SELECT status, COUNT(*) FROM enrollments WHERE sequence_id = ? GROUP BY status",
            [sequence["id"]],
        ).fetchall()
    )
    document["enrollments"] = {
        status: counts.get(status, 0) for status in ("active", "paused", "exited", "failed")
    }
    document["steps"] = [
        {
            "position": step["position"],
            "id": step["step_key"],
            "step_type": step["step_type"],
            "delay_business_days": step["delay_business_days"],
            "delay_calendar_days": step["delay_calendar_days"],
            "delay_hours": _number(step["delay_hours"]),
            "subject": step["subject"],
            "body": step["body"],
            "cc": step["cc"],
            "bcc": step["bcc"],
            "title": step["title"],
            "notes": step["notes"],
            "template": step["template"],
            "variant_b": step["variant_b"],
        }
        for step in live_steps(db, sequence["id"])
    ]
    return document


def check_new_name(db: Database, name: str) -> None:
    """SeqctlError unless `name` is a valid name that no sequence has."""
    if not name.strip() or name != name.strip() or "\n" in name or len(name) > MAX_NAME_LENGTH:
        raise SeqctlError(
            f"'{name}' is not a valid sequence name (one line, no leading or "
            f"trailing spaces, at most {MAX_NAME_LENGTH} characters)"
        )
    if DELETED_MARK in name:
        raise SeqctlError(
            f"'{DELETED_MARK}' is reserved for deleted sequences; choose another name"
        )
    if db.execute("SELECT 1 FROM sequences WHERE name = ?", [name]).fetchone():
        raise SeqctlError(f"a sequence named '{name}' already exists (choose another name)")


def duplicate(db: Database, name: str, new_name: str, now: datetime) -> dict[str, Any]:
    """Copy a sequence and its live steps (not its enrollments) under `new_name`."""
    with transaction(db):
        source = get_sequence(db, name)
        check_new_name(db, new_name)
        values = {k: source[k] for k in SEQUENCE_DEFAULTS}
        sequence_id = _insert(
            db,
            "sequences",
            {"name": new_name, **values, "created_at": iso(now), "updated_at": iso(now)},
        )
        steps = live_steps(db, source["id"])
        for step in steps:
            copy = {
                k: v
                for k, v in step.items()
                if k not in ("id", "sequence_id", "cc", "bcc", "variant_b")
            }
            _insert(db, "steps", {**copy, "sequence_id": sequence_id})
    return {"name": new_name, "source": name, "steps": len(steps)}


def set_active(db: Database, name: str, active: bool, now: datetime) -> bool:
    """Turn a sequence on or off. Returns False when it already was."""
    with transaction(db):
        sequence = get_sequence(db, name)
        if bool(sequence["active"]) == active:
            return False
        db.execute(
            "UPDATE sequences SET active = ?, updated_at = ? WHERE id = ?",
            [int(active), iso(now), sequence["id"]],
        )
    return True


def delete(db: Database, name: str, now: datetime, *, force: bool = False) -> dict[str, Any]:
    """Delete a sequence (see the module docstring). Returns {"name", "deleted": "hard"|"soft",
    "exited": n}."""
    with transaction(db):
        sequence = get_sequence(db, name)
        sequence_id = sequence["id"]
        open_ids = [
            row[0]
            for row in db.execute(
                "SELECT id FROM enrollments WHERE sequence_id = ? AND status != 'exited'",
                [sequence_id],
            ).fetchall()
        ]
        if open_ids and not force:
            raise SeqctlError(
                f"sequence '{name}' has {len(open_ids)} enrollment(s) still in it "
                "(active, paused or failed); `seqctl sequence deactivate "
                f"{name}` stops new ones, or add --force to exit them (reason "
                "manual) and delete"
            )
        for enrollment_id in open_ids:
            exits.exit_enrollment(db, enrollment_id, "manual", now, {"why": "sequence deleted"})
        if _has_history(db, sequence_id):
            db.execute(
                "UPDATE sequences SET name = ?, active = 0, updated_at = ? WHERE id = ?",
                [f"{name}{DELETED_MARK}{sequence_id}", iso(now), sequence_id],
            )
            how = "soft"
        else:
            db.execute("DELETE FROM steps WHERE sequence_id = ?", [sequence_id])
            db.execute("DELETE FROM sequences WHERE id = ?", [sequence_id])
            how = "hard"
    return {"name": name, "deleted": how, "exited": len(open_ids)}


def _has_history(db: Database, sequence_id: int) -> bool:
    checks = (
        "SELECT 1 FROM enrollments WHERE sequence_id = ? LIMIT 1",
        "SELECT 1 FROM tasks WHERE sequence_id = ? LIMIT 1",
        "SELECT 1 FROM events WHERE sequence_id = ? LIMIT 1",
        "SELECT 1 FROM outbox WHERE step_id IN (SELECT id FROM steps WHERE sequence_id = ?) "
        "LIMIT 1",
    )
    return any(db.execute(sql, [sequence_id]).fetchone() for sql in checks)
