"""`seqctl preview` and `seqctl spam-score`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from seqctl import clock, output
from seqctl.commands._common import JsonOpt, SequenceArg, db, install_key
from seqctl.errors import SeqctlError


def register(root: typer.Typer) -> None:
    root.command("preview")(preview)
    root.command("spam-score")(spam_score)


def preview(
    sequence: SequenceArg,
    step: Annotated[int, typer.Option("--step", min=1, help="1-based step position.")],
    contact: Annotated[str, typer.Option("--contact", help="Contact email.")],
    variant: Annotated[str | None, typer.Option("--variant", help="a or b")] = None,
    raw: Annotated[bool, typer.Option(
        "--raw", help="Print the message byte for byte as the inbox receives it (MIME, "
                      "quoted-printable).")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Show what step N would send to CONTACT now: the headers, the variant and the decoded
    text (--raw: the exact bytes; --json: its parts and headers). The spam-risk score goes
    to stderr.

    \b
    Examples:
      seqctl preview cold-saas-intro --step 1 --contact ava@acme.test
      seqctl preview cold-saas-intro --step 2 --contact ava@acme.test --variant b --raw
    """
    from seqctl.engine import previews, spam
    from seqctl.output import missing_field_lines

    if variant is not None and variant.lower() not in ("a", "b"):
        raise typer.BadParameter("a or b", param_hint="--variant")
    composed, about = previews.preview(db(), sequence, step, contact, clock.now(),
                                       variant.upper() if variant else None, key=install_key())
    built = composed.built
    report = spam.score_email(built.subject, built.text, first_touch=not composed.is_reply)
    if json_out:
        output.emit_json({
            "subject": built.subject, "text": built.text, "html": built.html, "to": built.to,
            "cc": built.cc, "bcc": built.bcc, "headers": built.headers,
            "variant": about["variant"], "spam": report.to_json(),
            "missing_fields": composed.missing_fields, "held_fields": composed.held_fields,
        })
        return
    for line in missing_field_lines(contact, composed.missing_fields, composed.held_fields):
        output.warn(line)
    if raw:
        sys.stdout.buffer.write(built.raw)
        sys.stdout.buffer.flush()
    else:
        shown = ("variant " + about["variant"] if about["has_variant_b"]
                 else "one version (no variant_b)")
        output.line(f"# step {step} of {sequence} for {contact}, {shown}"
                    + (", a reply in the thread" if composed.is_reply else ""))
        for name in ("From", "To", "Cc", "Subject", "In-Reply-To", "List-Unsubscribe"):
            if built.headers.get(name):
                output.line(f"{name}: {built.headers[name]}")
        output.line()
        output.line(built.text.rstrip("\n"))
    output.info(f"spam-risk score {report.score} ({report.band})"
                + "".join(f"\n  +{r.points} {r.rule}: {r.detail} — {r.fix}" for r in report.reasons))


def spam_score(
    subject: Annotated[str | None, typer.Option("--subject", help="The subject line.")] = None,
    body: Annotated[str | None, typer.Option("--body", help="The body text.")] = None,
    body_file: Annotated[Path | None, typer.Option(
        "--body-file", help="Read the body from a file ('-' for standard input).")] = None,
    rewrite: Annotated[bool, typer.Option(
        "--rewrite", help="Print a rewritten subject and body that score under 20 (or as low "
        "as the fixes get), with the changes.")] = False,
    model: Annotated[str | None, typer.Option(
        "--model", help="With --rewrite: ask this `llm` model first (needs seqctl[ai]); its "
        "rewrite is kept only when it scores lower.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Score an email's spam risk: 0-100 (lower is better), green < 30, amber 30-59,
    red >= 60, with the reasons and how to fix each.

    --rewrite applies deterministic fixes until the score is under 20 or no fix applies
    (fold an ALL-CAPS subject, drop extra !, swap spam phrases for plain words, remove money
    patterns, thin out links, ...). Merge variables and URLs are never edited. With --json:
    {"score_before", "score", "band", "subject", "body", "changes": [{"rule", "before",
    "after"}], "reasons"}.

    \b
    Examples:
      seqctl spam-score --subject 'Quick question' --body-file draft.txt
      echo 'FREE $$$' | seqctl spam-score --body-file - --json
    """
    from seqctl.engine import spam

    if body is not None and body_file is not None:
        raise typer.BadParameter("give --body or --body-file, not both", param_hint="--body")
    if model is not None and not rewrite:
        raise typer.BadParameter("--model goes with --rewrite", param_hint="--model")
    if body_file is not None:
        if str(body_file) == "-":
            body = sys.stdin.read()
        else:
            try:
                body = body_file.read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                raise SeqctlError(f"cannot read {body_file}: {exc.strerror}") from None
    if body is None and subject is None:
        raise typer.BadParameter("give --subject and/or --body/--body-file", param_hint="--body")
    if rewrite:
        _rewrite(subject, body or "", model, json_out)
        return
    report = spam.score_email(subject, body or "")
    if json_out:
        document = report.to_json()
        output.emit_json(document)
        return
    output.line_with_word(f"{report.score}/100 ", report.band)
    for reason in report.reasons:
        output.line(f"  +{reason.points:<3} {reason.rule}: {reason.detail}")
        output.line(f"        fix: {reason.fix}")


def _rewrite(subject: str | None, body: str, model_name: str | None, json_out: bool) -> None:
    from seqctl.engine import draft

    model = None
    if model_name is not None:
        from seqctl.providers import language_model

        model = language_model.load_model(model_name)
    result = draft.rewrite(subject, body, model=model)
    for note in result.notes:
        output.info(note)
    if json_out:
        output.emit_json(result.to_json())
        return
    sys.stdout.write(f"Subject: {result.subject}\n\n{result.body.rstrip()}\n")
    output.info(f"spam-risk score {result.score_before} -> {result.report.score} "
                f"({result.report.band}), {len(result.changes)} change(s)")
    for change in result.changes:
        before = change.before.replace("\n", " ")
        after = change.after.replace("\n", " ") or "(removed)"
        output.info(f"  {change.rule}: {before[:80]!r} -> {after[:80]!r}")
