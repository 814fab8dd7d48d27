"""What every command module shares: the --json option, the database, group defaults."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from seqctl import config
from seqctl import db as database
from seqctl.errors import SeqctlError
from seqctl.files import install_secret

if TYPE_CHECKING:
    from sqlite_utils import Database

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
EmailArg = Annotated[str, typer.Argument(help="The contact's email address.", show_default=False)]
SequenceArg = Annotated[str, typer.Argument(help="The sequence's name.", show_default=False)]
InboxArg = Annotated[str, typer.Argument(help="The inbox's email address.", show_default=False)]


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


class DefaultGroup(TyperGroup):
    """A group that runs its default command (see `default`) when no command is named, with
    the options given: `seqctl tasks --status all` is `seqctl tasks list --status all`."""

    default_callback: Callable[..., Any] | None = None

    def _default_name(self) -> str | None:
        for name, command in self.commands.items():
            if getattr(command.callback, "__wrapped__", None) is self.default_callback:
                return name
        return None

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        name = self._default_name() if self.default_callback is not None else None
        asks_help = any(arg in ctx.help_option_names for arg in args[:1])
        if name is not None and not asks_help and (not args or args[0].startswith("-")):
            args = [name, *args]
        return super().parse_args(ctx, args)


def with_examples(help_text: str, examples: list[str]) -> str:
    """Help text followed by an Examples block that click prints as it is (`\\b`)."""
    head = "Example:" if len(examples) == 1 else "Examples:"
    return help_text + f"\n\n\b\n{head}\n" + "".join(f"  {line}\n" for line in examples)


def subgroup(help_text: str, examples: list[str]) -> typer.Typer:
    """A group of commands inside a group (`inbox add ...`), with no default command."""
    return typer.Typer(help=with_examples(help_text, examples), no_args_is_help=True,
                       rich_markup_mode=None)


def group(help_text: str, examples: list[str]) -> typer.Typer:
    """A command group; the command registered with `@default(app)` runs when none is named
    (groups default to `list`, so `seqctl users` means `seqctl users list`)."""
    holder: dict[str, Any] = {}

    class _Group(DefaultGroup):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.default_callback = getattr(holder.get("app"), "_seqctl_default", None)
            self.no_args_is_help = self.default_callback is None

    app = typer.Typer(help=with_examples(help_text, examples), cls=_Group, rich_markup_mode=None,
                      context_settings={"help_option_names": ["-h", "--help"]})
    holder["app"] = app

    @app.callback()
    def _group() -> None:       # a group even with one command (`enrollments list`)
        pass

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


def display_zone(database: Database, sequence_zone: str | None = None) -> str | None:
    """The zone text output shows times in (SPEC 21): the sequence's, else the
    `display_timezone` setting, else None (the machine's zone)."""
    from seqctl import settings

    return sequence_zone or settings.get(database, "display_timezone") or None
