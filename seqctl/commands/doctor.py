"""`seqctl doctor`: will my mail land? DNS and settings checks per sending inbox."""

from __future__ import annotations

from typing import Annotated

import typer

from seqctl import config, output
from seqctl.commands._common import JsonOpt, db
from seqctl.engine import doctor as workflow


def register(root: typer.Typer) -> None:
    root.command("doctor")(doctor)


def doctor(
    address: Annotated[str | None, typer.Argument(
        help="Check this address instead of every inbox (an inbox's, or any other).")] = None,
    dkim_selector: Annotated[str | None, typer.Option(
        "--dkim-selector", metavar="S",
        help="Look for the DKIM key at S._domainkey.DOMAIN instead of the provider's "
             "selectors (google; selector1/selector2).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Will your mail land? Check each sending inbox's DNS records and settings the way
    receivers judge them. The checks: MX, SPF (one record, at most 10 lookups, not +all, covers your
    provider), DKIM, DMARC (or the organizational domain's), one-click unsubscribe, the
    physical address, the bounce rate of the last 100 sends, and the caps against the
    provider's limits. Each check is pass, warn, fail or unknown (DNS did not
    answer), with a fix. Exits 1 when any check fails. `SEQCTL_DNS_SERVER=HOST[:PORT]` picks
    the DNS server.

    Example: `seqctl doctor` or `seqctl doctor you@acme.com --dkim-selector s1 --json`
    """
    server_text = config.dns_server()
    server = workflow.parse_server(server_text) if server_text else None
    result = workflow.diagnose(db(), workflow.Lookup(server), address, dkim_selector)
    if json_out:
        output.emit_json(result)
    else:
        _print(result)
    if not result["ok"]:
        raise typer.Exit(1)


MARKS = {"pass": "ok  ", "warn": "warn", "fail": "FAIL", "unknown": "??  "}


def _shown(text: str) -> str:
    """Details quote DNS records, which anyone can publish: control characters (terminal
    escapes, carriage returns) are shown as \\xNN, never written as they are."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                   for ch in text)


def _print(result: dict) -> None:
    for index, report in enumerate(result["inboxes"]):
        if index:
            output.line()
        provider = {"gmail": "Gmail", "outlook": "Exchange Online"}.get(report["provider"] or "",
                                                                        "provider unknown")
        output.line(f"{report['address']} ({provider})")
        for check in report["checks"]:
            output.line(f"  {MARKS[check['status']]}  {check['name']:<16} "
                        f"{_shown(check['detail'])}")
            if check["fix"] and check["status"] != "pass":
                output.line(f"{'':24}fix: {_shown(check['fix'])}")
    counts = {status: sum(check["status"] == status for report in result["inboxes"]
                          for check in report["checks"]) for status in MARKS}
    output.line()
    output.line(f"{counts['fail']} failed, {counts['warn']} warnings, {counts['unknown']} "
                f"unknown, {counts['pass']} passed")
