"""Render and build 10,000 complete MIME messages with seqctl, and compare with mailmerge.

    .venv/bin/pip install mailmerge      # the comparison only
    .venv/bin/python benchmarks/bench_render.py [--rows 10000]

seqctl: read the rows from a CSV file, merge each (subject and body templates, Jinja2 sandbox),
then build the full message: text + HTML parts, every header, unsubscribe footer and
List-Unsubscribe. mailmerge: `mailmerge --dry-run --no-limit --output-format raw` on the same
CSV with an equivalent text/markdown template (which mailmerge turns into text + HTML), output
discarded; its time includes process start-up (well under a second).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from seqctl.engine.message import OutgoingEmail, Unsubscribe, build_message
from seqctl.engine.render import merge_context, render

SUBJECT = "Quick question, {{ first_name }}"
BODY = textwrap.dedent(
    """\
    Hi {{ first_name | default("there") }},

    Saw that {{ company_name }} just opened a new office in {{ city }} - congrats on the growth.

    Teams around your size usually hit a wall with onboarding once they pass 50 people, and
    that's the problem we fix at Acme. Would a 15-minute call next week be worth it?

    Here's my calendar: https://cal.acme.com/sam

    Best,
    {{ owner_first_name }}
    """
)
FIRST_NAMES = ["Jane", "José", "Priya", "Zoë", "Daniel", "Mei", "Ahmed", "Ingrid", "", "Olu"]
COMPANIES = ["Initech", "Globex", "Umbrella", "Hooli", "Müller GmbH", "Stark Industries"]
CITIES = ["Austin", "Berlin", "São Paulo", "Osaka", "Lagos", "Toronto"]


def write_rows(path: Path, count: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "first_name", "last_name", "company_name", "city"])
        for index in range(count):
            writer.writerow(
                [
                    f"contact{index}@example{index % 97}.com",
                    FIRST_NAMES[index % len(FIRST_NAMES)],
                    f"Lastname{index}",
                    COMPANIES[index % len(COMPANIES)],
                    CITIES[index % len(CITIES)],
                ]
            )


def run_seqctl(csv_path: Path) -> tuple[int, float, float]:
    """(messages, seconds for render + build, seconds for build alone)."""
    owner = {"email": "sam@acme.com", "first_name": "Sam", "last_name": "Carter"}
    unsubscribe = Unsubscribe(
        mailto="unsubscribe@acme.com",
        url="https://t.acme.com/u/",
        physical_address="Acme Inc, 1 Main St, Springfield",
    )
    start_date = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    with csv_path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))

    started = time.perf_counter()
    emails = []
    for index, row in enumerate(rows):
        contact = {
            "email": row["email"],
            "first_name": row["first_name"],
            "last_name": row["last_name"],
            "company_name": row["company_name"],
            "owner_email": owner["email"],
            "custom_fields": {"city": row["city"]},
        }
        context = merge_context(contact, owner)
        emails.append(
            OutgoingEmail(
                from_address=owner["email"],
                from_name="Sam Carter",
                to_address=row["email"],
                to_name=f"{row['first_name']} {row['last_name']}".strip(),
                subject=render(SUBJECT, context),
                text=render(BODY, context),
                cc=[],
                bcc=[],
                message_id=f"<seqctl.{index}.1@acme.com>",
                date=start_date + timedelta(seconds=index),
                unsubscribe=Unsubscribe(
                    unsubscribe.mailto, f"{unsubscribe.url}{index}", unsubscribe.physical_address
                ),
            )
        )
    rendered = time.perf_counter()
    built = [build_message(outgoing) for outgoing in emails]
    finished = time.perf_counter()
    assert len(built) == len(rows)
    return len(built), finished - started, finished - rendered


MAILMERGE_TEMPLATE = (
    textwrap.dedent(
        """\
    TO: {{email}}
    FROM: Sam Carter <sam@acme.com>
    SUBJECT: Quick question, {{first_name}}
    CONTENT-TYPE: text/markdown

    """
    )
    + BODY.replace("{{ owner_first_name }}", "Sam")
    + ("\nUnsubscribe: https://t.acme.com/u/{{email}}\nAcme Inc, 1 Main St, Springfield\n")
)
MAILMERGE_CONFIG = """\
[smtp_server]
host = localhost
port = 25
ratelimit = 0
"""


def run_mailmerge(folder: Path, csv_path: Path, count: int, content_type: str) -> float | None:
    """Seconds for mailmerge to render `count` messages, or None when it is not installed."""
    executable = Path(sys.executable).with_name("mailmerge")
    command = str(executable) if executable.exists() else shutil.which("mailmerge")
    if command is None:
        return None
    template = folder / "mailmerge_template.txt"
    config = folder / "mailmerge_server.conf"
    template.write_text(MAILMERGE_TEMPLATE.replace("text/markdown", content_type),
                        encoding="utf-8")
    config.write_text(MAILMERGE_CONFIG, encoding="utf-8")
    started = time.perf_counter()
    subprocess.run(
        [
            command,
            "--dry-run",
            "--no-limit",
            "--output-format",
            "raw",
            "--template",
            str(template),
            "--database",
            str(csv_path),
            "--config",
            str(config),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        csv_path = folder / "contacts.csv"
        write_rows(csv_path, args.rows)

        count, total, build_only = run_seqctl(csv_path)
        print(
            f"seqctl     {count} messages: render + build {total:.2f} s "
            f"({count / total:,.0f} messages/s); build_message alone "
            f"{count / build_only:,.0f} messages/s"
        )
        for content_type, what in (("text/markdown", "text + HTML"), ("text/plain", "text only")):
            seconds = run_mailmerge(folder, csv_path, args.rows, content_type)
            if seconds is None:
                print("mailmerge  not installed: .venv/bin/pip install mailmerge")
                break
            print(
                f"mailmerge  {args.rows} messages ({what}): {seconds:.2f} s "
                f"({args.rows / seconds:,.0f} messages/s, --dry-run --no-limit)"
            )


if __name__ == "__main__":
    main()
