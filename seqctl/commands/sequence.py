"""`seqctl sequence apply|validate|list|show|export|duplicate|activate|deactivate|delete`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from seqctl import clock, output
from seqctl.commands._common import JsonOpt, db, default, group
from seqctl.engine import sequence_export, sequence_queries, sequence_reader, sequence_store
from seqctl.engine.sequence_spec import Problem, Validation
from seqctl.errors import SeqctlError

app = group(
    "Sequences: the steps (emails, calls, LinkedIn, tasks, waits) and their schedule.",
    examples=["seqctl sequence apply examples/cold-saas-intro.yaml", "seqctl sequence"],
)

Files = Annotated[
    list[str],
    typer.Argument(help="Sequence YAML files ('-' reads standard input).", metavar="FILE",
                   show_default=False),
]
NameArg = Annotated[str, typer.Argument(help="The sequence's name.")]


def _paths(files: list[str]) -> list[Path]:
    return [Path(name) for name in files]


def _steps(count: int) -> str:
    return f"{count} step" + ("" if count == 1 else "s")


def _label(path: Path) -> str:
    return "<stdin>" if str(path) == "-" else str(path)


def _read(path: Path) -> tuple[str | None, Problem | None]:
    if str(path) != "-" and path.is_dir():
        return None, Problem(None, "file", "is a folder, not a sequence file")
    try:
        raw = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as exc:
        return None, Problem(None, "file", f"cannot read: {exc.strerror}")
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        return None, Problem(None, "file", f"is not UTF-8 text (byte {exc.start}; save the file "
                             "as UTF-8)")


def _check_files(files: list[str]) -> list[tuple[str, Validation]]:
    """Validate every file (nothing is written); also flag one name applied by two files."""
    paths = _paths(files)
    database = db()
    custom, templates = sequence_store.validation_context(database)
    results: list[tuple[str, Validation]] = []
    names: dict[str, str] = {}
    for path in paths:
        label = _label(path)
        text, problem = _read(path)
        if problem is not None:
            results.append((label, Validation(None, None, [problem], [], [])))
            continue
        validation = sequence_reader.validate_sequence(text, known_custom=custom, templates=templates)
        if validation.name is not None:
            if validation.name in names:
                validation.errors.append(Problem(None, "name", f"'{validation.name}' is also "
                                                 f"the name in {names[validation.name]} (names "
                                                 "are unique; rename one)"))
                validation.spec = None
            names.setdefault(validation.name, label)
        results.append((label, validation))
    return results


def _report(results: list[tuple[str, Validation]]) -> None:
    for label, validation in results:
        for problem in validation.errors:
            sys.stderr.write(problem.format(label) + "\n")
        for problem in validation.warnings:
            output.warn(problem.format(label))
        for score in validation.spam:
            if score["band"] != "green":
                top = "; ".join(r["detail"] for r in score["reasons"][:3])
                output.warn(f"{label}: steps[{score['step']}] variant {score['variant']}: "
                            f"spam risk {score['score']} ({score['band']}): {top}")


def _emit(documents: list[dict]) -> None:
    output.emit_json(documents[0] if len(documents) == 1 else documents)


@app.command("validate")
def validate(files: Files, json_out: JsonOpt = False) -> None:
    """Check sequence files without writing anything: every problem is printed as
    FILE:LINE: field: message. Exits 1 when there are errors (warnings are allowed).

    With --json: {"file", "name", "ok", "errors", "warnings", "spam"} (a list of them for
    several files).

    \b
    Examples:
      seqctl sequence validate examples/cold-saas-intro.yaml
      cat draft.yaml | seqctl sequence validate - --json
    """
    results = _check_files(files)
    _report(results)
    if json_out:
        _emit([validation.as_json(label) for label, validation in results])
    else:
        for label, validation in results:
            if validation.ok:
                steps = len(validation.spec.steps) if validation.spec else 0
                output.info(f"{label}: ok, sequence {validation.name} ({_steps(steps)}"
                            + (f", {output.plural(len(validation.warnings), 'warning')})"
                               if validation.warnings else ")"))
    if any(not validation.ok for _, validation in results):
        raise typer.Exit(1)


@app.command("apply")
def apply(files: Files, json_out: JsonOpt = False) -> None:
    """Create or update sequences from YAML files (by name). Every file is checked first;
    with any error nothing is written. Steps match by `id`, else by position; a removed step
    that is up next moves its enrollments to the next remaining step.

    With --json: validate's document plus "action" and "steps" (a list for several files).

    \b
    Examples:
      seqctl sequence apply examples/cold-saas-intro.yaml
      seqctl sequence apply sequences/*.yaml --json
    """
    results = _check_files(files)
    _report(results)
    if any(not validation.ok for _, validation in results):
        if json_out:
            _emit([{**validation.as_json(label), "action": None}
                   for label, validation in results])
        raise typer.Exit(1)
    database = db()
    now = clock.now()
    applied = sequence_store.apply_specs(database, [v.spec for _, v in results], now)
    documents = []
    for (label, validation), result in zip(results, applied, strict=True):
        for message in result.warnings:
            output.warn(f"{label}: {message}")
        documents.append({**validation.as_json(label), **result.as_json(),
                          "warnings": [p.as_json() for p in validation.warnings]
                          + [{"line": None, "field": "steps", "message": m}
                             for m in result.warnings]})
        if not json_out:
            detail = _steps(result.steps)
            if result.action == "updated":
                parts = [f"{n} {what}" for n, what in (
                    (result.steps_added, "added"), (result.steps_changed, "changed"),
                    (result.steps_removed, "removed")) if n]
                if result.enrollments_rescheduled:
                    parts.append(output.plural(result.enrollments_rescheduled, "enrollment")
                                 + " rescheduled")
                if parts:
                    detail += ": " + ", ".join(parts)
            output.info(f"{result.action} sequence {result.name} ({detail})")
    if json_out:
        _emit(documents)


@default(app)
@app.command("list")
def list_(json_out: JsonOpt = False) -> None:
    """List sequences with their step count and enrollments by status.

    \b
    Examples:
      seqctl sequence
      seqctl sequence list --json
    """
    rows = sequence_queries.list_sequences(db())
    if json_out:
        output.emit_json(rows)
        return
    for row in rows:
        row["active"] = "yes" if row["active"] else "no"
    output.table(
        [{"name": r["name"], "active": r["active"], "steps": r["steps"],
          "in progress": r["active_enrollments"], "paused": r["paused_enrollments"],
          "exited": r["exited_enrollments"], "failed": r["failed_enrollments"]} for r in rows],
        ["name", "active", "steps", "in progress", "paused", "exited", "failed"],
        empty="no sequences yet: seqctl sequence apply FILE.yaml (see examples/)",
    )


def _delays(step: dict) -> str:
    parts = []
    if step["delay_business_days"]:
        parts.append(f"+{output.plural(step['delay_business_days'], 'business day')}")
    if step["delay_calendar_days"]:
        parts.append(f"+{output.plural(step['delay_calendar_days'], 'day')}")
    if step["delay_hours"]:
        parts.append(f"+{step['delay_hours']} h")
    return " ".join(parts) or "-"


def _summary(step: dict) -> str:
    if step["step_type"] == "email":
        if step["template"]:
            return f"template {step['template']}"
        subject = step["subject"] or "(reply in thread)"
        return subject + (" [A/B]" if step["variant_b"] else "")
    return step["title"] or ""


@app.command("show")
def show(name: NameArg, json_out: JsonOpt = False) -> None:
    """Show a sequence's settings and steps.

    \b
    Example:
      seqctl sequence show cold-saas-intro
    """
    document = sequence_queries.show(db(), name)
    if json_out:
        output.emit_json(document)
        return
    for key, value in document.items():
        if key in ("steps", "enrollments"):
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        output.line(f"{key}: {'' if value is None else value}")
    counts = document["enrollments"]
    output.line("enrollments: " + ", ".join(f"{n} {status}" for status, n in counts.items()))
    output.line()
    output.table(
        [{"#": s["position"], "id": s["id"], "type": s["step_type"], "delay": _delays(s),
          "what": _summary(s)} for s in document["steps"]],
        ["#", "id", "type", "delay", "what"],
    )


@app.command("export")
def export(name: NameArg) -> None:
    """Print a sequence as YAML that `seqctl sequence apply` accepts unchanged.

    \b
    Example:
      seqctl sequence export cold-saas-intro > cold-saas-intro.yaml
    """
    sys.stdout.write(sequence_export.export_yaml(db(), name))


@app.command("duplicate")
def duplicate(name: NameArg, new_name: Annotated[str, typer.Argument(help="Name of the copy.")]
              ) -> None:
    """Copy a sequence and its steps (not its enrollments) under a new name. The copy is
    inactive until `seqctl sequence activate`.

    \b
    Example:
      seqctl sequence duplicate cold-saas-intro cold-saas-intro-v2
    """
    result = sequence_store.duplicate(db(), name, new_name, clock.now())
    output.info(f"copied sequence {name} to {new_name} ({_steps(result['steps'])}); the copy is "
                f"inactive: `seqctl sequence activate {new_name}` when it is ready")


@app.command("activate")
def activate(name: NameArg) -> None:
    """Let a sequence accept new enrollments again.

    \b
    Example:
      seqctl sequence activate cold-saas-intro
    """
    changed = sequence_store.set_active(db(), name, True, clock.now())
    output.info(f"sequence {name} " + ("activated" if changed else "was already active"))


@app.command("deactivate")
def deactivate(name: NameArg) -> None:
    """Stop new enrollments. Contacts already in the sequence keep going (use `pause` or
    `unenroll` to stop them).

    \b
    Example:
      seqctl sequence deactivate cold-saas-intro
    """
    changed = sequence_store.set_active(db(), name, False, clock.now())
    output.info(f"sequence {name} " + ("deactivated: no new enrollments; existing ones "
                                       "continue" if changed else "was already inactive"))


@app.command("delete")
def delete(
    name: NameArg,
    force: Annotated[bool, typer.Option("--force", help="Exit open enrollments (reason "
                                        "manual) and delete anyway.")] = False,
) -> None:
    """Delete a sequence. Refused while contacts are still in it (active, paused or failed)
    unless --force. A sequence with history is hidden and renamed rather than erased, so
    stats and events keep it; its name becomes free.

    \b
    Examples:
      seqctl sequence delete old-intro
      seqctl sequence delete old-intro --force
    """
    result = sequence_store.delete(db(), name, clock.now(), force=force)
    exited = (f"; exited {output.plural(result['exited'], 'enrollment')}" if result["exited"]
              else "")
    output.info(f"deleted sequence {name}{exited}")


@app.command("draft")
def draft(
    text: Annotated[str, typer.Argument(help="The cadence in plain words ('-' reads standard "
                                        "input).", metavar="TEXT", show_default=False)],
    name: Annotated[str | None, typer.Option("--name", help="The sequence's name (default: "
                                             "from the words).")] = None,
    output_file: Annotated[Path | None, typer.Option("-o", "--output", help="Write the YAML "
                                                     "to FILE instead of standard output.",
                                                     metavar="FILE")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Ask this `llm` model instead of "
                                              "the offline parser (needs seqctl[ai]).")] = None,
) -> None:
    """Draft sequence YAML from a plain-language cadence, e.g. "Day 1 — intro email / Day 3
    business days — follow-up / Day 7 — LinkedIn connect request / exit on reply". Nothing is
    applied: review the TODO: lines, then `seqctl sequence apply FILE`. The draft always
    passes `sequence validate`. Phrases it does not understand are warnings on stderr; the
    phrases it knows are listed in docs/drafting.md.

    \b
    Example:
      seqctl sequence draft "Day 1 intro email / Day 3 follow-up / exit on reply" -o s.yaml
    """
    from seqctl.engine import draft as drafting

    words = sys.stdin.read() if text == "-" else text
    if model is not None:
        from seqctl.providers import language_model

        drafted = drafting.draft_with_model(words, language_model.load_model(model), name=name)
    else:
        drafted = drafting.draft(words, name=name)
    for message in drafted.warnings:
        output.warn(message)
    document = drafted.to_yaml(words)
    validation = sequence_reader.validate_sequence(document)
    if not validation.ok:
        for problem in validation.errors:
            sys.stderr.write(f"{drafted.source}: {problem.field}: {problem.message}\n")
        raise SeqctlError(f"the draft from {drafted.source} does not pass validation "
                          f"({len(validation.errors)} problem(s) above); nothing was written")
    label = str(output_file) if output_file is not None else "<stdout>"
    for problem in validation.warnings:
        output.warn(problem.format(label))
    if output_file is None:
        sys.stdout.write(document)
        return
    from seqctl.files import write_text

    write_text(output_file, document)
    output.info(f"wrote {output_file} (sequence {validation.name}, "
                f"{_steps(len(validation.spec.steps))}); next: seqctl sequence apply "
                f"{output_file}")
