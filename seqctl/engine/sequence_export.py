"""`sequence export`: a stored sequence as YAML that `sequence apply` accepts unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from seqctl.engine.sequence_spec import (
    DELAY_LIMITS,
    SEQUENCE_DEFAULTS,
    VARIANT_KEYS,
    dump_yaml,
    required_fields,
)
from seqctl.engine.sequence_store import get_sequence, live_steps

if TYPE_CHECKING:
    from sqlite_utils import Database

# --- export -----------------------------------------------------------------------------------


def plain_number(value: float | int) -> float | int:
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
        if key in ("holidays", "require_fields") and not value:
            continue
        if key == "require_fields":
            value = required_fields(value)
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
            out[key] = plain_number(step[key])
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
    return dump_yaml(export_document(db, name))
