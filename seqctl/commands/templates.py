"""`seqctl templates save|list|show|delete`."""

from __future__ import annotations

from typing import Annotated

import typer

from seqctl import clock, output
from seqctl.commands._common import JsonOpt, db, default, group
from seqctl.engine import templates

app = group(
    "Saved email templates (subject + body) that steps can use with `template: NAME`.",
    examples=["seqctl templates save intro-v1 --sequence cold-saas-intro --step 1", "seqctl templates"],
)

UserOpt = Annotated[str | None, typer.Option(
    "--user", help="Owner of the template (default: the default user).")]


@app.command("save")
def save(
    name: Annotated[str, typer.Argument(help="The template's name.")],
    sequence: Annotated[str, typer.Option("--sequence", help="Copy from this sequence...")],
    step: Annotated[int, typer.Option("--step", min=1, help="...and this email step.")],
    user: UserOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Save an email step's subject and body as template NAME (replacing one of that name).

    \b
    Example:
      seqctl templates save intro-v1 --sequence cold-saas-intro --step 1
    """
    saved = templates.save_from_step(db(), name, sequence, step, clock.now(), user=user)
    if json_out:
        output.emit_json(saved)
    else:
        output.info(f"template '{name}' saved")


@default(app)
@app.command("list")
def list_templates(user: UserOpt = None, json_out: JsonOpt = False) -> None:
    """List a user's templates.

    \b
    Examples:
      seqctl templates
      seqctl templates list --user riley@acme.test
    """
    rows = templates.list_templates(db(), user)
    if json_out:
        output.emit_json(rows)
    else:
        output.table(rows, ["name", "subject", "created_at"], empty="no templates yet")


@app.command("show")
def show(name: Annotated[str, typer.Argument(help="The template's name.")], user: UserOpt = None, json_out: JsonOpt = False) -> None:
    """Show a template's subject and body.

    \b
    Example:
      seqctl templates show intro-v1
    """
    template = templates.get_template(db(), name, user)
    if json_out:
        output.emit_json({key: template[key]
                          for key in ("name", "subject", "body", "user", "created_at")})
        return
    output.line(f"Subject: {template['subject'] or '(none: replies in the thread)'}\n")
    output.line(template["body"])


@app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="The template's name.")],
    user: UserOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Delete even if steps use it.")] = False,
) -> None:
    """Delete a template. Refuses while a live step uses it, unless --force.

    \b
    Example:
      seqctl templates delete intro-v1
    """
    templates.delete_template(db(), name, user=user, force=force)
    output.info(f"template '{name}' deleted")
