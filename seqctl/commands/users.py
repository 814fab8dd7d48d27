"""`seqctl users add|list`."""

from __future__ import annotations

from typing import Annotated

import typer

from seqctl import output
from seqctl.commands._common import JsonOpt, db, default, group
from seqctl.engine import accounts

app = group(
    "The reps who own inboxes and contacts.",
    examples=["seqctl users add riley@acme.test --first-name Riley", "seqctl users"],
)


@default(app)
@app.command("list")
def list_users(json_out: JsonOpt = False) -> None:
    """List users; the default one owns contacts that name no owner.

    \b
    Examples:
      seqctl users
      seqctl users list --json
    """
    users = accounts.list_users(db())
    if json_out:
        output.emit_json(users)
    else:
        output.table(users, ["email", "first_name", "last_name", "default"],
                     empty="no users yet: seqctl users add EMAIL --first-name NAME")


@app.command("add")
def add(
    email: Annotated[str, typer.Argument(help="The rep's email address.")],
    first_name: Annotated[str, typer.Option("--first-name", help="Used as {{owner_first_name}}.")],
    last_name: Annotated[str, typer.Option("--last-name", help="Used as {{owner_last_name}}.")] = "",
    make_default: Annotated[bool, typer.Option("--default", help="Make this the default user.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Add a user (or update its name). The first user becomes the default.

    \b
    Example:
      seqctl users add riley@acme.test --first-name Riley --last-name Parker
    """
    user = accounts.add_user(db(), email, first_name, last_name, make_default)
    if json_out:
        output.emit_json(user)
    else:
        output.info(f"user {user['email']} ready" + (" (default)" if user["default"] else ""))
