"""Contacts: reading a contacts CSV, importing (upserting) it, and looking contacts up.

Reading is pure (`read_csv`: bytes in, rows and per-row problems out); `import_contacts`
writes the good rows in one transaction.

How a CSV is read:
- Encoding: UTF-8 with or without a BOM; otherwise Windows-1252, then Latin-1 (which decodes
  anything). UTF-16 with a BOM (Excel's "Unicode text") is read too.
- Delimiter: `,` `;` or tab, sniffed from the first few KB; the one whose header has an `email`
  column wins.
- Header names become lower_snake_case ("Job Title " -> `job_title`). Known columns and the
  aliases accepted for them are in `COLUMN_ALIASES`; every other column is a custom field.
- Line numbers are physical lines of the file (the header is line 1), so a row after a quoted
  multi-line value gets the line an editor shows.
- Rows whose cells are all empty are skipped silently.
- The same email twice in one file: rows are applied in file order, so the later row's
  non-empty values win.
- Upsert: an existing contact (same email, case-insensitive) gets the row's non-empty values;
  an empty cell never erases a stored value. Custom fields are merged.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import sqlite3
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from json.encoder import encode_basestring as _quote
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from seqctl import clock
from seqctl.db import transaction
from seqctl.engine.exits import on_stage_change
from seqctl.errors import SeqctlError

if TYPE_CHECKING:
    from sqlite_utils import Database

KNOWN_COLUMNS = (
    "email",
    "first_name",
    "last_name",
    "company_name",
    "owner_email",
    "lifecycle_stage",
    "timezone",
)

# Header names (already lower_snake_case) read as a known column. "owner" alone is not an
# alias: CRM exports put the owner's *name* there, which would fail every row.
COLUMN_ALIASES: dict[str, str] = {
    "e_mail": "email",
    "email_address": "email",
    "e_mail_address": "email",
    "emailaddress": "email",
    "mail": "email",
    "firstname": "first_name",
    "first": "first_name",
    "given_name": "first_name",
    "forename": "first_name",
    "lastname": "last_name",
    "last": "last_name",
    "surname": "last_name",
    "family_name": "last_name",
    "company": "company_name",
    "companyname": "company_name",
    "organization": "company_name",
    "organisation": "company_name",
    "account_name": "company_name",
    "owner_email_address": "owner_email",
    "contact_owner_email": "owner_email",
    "owneremail": "owner_email",
    "stage": "lifecycle_stage",
    "lifecycle": "lifecycle_stage",
    "lifecyclestage": "lifecycle_stage",
    "time_zone": "timezone",
    "tz": "timezone",
}

CONTACT_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "company_name",
    "owner_email",
    "lifecycle_stage",
    "timezone",
    "custom_fields",
    "suppressed",
)

DELIMITERS = (",", ";", "\t")
_SNIFF_BYTES = 16 * 1024
_CHUNK = 5000


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    invalid: list[dict] = field(default_factory=list)  # {"line", "email", "reason"}
    emails: list[str] = field(default_factory=list)  # good rows, normalised, file order
    warnings: list[str] = field(default_factory=list)


@dataclass
class ParsedCsv:
    rows: list[dict]
    invalid: list[dict]
    warnings: list[str]


# --- emails and timezones -----------------------------------------------------------------

# Ordinary addresses (ASCII dot-atom local part, ASCII host names, alphabetic TLD) are checked
# by this regex; anything else goes through email-validator, which is ~50x slower.
_ATEXT = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]"
_ORDINARY_EMAIL = re.compile(
    rf"{_ATEXT}+(?:\.{_ATEXT}+)*@(?:[a-z0-9](?:[a-z0-9-]{{0,61}}[a-z0-9])?\.)+[a-z]{{2,63}}",
    re.IGNORECASE,
)


# Reserved names email-validator rejects (`.test` is allowed: demos and tests use it).
_SPECIAL_USE_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion"})


def normalise_email(value: str) -> str:
    """The stored form of an address: stripped and lower-cased. ValueError when invalid."""
    text = value.strip()
    if _ORDINARY_EMAIL.fullmatch(text) and len(text) <= 254:
        at = text.index("@")
        lowered = text.lower()
        if (
            at <= 64
            and "--" not in text[at:]
            and lowered[lowered.rindex(".") + 1 :] not in _SPECIAL_USE_TLDS
        ):
            return lowered
    # email-validator loads only for the unusual addresses the regex above does not settle
    from email_validator import EmailNotValidError, validate_email

    try:
        result = validate_email(text, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return result.normalized.lower()


@lru_cache(maxsize=1)
def _timezones_by_lower_name() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()}


@lru_cache(maxsize=1024)
def canonical_timezone(name: str) -> str | None:
    """The IANA name for `name` (case-insensitive), or None when there is no such zone."""
    if not name or name.startswith(("/", ".")) or ".." in name:
        return None
    try:
        zoneinfo.ZoneInfo(name)
        return name
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return _timezones_by_lower_name().get(name.lower())


# --- reading ------------------------------------------------------------------------------


def normalise_header(name: str) -> str:
    """lower_snake_case: strip, lower, every run of non-alphanumerics becomes one `_`."""
    return re.sub(r"[\W_]+", "_", name.strip().lower()).strip("_")


def column_name(header: str) -> str:
    """The field a header cell maps to: a known column (or its alias) or a custom field name."""
    name = normalise_header(header)
    return COLUMN_ALIASES.get(name, name)


def _decode(data: bytes, filename: str) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise SeqctlError(f"{filename}: not valid UTF-16 text") from None
    if data.startswith(b"PK\x03\x04"):
        raise SeqctlError(
            f"{filename} is a spreadsheet or zip file, not CSV: save it as CSV (UTF-8) first"
        )
    if b"\x00" in data:
        raise SeqctlError(f"{filename} is not a CSV file (it contains binary data)")
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    sample = text[:_SNIFF_BYTES]
    controls = sum(1 for ch in sample if ch < " " and ch not in "\t\r\n" or "\x7f" <= ch <= "\x9f")
    if controls > max(2, len(sample) // 100):
        raise SeqctlError(f"{filename} is not a CSV file (it contains binary data)")
    return text


def _reader(text: str, delimiter: str):
    return csv.reader(
        io.StringIO(text, newline=""),
        delimiter=delimiter,
        quotechar='"',
        doublequote=True,
        strict=False,
    )


def _first_record(text: str, delimiter: str) -> list[str] | None:
    for record in _reader(text, delimiter):
        if any(cell.strip() for cell in record):
            return record
    return None


def _choose_delimiter(text: str) -> tuple[str, list[str]]:
    """The delimiter and header: the sniffed delimiter, else the header line's most frequent
    candidate; the first that yields an `email` column wins."""
    sample = text[:_SNIFF_BYTES]
    if len(text) > _SNIFF_BYTES and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    candidates: list[str] = []
    try:
        candidates.append(csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter)
    except csv.Error:
        pass
    header_line = next((ln for ln in sample.splitlines() if ln.strip()), "")
    candidates += sorted(DELIMITERS, key=lambda d: -header_line.count(d))
    first = None
    for delimiter in dict.fromkeys(candidates):
        header = _first_record(text, delimiter)
        if header is None:
            break
        first = first or header
        if "email" in (column_name(h) for h in header):
            return delimiter, header
    found = ", ".join(h.strip() for h in first or [] if h.strip())
    raise SeqctlError(
        "no email column in the header"
        + (f" (found: {found[:200]})" if found else "")
        + "; the first line must name the columns, one of them `email`"
    )


def _cells(indexes: list[int]) -> Callable[[list[str]], tuple[str, ...]]:
    if not indexes:
        return lambda record: ()
    if len(indexes) == 1:
        index = indexes[0]
        return lambda record: (record[index],)
    return itemgetter(*indexes)


def _parse(data: bytes, filename: str) -> ParsedCsv:
    text = _decode(data, filename)
    if not text.strip():
        raise SeqctlError(f"{filename} is empty: expected a header line with an `email` column")
    try:
        delimiter, header = _choose_delimiter(text)
    except SeqctlError as exc:
        raise SeqctlError(f"{filename}: {exc.message}") from None

    warnings: list[str] = []
    names: list[str | None] = []
    for position, raw in enumerate(header, start=1):
        name = column_name(raw) if raw.strip() else None
        if raw != raw.strip() and raw.strip():
            warnings.append(f"column '{raw}' has spaces around its name; read as '{name}'")
        if name is not None and name in names:
            warnings.append(
                f"column '{raw.strip()}' (column {position}) repeats '{name}'; "
                "the first one is used"
            )
            name = None
        names.append(name)
    email_index = names.index("email")
    known = [
        (index, name)
        for index, name in enumerate(names)
        if name in KNOWN_COLUMNS and name != "email"
    ]
    custom = [
        (index, name)
        for index, name in enumerate(names)
        if name is not None and name not in KNOWN_COLUMNS
    ]
    known_names = [name for _, name in known]
    custom_names = [name for _, name in custom]
    # itemgetter of a list index set (always returning a tuple) keeps the row loop tight.
    known_cells = _cells([index for index, _ in known])
    custom_cells = _cells([index for index, _ in custom])
    timezone_index = names.index("timezone") if "timezone" in names else None
    owner_index = names.index("owner_email") if "owner_email" in names else None
    width = len(names)
    nameless = [index for index, name in enumerate(names) if name is None]
    nameless_used = False

    rows: list[dict] = []
    invalid: list[dict] = []
    reader = _reader(text, delimiter)
    last_line = 0
    seen_header = False
    try:
        for record in reader:
            line = last_line + 1
            last_line = reader.line_num
            if not any(record):
                continue
            if not seen_header:
                seen_header = any(cell.strip() for cell in record)
                continue
            if len(record) != width:
                if len(record) < width:
                    record += [""] * (width - len(record))
                elif any(cell.strip() for cell in record[width:]):
                    invalid.append(
                        {
                            "line": line,
                            "email": record[email_index].strip(),
                            "reason": f"{len(record)} values but the header names {width} columns "
                            "(an unquoted delimiter in a value?)",
                        }
                    )
                    continue
            email_raw = record[email_index].strip()
            if not email_raw:
                invalid.append({"line": line, "email": "", "reason": "missing email"})
                continue
            try:
                email = normalise_email(email_raw)
            except ValueError as exc:
                invalid.append(
                    {"line": line, "email": email_raw, "reason": f"invalid email address: {exc}"}
                )
                continue
            if timezone_index is not None and (zone := record[timezone_index].strip()):
                canonical = canonical_timezone(zone)
                if canonical is None:
                    invalid.append(
                        {
                            "line": line,
                            "email": email_raw,
                            "reason": f"unknown timezone '{zone}' (use an IANA name such as "
                            "America/New_York)",
                        }
                    )
                    continue
                record[timezone_index] = canonical
            if owner_index is not None:
                record[owner_index] = record[owner_index].lower()
            row: dict[str, Any] = {
                name: cell.strip()
                for name, cell in zip(known_names, known_cells(record), strict=False)
            }
            row["line"] = line
            row["email"] = email
            row["custom_fields"] = {
                name: cell.strip()
                for name, cell in zip(custom_names, custom_cells(record), strict=False)
            }
            if nameless and not nameless_used:
                nameless_used = any(record[i].strip() for i in nameless)
            rows.append(row)
    except csv.Error as exc:
        raise SeqctlError(f"{filename}:{reader.line_num}: cannot read CSV: {exc}") from None
    if nameless_used:
        warnings.append("a column without a name in the header has values; they were ignored")
    return ParsedCsv(rows, invalid, warnings)


def read_csv(data: bytes, *, filename: str) -> tuple[list[dict], list[dict]]:
    """Parse a contacts CSV. Returns (good rows, invalid rows).

    A good row is {"line", "email" (normalised), the known columns present in the header,
    "custom_fields": {...}}; an invalid one is {"line", "email", "reason"}. Whole-file problems
    (binary data, empty file, no email column) raise SeqctlError. The owner is not checked here
    (that needs the database): `import_contacts` does it.
    """
    parsed = _parse(data, filename)
    return parsed.rows, parsed.invalid


# --- importing ----------------------------------------------------------------------------

_UPSERT = """
INSERT INTO contacts (email, first_name, last_name, company_name, owner_email, lifecycle_stage,
                      timezone, custom_fields_json, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(email) DO UPDATE SET
    first_name = CASE WHEN excluded.first_name != '' THEN excluded.first_name ELSE first_name END,
    last_name = CASE WHEN excluded.last_name != '' THEN excluded.last_name ELSE last_name END,
    company_name = CASE WHEN excluded.company_name != '' THEN excluded.company_name
                        ELSE company_name END,
    owner_email = COALESCE(excluded.owner_email, owner_email),
    lifecycle_stage = CASE WHEN excluded.lifecycle_stage != '' THEN excluded.lifecycle_stage
                           ELSE lifecycle_stage END,
    timezone = COALESCE(excluded.timezone, timezone),
    custom_fields_json = json_patch(json_patch(excluded.custom_fields_json, custom_fields_json), ?),
    updated_at = excluded.updated_at
"""


@lru_cache(maxsize=4096)
def _json_key(name: str) -> str:
    return _quote(name) + ":"


def _to_json(fields: dict[str, str]) -> str:
    """`json.dumps` of a flat str -> str dict, several times faster (it runs for every row)."""
    return "{" + ",".join([_json_key(k) + _quote(v) for k, v in fields.items()]) + "}"


def _merge_duplicates(rows: list[dict]) -> dict[str, dict]:
    """One row per email, in order of first appearance; later non-empty values win."""
    merged: dict[str, dict] = {}
    copied: set[str] = set()
    for row in rows:
        email = row["email"]
        before = merged.get(email)
        if before is None:
            merged[email] = row
            continue
        if email not in copied:
            before = merged[email] = {**before, "custom_fields": dict(before["custom_fields"])}
            copied.add(email)
        for name in KNOWN_COLUMNS:
            if row.get(name):
                before[name] = row[name]
        for name, value in row["custom_fields"].items():
            if value or name not in before["custom_fields"]:
                before["custom_fields"][name] = value
    return merged


def _check_owners(db: Database, rows: list[dict], invalid: list[dict]) -> list[dict]:
    users = {email for (email,) in db.execute("SELECT email FROM users").fetchall()}
    good = []
    for row in rows:
        owner = row.get("owner_email")
        if owner and owner not in users:
            invalid.append(
                {
                    "line": row["line"],
                    "email": row["email"],
                    "reason": f"unknown owner {owner} (add the rep with `seqctl users add "
                    f"{owner} --first-name NAME`, or leave owner_email empty)",
                }
            )
        else:
            good.append(row)
    return good


def import_contacts(
    db: Database, data: bytes, *, filename: str, progress: Callable[[int, int], None] | None = None
) -> ImportResult:
    """Read a contacts CSV and upsert its good rows in one transaction.

    Bad rows are reported in `invalid` and skipped; a database error writes nothing.
    A contact whose lifecycle stage changes exits the sequences that exit on stage change.
    `progress(done, total)` is called after each batch.
    """
    parsed = _parse(data, filename)
    invalid = parsed.invalid
    rows = _check_owners(db, parsed.rows, invalid)
    invalid.sort(key=lambda problem: problem["line"])
    merged = _merge_duplicates(rows)
    now = clock.now()
    stamp = clock.iso(now)
    params = []
    for email, row in merged.items():
        custom = row["custom_fields"]
        full = _to_json(custom)
        params.append(
            (
                email,
                row.get("first_name", ""),
                row.get("last_name", ""),
                row.get("company_name", ""),
                row.get("owner_email") or None,
                row.get("lifecycle_stage", ""),
                row.get("timezone") or None,
                full,
                stamp,
                stamp,
                full if all(custom.values()) else _to_json({k: v for k, v in custom.items() if v}),
            )
        )
    try:
        with transaction(db):
            before = db.execute("SELECT COUNT(*) FROM contacts").fetchone()[0]
            enrolled = _enrolled_stages(db)
            for start in range(0, len(params), _CHUNK):
                db.conn.executemany(_UPSERT, params[start : start + _CHUNK])
                if progress:
                    progress(min(start + _CHUNK, len(params)), len(params))
            after = db.execute("SELECT COUNT(*) FROM contacts").fetchone()[0]
            _exit_on_stage_change(db, merged, enrolled, now)
    except sqlite3.Error as exc:
        raise SeqctlError(f"import of {filename} failed, nothing was written: {exc}") from None
    created = after - before
    return ImportResult(
        created=created,
        updated=len(merged) - created,
        invalid=invalid,
        emails=list(merged),
        warnings=parsed.warnings,
    )


def _enrolled_stages(db: Database) -> dict[str, tuple[int, str]]:
    """email -> (contact id, stage) of contacts in a live enrollment (few, next to all contacts)."""
    rows = db.execute(
        "SELECT DISTINCT c.email, c.id, c.lifecycle_stage FROM enrollments e "
        "JOIN contacts c ON c.id = e.contact_id WHERE e.status IN ('active', 'paused', 'failed')"
    ).fetchall()
    return {email: (contact_id, stage) for email, contact_id, stage in rows}


def _exit_on_stage_change(
    db: Database, merged: dict[str, dict], enrolled: dict[str, tuple[int, str]], at: datetime
) -> None:
    for email, (contact_id, stage) in enrolled.items():
        row = merged.get(email)
        if row and row.get("lifecycle_stage") and row["lifecycle_stage"] != stage:
            on_stage_change(db, contact_id, at)


# --- lookups and edits --------------------------------------------------------------------

_SELECT = (
    "SELECT c.id, c.email, c.first_name, c.last_name, c.company_name, c.owner_email, "
    "c.lifecycle_stage, c.timezone, c.custom_fields_json, s.email IS NOT NULL "
    "FROM contacts c LEFT JOIN suppressions s ON s.email = c.email"
)


def _contact(row: Any) -> dict[str, Any]:
    return {
        "id": row[0],
        "email": row[1],
        "first_name": row[2],
        "last_name": row[3],
        "company_name": row[4],
        "owner_email": row[5],
        "lifecycle_stage": row[6],
        "timezone": row[7],
        "custom_fields": json.loads(row[8] or "{}"),
        "suppressed": bool(row[9]),
    }


def public(contact: dict[str, Any]) -> dict[str, Any]:
    """The `contacts show` JSON shape."""
    return {key: contact[key] for key in CONTACT_FIELDS}


def _lookup_key(email: str) -> str:
    try:
        return normalise_email(email)
    except ValueError:
        return email.strip().lower()


def contact_by_id(db: Database, contact_id: int) -> dict[str, Any] | None:
    row = db.execute(_SELECT + " WHERE c.id = ?", [contact_id]).fetchone()
    return _contact(row) if row else None


def contact_by_email(db: Database, email: str) -> dict[str, Any] | None:
    """The contact with this address (or with it as an alias), or None."""
    key = _lookup_key(email)
    row = db.execute(_SELECT + " WHERE c.email = ?", [key]).fetchone()
    if row is None:
        row = db.execute(
            _SELECT + " WHERE c.id = (SELECT contact_id FROM contact_aliases WHERE email = ?)",
            [key],
        ).fetchone()
    return _contact(row) if row else None


def get_contact(db: Database, email: str) -> dict[str, Any]:
    """Like `contact_by_email`, but a missing contact is a SeqctlError."""
    contact = contact_by_email(db, email)
    if contact is None:
        raise SeqctlError(
            f"no contact {email.strip()}: import it with `seqctl contacts import FILE`"
        )
    return contact


def ensure_contact(db: Database, email: str) -> int:
    """The id of the contact with this address, created bare when missing.
    SeqctlError when the address is invalid."""
    try:
        key = normalise_email(email)
    except ValueError as exc:
        raise SeqctlError(f"'{email.strip()}' is not a valid email address: {exc}") from None
    existing = contact_by_email(db, key)
    if existing:
        return existing["id"]
    stamp = clock.iso(clock.now())
    with transaction(db):
        db.execute(
            "INSERT INTO contacts (email, created_at, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(email) DO NOTHING",
            [key, stamp, stamp],
        )
        return db.execute("SELECT id FROM contacts WHERE email = ?", [key]).fetchone()[0]


def list_contacts(
    db: Database, *, stage: str | None = None, search: str | None = None
) -> list[dict[str, Any]]:
    """Contacts by email; `stage` matches exactly (case-insensitive), `search` is a substring
    of email, name or company."""
    sql, params = _SELECT + " WHERE 1", []
    if stage is not None:
        sql += " AND lower(c.lifecycle_stage) = lower(?)"
        params.append(stage.strip())
    if search:
        sql += (
            " AND (c.email LIKE ? OR c.first_name || ' ' || c.last_name LIKE ? "
            "OR c.company_name LIKE ?)"
        )
        params += [f"%{search.strip()}%"] * 3
    return [_contact(row) for row in db.execute(sql + " ORDER BY c.email", params).fetchall()]


def set_field(db: Database, email: str, field_name: str, value: str) -> dict[str, Any]:
    """Set one known or custom field, validated like import. An empty value clears it (a custom
    field is removed; an empty owner means the default user)."""
    contact = get_contact(db, email)
    name = column_name(field_name)
    if not name:
        raise SeqctlError(f"'{field_name}' is not a field name")
    value = value.strip()
    column: str
    stored: Any
    if name == "email":
        try:
            stored = normalise_email(value)
        except ValueError as exc:
            raise SeqctlError(f"'{value}' is not a valid email address: {exc}") from None
        other = db.execute(
            "SELECT 1 FROM contacts WHERE email = ? AND id != ?", [stored, contact["id"]]
        ).fetchone()
        if other:
            raise SeqctlError(f"another contact already has the address {stored}")
        column = "email"
    elif name == "owner_email":
        stored = value.lower() or None
        if (
            stored
            and db.execute("SELECT 1 FROM users WHERE email = ?", [stored]).fetchone() is None
        ):
            raise SeqctlError(
                f"unknown owner {stored}: add the rep with "
                f"`seqctl users add {stored} --first-name NAME`"
            )
        column = "owner_email"
    elif name == "timezone":
        stored = canonical_timezone(value) if value else None
        if value and stored is None:
            raise SeqctlError(
                f"unknown timezone '{value}': use an IANA name such as America/New_York"
            )
        column = "timezone"
    elif name == "lifecycle_stage":
        return set_stage(db, contact["email"], value)
    elif name in KNOWN_COLUMNS:
        column, stored = name, value
    elif name in ("custom_fields", "suppressed", "id"):
        raise SeqctlError(f"'{name}' cannot be set (suppressions: `seqctl suppress`)")
    else:
        custom = dict(contact["custom_fields"])
        if value:
            custom[name] = value
        else:
            custom.pop(name, None)
        column, stored = "custom_fields_json", json.dumps(custom, ensure_ascii=False)
    db.execute(
        f"UPDATE contacts SET {column} = ?, updated_at = ? WHERE id = ?",
        [stored, clock.iso(clock.now()), contact["id"]],
    )
    return get_contact(db, stored if column == "email" else contact["email"])


def set_stage(db: Database, email: str, stage: str) -> dict[str, Any]:
    """Change the lifecycle stage; when it really changes, sequences that exit on a stage
    change are exited for this contact."""
    contact = get_contact(db, email)
    stage = stage.strip()
    now = clock.now()
    with transaction(db):
        db.execute(
            "UPDATE contacts SET lifecycle_stage = ?, updated_at = ? WHERE id = ?",
            [stage, clock.iso(now), contact["id"]],
        )
        exited = (
            on_stage_change(db, contact["id"], now) if stage != contact["lifecycle_stage"] else []
        )
    result = get_contact(db, contact["email"])
    result["exited_enrollments"] = list(exited or [])
    return result
