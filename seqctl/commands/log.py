"""`seqctl log reply|meeting|bounce|unsubscribe|list`: outcomes noticed outside the inbox."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from seqctl import clock, output
from seqctl.commands._common import (
    EmailArg,
    JsonOpt,
    db,
    default,
    display_zone,
    group,
    instant_option,
)
from seqctl.engine import outcomes, replies
from seqctl.engine.intent import INTENTS, ReplyIntent

app = group(
    "Log a reply, meeting or bounce you learned about elsewhere (a call, another "
    "mailbox): the exits fire at once, exactly as when sync reads the message. With no "
    "command, lists recent outcomes.",
    examples=["seqctl log reply ava@acme.test", "seqctl log --limit 5"],
)

AtOpt = Annotated[str | None, typer.Option(
    "--at", help="When it happened (ISO 8601; default now).")]
SequenceOpt = Annotated[str | None, typer.Option(
    "--sequence", help="Credit the event to the contact's enrollment in this sequence (stats); "
                       "default: the latest one. Exits are the same either way.")]



def _log(event: str, email: str, at: str | None, sequence: str | None, json_out: bool,
         hard: bool = True, intent: ReplyIntent | None = None) -> None:
    when = instant_option(at, "--at") if at else clock.now()
    result = outcomes.log_outcome(db(), email, event, when, sequence=sequence, hard=hard,
                                  intent=intent)
    if json_out:
        output.emit_json(result)
        return
    exited = result["exited"]
    what = result["event"] + (f" ({result['intent']})" if result.get("intent", "unknown")
                              != "unknown" else "")
    output.info(f"{result['email']}: {what} logged"
                + (f"; {len(exited)} enrollment{'s' if len(exited) != 1 else ''} exited"
                   if exited else "; no enrollment exited"))


@app.command("reply")
def reply(
    email: EmailArg,
    at: AtOpt = None,
    sequence: SequenceOpt = None,
    intent: Annotated[str | None, typer.Option(
        "--intent", help=f"What they said: {' | '.join(INTENTS)} (acts as a synced reply's "
                         "intent does).")] = None,
    referral: Annotated[str | None, typer.Option(
        "--referral", help="With --intent referral (or wrong_person, left_company): the "
                           "address they gave; imported as a contact, with a task.")] = None,
    not_before: Annotated[str | None, typer.Option(
        "--not-before", help="With --intent not_now: the day to write again (YYYY-MM-DD); "
                             "sequences with pause_on_not_now pause until then.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """EMAIL replied: exits `reply_received` in sequences with exit_on_reply (and colleagues
    where exit_on_company_reply). Example: `seqctl log reply dana@acme.com --intent not_now
    --not-before 2026-07-01` (a call: "try me in Q3")."""
    day = None
    if not_before is not None:
        try:
            day = date.fromisoformat(not_before)
        except ValueError:
            raise typer.BadParameter(f"'{not_before}' is not a date (YYYY-MM-DD)",
                                     param_hint="--not-before") from None
    found = replies.manual_intent(intent, referral, day)
    _log("reply", email, at, sequence, json_out, intent=found)


@app.command("meeting")
def meeting(email: EmailArg, at: AtOpt = None, sequence: SequenceOpt = None,
            json_out: JsonOpt = False) -> None:
    """EMAIL booked a meeting: exits `booking` in sequences with exit_on_booking.

    \b
    Example:
      seqctl log meeting ava@acme.test --sequence cold-saas-intro
    """
    _log("meeting", email, at, sequence, json_out)


@app.command("bounce")
def bounce(
    email: EmailArg,
    at: AtOpt = None,
    soft: Annotated[bool, typer.Option(
        "--soft", help="A temporary failure (mailbox full ...): recorded only.")] = False,
    sequence: SequenceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """EMAIL bounced: a hard bounce suppresses the address and exits every enrollment
    `bounced`; a soft one is recorded only.

    \b
    Examples:
      seqctl log bounce ava@acme.test
      seqctl log bounce ava@acme.test --soft --at 2027-01-13T15:00:00Z
    """
    _log("bounce", email, at, sequence, json_out, hard=not soft)


@app.command("unsubscribe")
def unsubscribe(email: EmailArg, at: AtOpt = None, sequence: SequenceOpt = None,
                json_out: JsonOpt = False) -> None:
    """EMAIL asked to be left alone: suppresses the address and exits every enrollment
    `unsubscribed`.

    \b
    Example:
      seqctl log unsubscribe ava@acme.test
    """
    _log("unsubscribe", email, at, sequence, json_out)


@default(app)
@app.command("list")
def list_outcomes(
    email: Annotated[str | None, typer.Option("--email", help="Only this contact.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Most rows, newest first.")] = 50,
    json_out: JsonOpt = False,
) -> None:
    """Recent outcomes (replies, meetings, bounces, unsubscribes, auto-replies), newest first,
    whether sync read them or they were logged by hand.

    \b
    Examples:
      seqctl log
      seqctl log list --email ava@acme.test --limit 10
    """
    rows = outcomes.list_outcomes(db(), email=email, limit=limit)
    if json_out:
        output.emit_json(rows)
    else:
        zone, now = display_zone(db()), clock.now()
        for row in rows:
            row["when"] = output.local_time(row["at"], zone, now)
        output.table(rows, ["when", "event", "intent", "email", "sequence", "via", "subject"],
                     empty="no outcomes yet")
