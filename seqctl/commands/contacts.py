"""`seqctl contacts import|list|show|set|set-stage`."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from seqctl import output
from seqctl.commands._common import EmailArg, JsonOpt, db, default, group, input_file
from seqctl.engine import contacts

app = group(
    "The people you reach out to: import them from CSV, look them up, edit them.",
    examples=["seqctl contacts import leads.csv", "seqctl contacts --search acme"],
)

LIST_COLUMNS = ["email", "name", "company", "stage", "owner", "suppressed"]


@app.command("import")
def import_(
    file: Annotated[
        str, typer.Argument(metavar="FILE", help="CSV file with an email column; - reads stdin.")
    ],
    json_out: JsonOpt = False,
) -> None:
    """Import (upsert) contacts from a CSV file.

    `email` is required; first_name, last_name, company_name, owner_email, lifecycle_stage and
    timezone are known columns (also accepted: "E-mail", "Email Address", "First Name",
    "Company", "Time Zone", ...); every other column becomes a custom field usable as
    {{column_name}}, its name in lower_snake_case. UTF-8 (with or without BOM) or
    Windows-1252/Latin-1; comma, semicolon or tab delimited.

    An existing contact (same email, any case) is updated with the row's non-empty values: an
    empty cell never erases what is stored. When an email appears twice, the later row wins.
    Bad rows (missing or invalid email, unknown owner, bad timezone) are listed as FILE:LINE
    on stderr and skipped; the exit code is then 1.

    \b
    Examples:
      seqctl contacts import leads.csv
      cat leads.csv | seqctl contacts import - --json
    """
    with input_file(file) as (stream, name), output.progress("importing") as advance:
        result = contacts.import_contacts(db(), stream, filename=name, progress=advance)
    for warning in result.warnings:
        output.warn(f"{name}: {warning}")
    for problem in result.invalid:
        suffix = f" ({problem['email']})" if problem["email"] else ""
        sys.stderr.write(f"{name}:{problem['line']}: {problem['reason']}{suffix}\n")
    if json_out:
        output.emit_json(
            {"created": result.created, "updated": result.updated, "invalid": result.invalid}
        )
    else:
        output.info(
            f"{name}: {result.created} created, {result.updated} updated, "
            f"{len(result.invalid)} invalid"
        )
    if result.invalid:
        raise typer.Exit(1)


def _show_row(contact: dict[str, Any]) -> dict[str, Any]:
    name = f"{contact['first_name']} {contact['last_name']}".strip()
    return {**contact, "name": name, "suppressed": "yes" if contact["suppressed"] else "",
            "company": contact["company_name"], "stage": contact["lifecycle_stage"],
            "owner": contact["owner_email"]}


@default(app)
@app.command("list")
def list_contacts(
    json_out: JsonOpt = False,
    stage: Annotated[str | None, typer.Option("--stage", help="Only this lifecycle stage.")] = None,
    search: Annotated[
        str | None, typer.Option("--search", help="Text found in the email, name or company.")
    ] = None,
) -> None:
    """List contacts, by email.

    \b
    Examples:
      seqctl contacts
      seqctl contacts list --stage lead --search acme
    """
    rows = contacts.list_contacts(db(), stage=stage, search=search)
    if json_out:
        output.emit_json([contacts.public(row) for row in rows])
    else:
        output.table(
            [_show_row(row) for row in rows],
            LIST_COLUMNS,
            fold=["owner", "stage", "company", "name"],
            empty="no contacts: seqctl contacts import FILE",
        )


@app.command("show")
def show(email: EmailArg, json_out: JsonOpt = False) -> None:
    """Show one contact, custom fields included.

    \b
    Example:
      seqctl contacts show ava@acme.test
    """
    contact = contacts.get_contact(db(), email)
    if json_out:
        output.emit_json(contacts.public(contact))
        return
    _print(contact)


def _print(contact: dict[str, Any]) -> None:
    for key in contacts.CONTACT_FIELDS:
        if key == "custom_fields":
            continue
        value = contact[key]
        if key == "suppressed":
            value = "yes" if value else "no"
        elif key == "owner_email" and not value:
            value = "(default user)"
        output.line(f"{key}: {'' if value is None else value}")
    if contact["custom_fields"]:
        output.line("custom_fields:")
        for key, value in contact["custom_fields"].items():
            output.line(f"  {key}: {value}")


@app.command("set")
def set_(
    email: EmailArg,
    field: Annotated[
        str,
        typer.Argument(
            help="A known field (first_name, owner_email, timezone, ...) or any custom field name."
        ),
    ],
    value: Annotated[str, typer.Argument(help="New value; '' clears it.")],
) -> None:
    """Set one field of a contact, validated like import (email, owner, timezone).

    \b
    Examples:
      seqctl contacts set ava@acme.test timezone America/Chicago
      seqctl contacts set ava@acme.test plan_tier ''
    """
    contact = contacts.set_field(db(), email, field, value)
    name = contacts.column_name(field)
    stored = contact[name] if name in contact else contact["custom_fields"].get(name)
    output.info(f"{contact['email']}: {name} = {'' if stored is None else stored}")


@app.command("set-stage")
def set_stage(email: EmailArg, stage: Annotated[str, typer.Argument(help="The new lifecycle stage (e.g. opportunity, customer).")]) -> None:
    """Change a contact's lifecycle stage; sequences with exit_on_stage_change are exited.

    \b
    Example:
      seqctl contacts set-stage ava@acme.test opportunity
    """
    contact = contacts.set_stage(db(), email, stage)
    exited = len(contact["exited_enrollments"])
    output.info(
        f"{contact['email']}: lifecycle_stage = {contact['lifecycle_stage']}"
        + (
            f" ({exited} enrollment{'s' if exited != 1 else ''} exited: stage_changed)"
            if exited
            else ""
        )
    )


@app.command("delete")
def delete(email: EmailArg, json_out: JsonOpt = False) -> None:
    """Erase a contact for a data-protection request: the contact, its enrollments, tasks,
    stored messages and the personal data in its events. Only a hashed suppression entry is
    kept, so the address is never emailed again (importing it later keeps it suppressed).

    \b
    Example:
      seqctl contacts delete ava@acme.test
    """
    from seqctl import clock
    from seqctl.engine import erasure

    result = erasure.erase_contact(db(), email, clock.now())
    if json_out:
        output.emit_json(result)
        return
    output.info(f"erased {result['email']}: {output.plural(result['enrollments'], 'enrollment')}"
                f", {output.plural(result['tasks'], 'task')}, "
                f"{output.plural(result['messages'], 'stored message')}; a hashed suppression "
                "keeps the address from being emailed again")
