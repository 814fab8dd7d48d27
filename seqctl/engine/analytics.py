"""The numbers behind `seqctl stats`, `seqctl compare` and `seqctl export`, read from the events
table, and the pure pieces they rest on: rates, the significance test, scanner detection.

How things are counted (SPEC 13):
- `sent`: emails sent (one `sent` event per outbox row).
- `opens` / `clicks`: emails opened / clicked at least once (unique per message), leaving out
  what a machine did: opens and clicks less than `SCANNER_SECONDS` after the email was sent,
  and bursts where every tracked link of an email is clicked within `BURST_SECONDS` (security
  gateways follow every link on delivery). Those events are kept, flagged `{"scanner": true}`.
- `replies`, `unsubscribes`, `bounces` (hard only), `meetings`: once per enrollment and kind, on
  the step and variant of the email the first such event was attributed to (`events.record`
  attributes an outcome to the last email sent before it). Auto-replies are never replies.
- Reply intent (SPEC 18): an enrollment's replies count once, on the step of its first reply,
  with the intent of its latest reply (a "not now" that later says "yes" is a positive
  reply); replies without an intent (logged by hand without `--intent`, or older) are
  `unknown`. `positive_replies` / `positive_reply_rate` are the positive ones.
- Rates are fractions of sent emails rounded to 4 decimals (0.1234 = 12.34 %), 0 when nothing
  was sent. Totals are the sums of the step rows.
- Variants: an enrollment keeps its variant through the whole sequence (a B contact's
  follow-ups reply in B's thread), so once any step of a sequence has `variant_b`, every step
  is split by the enrollment's variant and B's whole funnel can be read. A sequence with no
  `variant_b` anywhere has only "A" rows.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from seqctl.errors import SeqctlError

if TYPE_CHECKING:
    from sqlite_utils import Database

SCANNER_SECONDS = 10      # an open or click this soon after sending is a machine's
BURST_SECONDS = 5         # every link clicked within this many seconds is a machine's
MIN_SAMPLE = 30           # sent emails per arm before a significance verdict
ALPHA = 0.05

COUNTERS = ("sent", "opens", "clicks", "replies", "positive_replies", "unsubscribes", "bounces",
            "meetings")
INTENTS = ("positive", "not_interested", "referral", "not_now", "wrong_person", "left_company",
           "unknown")  # the order `seqctl stats` shows them in (engine.intent.INTENTS)
OUTCOMES = {"reply": "replies", "unsubscribe": "unsubscribes", "bounce": "bounces",
            "meeting": "meetings"}


# --- pure pieces ---------------------------------------------------------------------------


def rate(part: int, whole: int) -> float:
    """`part / whole` rounded to 4 decimals; 0 when `whole` is 0."""
    return round(part / whole, 4) if whole else 0.0


def with_rates(counts: dict[str, int]) -> dict[str, Any]:
    sent = counts.get("sent", 0)
    return {
        **counts,
        "open_rate": rate(counts.get("opens", 0), sent),
        "click_rate": rate(counts.get("clicks", 0), sent),
        "reply_rate": rate(counts.get("replies", 0), sent),
        "positive_reply_rate": rate(counts.get("positive_replies", 0), sent),
    }


def is_early(sent_at: datetime | None, at: datetime) -> bool:
    """An open or click this soon after sending (or stamped before it) is a scanner's."""
    if sent_at is None:
        return False
    return (at - sent_at).total_seconds() < SCANNER_SECONDS


def scanner_clicks(
    sent_at: datetime | None, clicks: Sequence[tuple[datetime, str]], link_count: int
) -> set[int]:
    """Indexes of the clicks on one email that look like a link scanner's: early ones, and
    every click of a burst in which all `link_count` links (two or more) were followed within
    `BURST_SECONDS`. `clicks` are (time, normalised URL)."""
    flagged = {index for index, (at, _) in enumerate(clicks) if is_early(sent_at, at)}
    if link_count < 2:
        return flagged
    order = sorted(range(len(clicks)), key=lambda index: clicks[index][0])
    for position, first in enumerate(order):
        start = clicks[first][0]
        window = [index for index in order[position:]
                  if (clicks[index][0] - start).total_seconds() <= BURST_SECONDS]
        if len({clicks[index][1] for index in window}) >= link_count:
            flagged.update(window)
    return flagged


@dataclass(frozen=True)
class ZTest:
    z: float
    p_value: float


def two_proportion_z_test(successes_a: int, n_a: int, successes_b: int, n_b: int) -> ZTest:
    """Pooled two-proportion z-test, two-sided. With no data or no variation (every trial a
    success, or none) there is no evidence of a difference: z = 0, p = 1."""
    if n_a <= 0 or n_b <= 0:
        return ZTest(0.0, 1.0)
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return ZTest(0.0, 1.0)
    z = (successes_a / n_a - successes_b / n_b) / se
    return ZTest(z, math.erfc(abs(z) / math.sqrt(2)))


@dataclass(frozen=True)
class Verdict:
    p_value: float | None
    significant: bool
    enough_data: bool
    text: str


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.1f}%"


def compare_reply_rates(label_a: str, replies_a: int, sent_a: int,
                        label_b: str, replies_b: int, sent_b: int) -> Verdict:
    """Is the difference in reply rate between A and B real? Below `MIN_SAMPLE` sent emails
    on either side the answer is "not enough data yet" (the p-value is still shown)."""
    p_value = (two_proportion_z_test(replies_a, sent_a, replies_b, sent_b).p_value
               if sent_a and sent_b else None)
    rate_a, rate_b = rate(replies_a, sent_a), rate(replies_b, sent_b)
    if min(sent_a, sent_b) < MIN_SAMPLE:
        so_far = f"; p = {p_value:.4f} so far" if p_value is not None else ""
        return Verdict(p_value, False, False,
                       f"not enough data yet: {MIN_SAMPLE} sent emails needed on each side "
                       f"({label_a}: {sent_a}, {label_b}: {sent_b}{so_far})")
    assert p_value is not None
    rates = f"{_percent(rate_a)} vs {_percent(rate_b)}, p = {p_value:.4f}"
    if p_value < ALPHA and rate_a != rate_b:
        winner = label_a if rate_a > rate_b else label_b
        return Verdict(p_value, True, True,
                       f"{winner} has the higher reply rate ({rates}; significant at the "
                       f"{ALPHA:.0%} level)")
    return Verdict(p_value, False, True, f"no significant difference yet ({rates})")


# --- reading the events table --------------------------------------------------------------


def find_sequence(db: Database, name: str) -> int:
    row = db.execute("SELECT id FROM sequences WHERE name = ?", [name]).fetchone()
    if row is None:
        raise SeqctlError(f"no sequence named '{name}': see `seqctl sequence list`")
    return row[0]


@dataclass(frozen=True)
class _Step:
    position: int | None
    has_b: bool


def _email_steps(db: Database, sequence_id: int) -> dict[int, _Step]:
    """The email steps, and every step that sent emails once (its history stays when it was
    turned into a task or removed)."""
    rows = db.execute(
        "SELECT id, position, variant_b_json, removed FROM steps "
        "WHERE sequence_id = ? AND (step_type = 'email' OR id IN (SELECT step_id FROM events "
        "WHERE sequence_id = ? AND kind = 'sent'))", [sequence_id, sequence_id]).fetchall()
    return {r[0]: _Step(None if r[3] else r[1], bool(r[2])) for r in rows}


def latest_intents(db: Database, sequence_id: int) -> dict[int, str]:
    """Each enrollment's latest reply intent in the sequence."""
    return {
        enrollment_id: intent or "unknown"
        for enrollment_id, intent in db.execute(
            "SELECT e.enrollment_id, json_extract(e.detail_json, '$.intent') FROM events e JOIN ("
            " SELECT MAX(id) AS id FROM events WHERE sequence_id = ? AND kind = 'reply'"
            " AND enrollment_id IS NOT NULL GROUP BY enrollment_id) l ON l.id = e.id",
            [sequence_id])
    }


def _counts_by_step(db: Database, sequence_id: int, steps: dict[int, _Step],
                    by_intent: dict[str, int] | None = None,
                    ) -> dict[tuple[int, str], dict[str, int]]:
    split = any(step.has_b for step in steps.values())

    def key(step_id: int | None, variant: str | None) -> tuple[int, str] | None:
        step = steps.get(step_id) if step_id is not None else None
        if step is None:
            return None
        return step_id, ((variant or "A").upper() if split else "A")

    counts: dict[tuple[int, str], dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(COUNTERS, 0))
    # Counted in SQL, per step and stored variant, so a few rows come back whatever the
    # history: distinct emails sent, and opened or clicked by a person. `tracking` flags a
    # scanner's open or click (`{"scanner": true}`) when it records it, early ones included,
    # so the flag alone tells; `instr` spares the JSON parse of the unflagged majority.
    for step_id, variant, number in db.execute(
            "SELECT step_id, variant, COUNT(DISTINCT outbox_id) FROM events "
            "WHERE sequence_id = ? AND kind = 'sent' GROUP BY step_id, variant", [sequence_id]):
        k = key(step_id, variant)
        if k is not None:
            counts[k]["sent"] += number
    for kind, counter in (("open", "opens"), ("click", "clicks")):
        for step_id, variant, number in db.execute(
                "SELECT step_id, variant, COUNT(DISTINCT outbox_id) FROM events "
                "WHERE sequence_id = ? AND kind = ? AND (instr(detail_json, 'scanner') = 0 "
                "OR NOT COALESCE(CASE WHEN json_valid(detail_json) "
                "THEN json_extract(detail_json, '$.scanner') END, 0)) "
                "GROUP BY step_id, variant", [sequence_id, kind]):
            k = key(step_id, variant)
            if k is not None:
                counts[k][counter] += number
    # the first event of each outcome kind per enrollment
    kinds = ", ".join(f"'{kind}'" for kind in OUTCOMES)
    intents = latest_intents(db, sequence_id)
    for kind, step_id, variant, enrollment_id in db.execute(
            "SELECT e.kind, e.step_id, e.variant, e.enrollment_id FROM events e JOIN ("
            f" SELECT MIN(id) AS id FROM events WHERE sequence_id = ? AND kind IN ({kinds})"
            " AND enrollment_id IS NOT NULL GROUP BY enrollment_id, kind) f ON f.id = e.id",
            [sequence_id]):
        k = key(step_id, variant)
        if k is None:
            continue
        counts[k][OUTCOMES[kind]] += 1
        if kind == "reply":
            intent = intents.get(enrollment_id, "unknown")
            counts[k]["positive_replies"] += intent == "positive"
            if by_intent is not None:
                by_intent[intent] = by_intent.get(intent, 0) + 1
    return counts


def _step_rows(steps: dict[int, _Step],
               counts: dict[tuple[int, str], dict[str, int]]) -> list[dict[str, Any]]:
    def order(step_id: int) -> tuple[bool, int, int]:
        position = steps[step_id].position
        return position is None, position or 0, step_id

    rows: list[dict[str, Any]] = []
    for step_id in sorted(steps, key=order):
        variants = {v for (s, v) in counts if s == step_id}
        if steps[step_id].has_b or (variants and any(step.has_b for step in steps.values())):
            variants |= {"A", "B"}
        for variant in sorted(variants):
            numbers = counts.get((step_id, variant)) or dict.fromkeys(COUNTERS, 0)
            rows.append({"step": steps[step_id].position, "variant": variant,
                         **with_rates(numbers)})
    return rows


def sequence_stats(db: Database, name: str) -> dict[str, Any]:
    """The `seqctl stats --json` document (SPEC 16), plus `ab_tests`: each step with two
    variants, compared on reply rate."""
    sequence_id = find_sequence(db, name)
    steps = _email_steps(db, sequence_id)
    by_intent: dict[str, int] = {}
    rows = _step_rows(steps, _counts_by_step(db, sequence_id, steps, by_intent))
    totals = {counter: sum(row[counter] for row in rows) for counter in COUNTERS}
    # an outcome no email can be credited with (`seqctl log reply` before the first email)
    # still counts once per enrollment in the totals
    for kind, counter in OUTCOMES.items():
        totals[counter] = max(totals[counter], db.execute(
            "SELECT COUNT(DISTINCT enrollment_id) FROM events WHERE sequence_id = ? AND kind = ?",
            [sequence_id, kind]).fetchone()[0])
    per_contact = _per_contact(db, sequence_id)
    enrolled = db.execute("SELECT COUNT(*) FROM enrollments WHERE sequence_id = ?",
                          [sequence_id]).fetchone()[0]
    auto_replies = db.execute(
        "SELECT COUNT(DISTINCT enrollment_id) FROM events WHERE sequence_id = ? "
        "AND kind = 'auto_reply'", [sequence_id]).fetchone()[0]
    ab_tests = []
    by_step: dict[Any, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        by_step[row["step"]][row["variant"]] = row
    for step, arms in by_step.items():
        if set(arms) != {"A", "B"}:
            continue
        a, b = arms["A"], arms["B"]
        verdict = compare_reply_rates("A", a["replies"], a["sent"], "B", b["replies"], b["sent"])
        ab_tests.append({"step": step, "metric": "reply_rate", "p_value": verdict.p_value,
                         "significant": verdict.significant, "verdict": verdict.text})
    task_rows = _task_steps(db, sequence_id)
    return {
        "sequence": name,
        "totals": {**with_rates(totals), "enrolled": enrolled, "auto_replies": auto_replies,
                   "replies_by_intent": {i: by_intent.get(i, 0) for i in INTENTS},
                   **per_contact,
                   "tasks_created": sum(row["created"] for row in task_rows),
                   "tasks_done": sum(row["done"] for row in task_rows)},
        "steps": rows,
        "tasks": task_rows,
        "ab_tests": ab_tests,
    }


def _per_contact(db: Database, sequence_id: int) -> dict[str, Any]:
    """Reply rate per contact: of the contacts reached (emailed, or who replied anyway), the
    share who replied, so a contact who got four emails counts once."""
    reached, replied = db.execute(
        "SELECT COUNT(DISTINCT contact_id), COUNT(DISTINCT CASE WHEN kind = 'reply' "
        "THEN contact_id END) FROM events WHERE sequence_id = ? AND kind IN ('sent', 'reply')",
        [sequence_id]).fetchone()
    return {"contacts_reached": reached, "contacts_replied": replied,
            "contact_reply_rate": rate(replied, reached)}


def _task_steps(db: Database, sequence_id: int) -> list[dict[str, Any]]:
    """Per call, LinkedIn or task step (and steps that created tasks once): tasks created,
    done, skipped and still open."""
    rows = []
    for position, step_type, title, created, done, skipped in db.execute(
            "SELECT st.position, st.step_type, st.title, COUNT(t.id), "
            "COALESCE(SUM(t.status = 'done'), 0), COALESCE(SUM(t.status = 'skipped'), 0) "
            "FROM steps st LEFT JOIN tasks t ON t.step_id = st.id "
            "WHERE st.sequence_id = ? AND (st.step_type IN ('call', 'linkedin', 'task') "
            "OR t.id IS NOT NULL) GROUP BY st.id "
            "ORDER BY st.position IS NULL, st.position, st.id", [sequence_id]):
        if position is None and not created:
            continue
        rows.append({"step": position, "step_type": step_type, "title": title,
                     "created": created, "done": done, "skipped": skipped,
                     "open": created - done - skipped})
    return rows


COMPARE_BY = {"reply": ("replies", "reply_rate", "reply rate"),
              "positive": ("positive_replies", "positive_reply_rate", "positive-reply rate")}


def compare(db: Database, name_a: str, name_b: str, by: str = "reply") -> dict[str, Any]:
    """The `seqctl compare --json` document: both sequences ranked by reply rate (`by`
    "reply") or positive-reply rate ("positive"), and whether the difference is
    significant."""
    if by not in COMPARE_BY:
        raise SeqctlError(f"--by: '{by}' is not one of {', '.join(COMPARE_BY)}")
    count, rate_key, label = COMPARE_BY[by]
    ranking = []
    for name in (name_a, name_b):
        totals = sequence_stats(db, name)["totals"]
        ranking.append({"sequence": name, "sent": totals["sent"], "replies": totals["replies"],
                        "reply_rate": totals["reply_rate"],
                        "positive_replies": totals["positive_replies"],
                        "positive_reply_rate": totals["positive_reply_rate"]})
    ranking.sort(key=lambda r: (-r[rate_key], -r["sent"]))
    first, second = ranking
    verdict = compare_reply_rates(first["sequence"], first[count], first["sent"],
                                  second["sequence"], second[count], second["sent"])
    text = verdict.text.replace("reply rate", label) if by != "reply" else verdict.text
    return {"by": by, "ranking": ranking, "p_value": verdict.p_value,
            "significant": verdict.significant, "enough_data": verdict.enough_data,
            "verdict": text}


# --- CSV exports ---------------------------------------------------------------------------

EVENT_COLUMNS = ["id", "at", "kind", "sequence", "step", "variant", "email", "enrollment_id",
                 "outbox_id", "message_id", "detail"]
ENROLLMENT_COLUMNS = ["id", "sequence", "email", "first_name", "last_name", "company_name",
                      "status", "exit_reason", "variant", "step", "enrolled_at", "next_run_at",
                      "exited_at", "inbox", "failure_message"]


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as text: a string starting with = + - @ (or a tab
    or carriage return) would run as a formula (CSV injection), so it gets a leading `'`.
    Numbers are left alone."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def export_events(db: Database, sequence: str | None = None) -> Iterator[list[Any]]:
    """Every event (of one sequence), oldest first, as rows of EVENT_COLUMNS (cells made
    spreadsheet-safe)."""
    sql = ("SELECT e.id, e.at, e.kind, s.name, st.position, e.variant, c.email, "
           "e.enrollment_id, e.outbox_id, o.message_id, e.detail_json FROM events e "
           "LEFT JOIN sequences s ON s.id = e.sequence_id LEFT JOIN steps st ON st.id = e.step_id "
           "LEFT JOIN contacts c ON c.id = e.contact_id LEFT JOIN outbox o ON o.id = e.outbox_id")
    params: list[Any] = []
    if sequence is not None:
        sql += " WHERE e.sequence_id = ?"
        params.append(find_sequence(db, sequence))
    for row in db.execute(sql + " ORDER BY e.at, e.id", params):
        yield [spreadsheet_safe(cell) for cell in row]


def export_enrollments(db: Database, sequence: str | None = None) -> Iterator[list[Any]]:
    """Every enrollment (of one sequence) as rows of ENROLLMENT_COLUMNS (cells made
    spreadsheet-safe)."""
    sql = ("SELECT e.id, s.name, c.email, c.first_name, c.last_name, c.company_name, e.status, "
           "e.exit_reason, e.variant, st.position, e.enrolled_at, e.next_run_at, e.exited_at, "
           "i.address, e.failure_message FROM enrollments e "
           "JOIN sequences s ON s.id = e.sequence_id JOIN contacts c ON c.id = e.contact_id "
           "LEFT JOIN steps st ON st.id = e.step_id AND e.status != 'exited' "
           "LEFT JOIN inboxes i ON i.id = e.inbox_id")
    params: list[Any] = []
    if sequence is not None:
        sql += " WHERE e.sequence_id = ?"
        params.append(find_sequence(db, sequence))
    for row in db.execute(sql + " ORDER BY e.id", params):
        yield [spreadsheet_safe(cell) for cell in row]


def tracked(db: Database, name: str) -> tuple[bool, bool]:
    """(track_opens, track_clicks) of the sequence named `name`."""
    row = db.execute("SELECT track_opens, track_clicks FROM sequences WHERE name = ?",
                     [name]).fetchone()
    return (bool(row[0]), bool(row[1])) if row else (False, False)
