"""`seqctl templates save|list|show|delete`."""

from __future__ import annotations

from typing import Annotated

import typer

from seqctl import clock, output
from seqctl.commands._common import JsonOpt, db, default, group
from seqctl.engine import templates

app = group("Saved email templates (subject + body) that steps can use with `template: NAME`.")

UserOpt = Annotated[str | None, typer.Option(
    "--user", help="Owner of the template (default: the default user).")]


@app.command("save")
def save(
    name: str,
    sequence: Annotated[str, typer.Option("--sequence", help="Copy from this sequence...")],
    step: Annotated[int, typer.Option("--step", min=1, help="...and this email step.")],
    user: UserOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Save an email step's subject and body as template NAME (replacing one of that name)."""
    saved = templates.save_from_step(db(), name, sequence, step, clock.now(), user=user)
    if json_out:
        output.emit_json(saved)
    else:
        output.info(f"template '{name}' saved")


@default(app)
@app.command("list")
def list_templates(user: UserOpt = None, json_out: JsonOpt = False) -> None:
    """List a user's templates."""
    rows = templates.list_templates(db(), user)
    if json_out:
        output.emit_json(rows)
    else:
        output.table(rows, ["name", "subject", "created_at"], empty="no templates yet")


@app.command("show")
def show(name: str, user: UserOpt = None, json_out: JsonOpt = False) -> None:
    """Show a template's subject and body."""
    template = templates.get_template(db(), name, user)
    if json_out:
        output.emit_json({key: template[key]
                          for key in ("name", "subject", "body", "user", "created_at")})
        return
    output.line(f"Subject: {template['subject'] or '(none: replies in the thread)'}\n")
    output.line(template["body"])


@app.command("delete")
def delete(
    name: str,
    user: UserOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Delete even if steps use it.")] = False,
) -> None:
    """Delete a template. Refuses while a live step uses it, unless --force."""
    templates.delete_template(db(), name, user=user, force=force)
    output.info(f"template '{name}' deleted")
