"""What every command module shares: the --json option, the database, group defaults."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from seqctl import config
from seqctl import db as database
from seqctl.errors import SeqctlError
from seqctl.files import install_secret

if TYPE_CHECKING:
    from sqlite_utils import Database

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def db() -> Database:
    return database.get()


def install_key() -> bytes:
    """The install secret that signs Message-IDs and links (engine workflows take it as a
    parameter; only the shell knows where it lives)."""
    return install_secret(config.home())


@contextmanager
def input_file(file: str | Path) -> Iterator[tuple[IO[bytes], str]]:
    """(binary stream, name for messages) of FILE, or of standard input for `-`; streamed, never
    read whole into memory."""
    if str(file) == "-":
        yield sys.stdin.buffer, "<stdin>"
        return
    try:
        handle = open(Path(file).expanduser(), "rb")   # noqa: SIM115 (closed below)
    except OSError as exc:
        raise SeqctlError(f"cannot read {file}: {exc.strerror or exc}") from None
    with handle:
        yield handle, str(file)


def group(help_text: str) -> typer.Typer:
    """A command group; the command registered with `@default(app)` runs when none is named
    (groups default to `list`, so `seqctl users` means `seqctl users list`)."""
    app = typer.Typer(help=help_text, invoke_without_command=True, no_args_is_help=False,
                      rich_markup_mode="markdown")

    @app.callback()
    def _default(ctx: typer.Context, json_out: JsonOpt = False) -> None:
        if ctx.invoked_subcommand is not None:
            return
        target = getattr(app, "_seqctl_default", None)
        if target is None:
            typer.echo(ctx.get_help())
            raise typer.Exit(0)
        ctx.invoke(target, json_out=json_out)

    _default.__doc__ = help_text
    return app


def default(app: typer.Typer) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        app._seqctl_default = fn  # type: ignore[attr-defined]
        return fn

    return mark


def instant_option(value: str | None, option: str):
    """An ISO 8601 option value as an aware UTC datetime; a malformed one is a usage error."""
    from seqctl import clock
    from seqctl.errors import SeqctlError

    if value is None:
        return None
    try:
        return clock.parse_instant(value, what=option)
    except SeqctlError as exc:
        raise typer.BadParameter(str(exc).split(": ", 1)[-1], param_hint=option) from None
