"""Reading and checking a sequence file (pure).

`validate_sequence(text, known_custom=..., templates=...)` turns YAML text into a
`SequenceSpec`, or into a list of `Problem`s, each with the line and field it is about. Every
problem is reported, not just the first. `sequence_store.validation_context(db)` supplies what
the pure validator needs from the database (custom-field names of contacts, saved templates).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping
from typing import Any

import yaml

from seqctl.engine.render import BUILTIN_VARIABLES, check_template, near_miss
from seqctl.engine.schedule import (
    valid_holiday_country,
    valid_timezone,
)
from seqctl.engine.sequence_spec import (
    _KIND_FIELDS,
    BOOL_SETTINGS,
    DELAY_LIMITS,
    DELETED_MARK,
    MAX_NAME_LENGTH,
    REQUIRE_ALL,
    SEQUENCE_DEFAULTS,
    SEQUENCE_KEYS,
    STEP_KEYS,
    STEP_TYPES,
    TASK_TYPES,
    VARIANT_KEYS,
    YAML_TAG,
    Problem,
    SequenceSpec,
    StepSpec,
    Validation,
)
from seqctl.engine.spam import score_email

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
        except (yaml.YAMLError, ValueError, OverflowError):
            # ValueError: an integer of more than Python's 4,300 digits
            return node.value if isinstance(node, yaml.ScalarNode) else None

    def text(self, node: yaml.Node, where: str, *, required: bool = False) -> str | None:
        """A text value. Any plain scalar counts as its text (`id: 1` is "1", `holidays: NO`
        is "NO", not YAML 1.1's false); null means absent."""
        if isinstance(node, yaml.ScalarNode):
            if node.tag == YAML_TAG + "null":
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
        if isinstance(value, str) and value.lstrip("+-").isdigit():     # too long for an int
            self.error(node, where, f"must be at most {high}, got a {len(value):,}-digit number")
            return None
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
        if isinstance(node, yaml.ScalarNode) and node.tag == YAML_TAG + "null":
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
        if node.tag == YAML_TAG + "null":
            return "empty"
        if len(node.value) > 40:
            return f"a value of {len(node.value):,} characters"
        return repr(node.value) if node.tag == YAML_TAG + "str" else node.value
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
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:       # a NUL byte or another control character
        line = text.count("\n", 0, exc.position) + 1
        return Validation(None, None, [Problem(
            line, "file", f"holds the control character U+{exc.character:04X} (at character "
            f"{exc.position + 1}); a sequence file is plain UTF-8 text: remove it")], [], [])
    try:
        root = loader.get_single_node()
    except RecursionError:
        loader.dispose()
        return Validation(None, None, [Problem(
            None, "yaml", "is nested too deeply (hundreds of levels); a sequence needs only a "
            "few (see docs/sequences.md)")], [], [])
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
    if "require_fields" in entries:
        settings["require_fields"] = _read_required(reader, entries["require_fields"][1], known)
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


_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _read_required(reader: _Reader, node: yaml.Node, known: set[str]) -> str:
    """`require_fields: all` or a list of merge variables, stored as "all" or "a,b"."""
    where = "require_fields"
    hint = "write require_fields: [first_name, company_name] or require_fields: all"
    if isinstance(node, yaml.ScalarNode) and node.tag != YAML_TAG + "null":
        if node.value == REQUIRE_ALL:
            return REQUIRE_ALL
        reader.error(node, where, f"must be a list of fields or 'all', not {_shown(node)} ({hint})")
        return ""
    items = reader.text_list(node, where)
    names: list[str] = []
    for value, item in items or []:
        if not _FIELD_NAME.match(value):
            reader.error(item, where, f"'{value}' is not a field name ({hint})")
        elif value not in known and near_miss(value, known):
            reader.error(item, where,
                         f"unknown field '{value}' (did you mean {near_miss(value, known)}?)")
        else:
            if value not in known:
                reader.warnings.append(Problem(
                    _line(item), where,
                    f"no contact has the field '{value}' yet: every email would be held back "
                    "until it is set"))
            if value not in names:
                names.append(value)
    return ",".join(names)


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
    for offset, text_line in enumerate(template.split("\n")):
        if _TODO.match(text_line):
            reader.warnings.append(Problem(
                base + offset, where, "still has a TODO: line (write it before anyone is "
                "enrolled: it would be sent as it is)"))


_TODO = re.compile(r"\s*TODO:")


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
