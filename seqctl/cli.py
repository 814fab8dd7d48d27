"""The root command. Each command group lives in its own module under seqctl/commands/.

Command modules are imported only when their command runs (or its `--help` is asked for):
`seqctl --version`, `seqctl --help` and cron's `seqctl tick` load nothing they do not use.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from seqctl import config, output
from seqctl.errors import SeqctlError

# Every command: NAME -> (module, its summary in `seqctl --help`). A module with a Typer `app`
# is a group named NAME; a module with `register(root)` adds top-level commands, NAME among them.
# The summary is the first sentence of the command's help (tests/test_cli_lazy.py checks it), so
# the root help can list every command without importing one.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("seqctl.commands.init",
             "Create the data folder and database (safe to run again)."),
    "path": ("seqctl.commands.init", "Print where seqctl keeps its database and tokens."),
    "backup": ("seqctl.commands.init",
               "Copy the database to TARGET while seqctl keeps running (SQLite VACUUM INTO): "
               "a consistent snapshot even during a tick."),
    "enroll": ("seqctl.commands.enroll", "Enroll contacts in SEQUENCE."),
    "pause": ("seqctl.commands.enroll",
              "Pause EMAIL in SEQUENCE: nothing fires or sends until `seqctl resume`."),
    "resume": ("seqctl.commands.enroll",
               "Resume a paused or failed enrollment (SEQUENCE EMAIL), or with --failed every "
               "failed one (of --inbox ADDRESS, after reconnecting it)."),
    "unenroll": ("seqctl.commands.enroll",
                 "Take EMAIL out of SEQUENCE for good (exit reason `manual`)."),
    "tick": ("seqctl.commands.tick",
             "Advance everything that is due: sync replies, fire steps, send emails."),
    "sync": ("seqctl.commands.tick",
             "Read new incoming mail now and apply replies, bounces, unsubscribes and bookings."),
    "schedule": ("seqctl.commands.tick",
                 "When each step fires for CONTACT: actual times for steps done, planned for "
                 "the rest (as if enrolled now when the contact is not enrolled)."),
    "cron": ("seqctl.commands.tick",
             "Print crontab lines that run seqctl, and when they run next; --install adds "
             "them to your crontab."),
    "preview": ("seqctl.commands.preview",
                "Show what step N would send to CONTACT now: the headers, the variant and the "
                "decoded text (--raw: the exact bytes; --json: its parts and headers)."),
    "spam-score": ("seqctl.commands.preview",
                   "Score an email's spam risk: 0-100 (lower is better), green < 30, amber "
                   "30-59, red >= 60, with the reasons and how to fix each."),
    "stats": ("seqctl.commands.stats",
              "Sent, opens, clicks, replies, unsubscribes, bounces and meetings per step and "
              "A/B variant, with rates over sent emails."),
    "compare": ("seqctl.commands.stats",
                "Rank two sequences by reply rate (or `--by positive`: positive-reply rate), "
                "with a two-proportion z-test of the difference (\"not enough data yet\" "
                "below 30 sent emails each)."),
    "replies": ("seqctl.commands.replies",
                "Every reply, newest first, with what it says: positive, not_interested, "
                "referral, not_now, wrong_person, left_company or unknown, the referred "
                "address and the not-now date."),
    "report": ("seqctl.commands.report",
               "Write one self-contained HTML page of how your sequences are doing."),
    "doctor": ("seqctl.commands.doctor",
               "Will your mail land? Check each sending inbox's DNS records and settings the "
               "way receivers judge them."),
    "serve": ("seqctl.commands.serve",
              "Serve one-click unsubscribe (RFC 8058), the open pixel and click redirects for "
              "the links in sent emails."),
    "demo": ("seqctl.commands.demo",
             "Run the whole loop on a maildir inbox in a temporary folder: apply the example "
             "sequence, import the example contacts, enroll them, tick through simulated "
             "days, drop a reply, tick again, and show the exits, tasks and stats."),
    "users": ("seqctl.commands.users", "The reps who own inboxes and contacts."),
    "inbox": ("seqctl.commands.inbox",
              "The mailboxes seqctl sends from and watches for replies."),
    "settings": ("seqctl.commands.settings",
                 "Account-wide settings (caps, tracking URL, footer address, sync schedule)."),
    "sequence": ("seqctl.commands.sequence",
                 "Sequences: the steps (emails, calls, LinkedIn, tasks, waits) and their "
                 "schedule."),
    "contacts": ("seqctl.commands.contacts",
                 "The people you reach out to: import them from CSV, look them up, edit them."),
    "deals": ("seqctl.commands.deals", "Deals and the contacts on them."),
    "enrollments": ("seqctl.commands.enrollments",
                    "Who is in which sequence, and where they are in it."),
    "tasks": ("seqctl.commands.tasks",
              "Calls, LinkedIn touches and other tasks that steps create for you."),
    "log": ("seqctl.commands.log",
            "Log a reply, meeting or bounce you learned about elsewhere (a call, another "
            "mailbox): the exits fire at once, exactly as when sync reads the message."),
    "suppress": ("seqctl.commands.suppress", "Addresses seqctl never emails."),
    "templates": ("seqctl.commands.templates",
                  "Saved email templates (subject + body) that steps can use with "
                  "`template: NAME`."),
    "outbox": ("seqctl.commands.outbox",
               "Emails waiting to go out, in flight, failed, or of unknown fate."),
    "export": ("seqctl.commands.export",
               "Export events or enrollments as CSV (a header row, one row per item)."),
}


def load_command(name: str) -> click.Command | None:
    """The click command NAME, importing its module (None for an unknown name)."""
    entry = COMMANDS.get(name)
    if entry is None:
        return None
    module = importlib.import_module(entry[0])
    if hasattr(module, "register"):
        holder = typer.Typer(rich_markup_mode=None)
        holder.callback()(lambda: None)      # a group even when the module adds one command
        module.register(holder)
        command = typer.main.get_command(holder).commands.get(name)  # type: ignore[attr-defined]
    else:
        command = typer.main.get_command(module.app)
    if command is None:
        return None
    command.name = name
    command.short_help = entry[1]
    return command


class LazyGroup(TyperGroup):
    """The root group: lists every command from COMMANDS, imports one only when it is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if command is None:
            command = load_command(cmd_name)
            if command is not None:
                self.commands[cmd_name] = command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [(name, click.Command(name, short_help=summary).get_short_help_str(limit))
                for name, (_, summary) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    name="seqctl",
    cls=LazyGroup,
    help="Personal sales outreach cadences: sequences of emails, calls and tasks, sent from "
    "your own mailbox, that stop when people answer.\n\n"
    "\b\nExamples:\n"
    "  seqctl demo                          the whole loop in a temporary folder\n"
    "  seqctl sequence apply examples/cold-saas-intro.yaml\n"
    "  seqctl enroll cold-saas-intro --csv contacts.csv\n"
    "  seqctl tick                          what cron runs every minute\n",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,          # plain click help: Rich would import every command
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from seqctl import __version__

        sys.stdout.write(f"seqctl {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def root(
    version: Annotated[bool, typer.Option(
        "--version", help="Print the version and exit.", is_eager=True,
        callback=_version)] = False,
    db: Annotated[
        Path | None,
        typer.Option("--db", help="Database file (default: $SEQCTL_DB or $SEQCTL_HOME/seqctl.db).",
                     envvar=None),
    ] = None,
) -> None:
    """seqctl: outreach sequences from your own mailbox."""
    if db is not None:
        config.set_db_path(db)


def usage_error_line(exc: click.UsageError) -> str:
    """`error: MESSAGE (see 'seqctl tick --help')`: click's four lines folded into one."""
    message = " ".join(exc.format_message().split())
    head, mean, rest = message.partition(" Did you mean ")
    if mean and rest.count(" Did you mean "):       # typer and click both suggest
        message = head + mean + rest.split(" Did you mean ")[0]
    path = exc.ctx.command_path if exc.ctx is not None else "seqctl"
    return f"error: {message} (see '{path} --help')"


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become one line on stderr and exit 1, never a traceback."""
    output.show_engine_notices()
    command = typer.main.get_command(app)
    result: Any = None
    try:
        result = command.main(args=argv, prog_name="seqctl", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        sys.stderr.write("aborted\n")
        sys.exit(130)
    except click.exceptions.NoArgsIsHelpError as exc:    # `seqctl`, `seqctl export`: the help
        sys.stdout.write(exc.format_message() + "\n")
        sys.exit(exc.exit_code)
    except click.UsageError as exc:     # one line, with where to look: exit 2
        sys.stderr.write(usage_error_line(exc) + "\n")
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        sys.stderr.write(f"error: {' '.join(exc.format_message().split())}\n")
        sys.exit(exc.exit_code)
    except SeqctlError as exc:
        output.error(f"error: {exc.message}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # a bug: still one line, with a way to see more
        if os.environ.get("SEQCTL_DEBUG"):
            raise
        from seqctl.errors import environment_problem

        problem = environment_problem(exc, config.db_path())
        if problem is not None:
            output.error(f"error: {problem}")
            sys.exit(1)
        output.error(f"error: internal error: {type(exc).__name__}: {exc} "
                     "(set SEQCTL_DEBUG=1 to see the traceback, and please report it)")
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
