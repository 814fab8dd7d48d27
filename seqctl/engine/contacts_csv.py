"""Reading a contacts CSV (pure: a byte stream in, rows and per-row problems out; no database).

How a CSV is read:
- Streaming: the file is read once to choose the encoding, then parsed record by record, so
  memory stays flat whatever its size (a stream that cannot seek is first spooled to a
  temporary file). Delimiters are sniffed from a 2 KB peek (longer when the header line is).
- Encoding: UTF-8 with or without a BOM; otherwise Windows-1252, then Latin-1 (which decodes
  anything). UTF-16 with a BOM (Excel's "Unicode text") is read too.
- Delimiter: `,` `;` or tab; the sniffed one first, then the header line's most frequent; the
  first whose header has an `email` column wins.
- Header names become lower_snake_case ("Job Title " -> `job_title`). Known columns and the
  aliases accepted for them are in `COLUMN_ALIASES`; every other column is a custom field.
- Line numbers are physical lines of the file (the header is line 1), so a row after a quoted
  multi-line value gets the line an editor shows.
- Rows whose cells are all empty are skipped silently. A value over `MAX_FIELD` characters,
  or a record the csv module cannot read, makes that one row bad; the others are read.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import shutil
import tempfile
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import IO, Any

from seqctl.errors import SeqctlError

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

DELIMITERS = (",", ";", "\t")
PEEK_BYTES = 2048           # the sniffing peek, as sqlite-utils' CLI
_MAX_PEEK = 64 * 1024       # ... grown to hold the whole header line
_CONTROL_SAMPLE = 16 * 1024
MAX_FIELD = 128 * 1024      # one value longer than this makes its row bad
_BLOCK = 1024 * 1024
# The csv module's own limit is process-wide: raised once so that a long value is one bad row
# (checked against MAX_FIELD) instead of an error that stops the file.
_CSV_FIELD_LIMIT = 64 * 1024 * 1024
if csv.field_size_limit() < _CSV_FIELD_LIMIT:
    csv.field_size_limit(_CSV_FIELD_LIMIT)


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


def _seekable(source: bytes | IO[bytes]) -> IO[bytes]:
    if isinstance(source, bytes | bytearray):
        return io.BytesIO(source)
    if source.seekable():
        return source
    spooled = tempfile.TemporaryFile()       # stdin: to disk, not to memory
    shutil.copyfileobj(source, spooled, _BLOCK)
    spooled.seek(0)
    return spooled


def _decodes(stream: IO[bytes], encoding: str) -> bool:
    """Whether the whole stream decodes in `encoding` (read block by block, nothing kept)."""
    stream.seek(0)
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        while block := stream.read(_BLOCK):
            decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _has_nul(stream: IO[bytes]) -> bool:
    stream.seek(0)
    while block := stream.read(_BLOCK):
        if b"\x00" in block:
            return True
    return False


def _encoding(stream: IO[bytes], filename: str) -> str:
    """The text encoding of the file; SeqctlError for what is not a CSV at all."""
    stream.seek(0)
    head = stream.read(_CONTROL_SAMPLE)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        if not _decodes(stream, "utf-16"):
            raise SeqctlError(f"{filename}: not valid UTF-16 text")
        return "utf-16"
    if head.startswith(b"PK\x03\x04"):
        raise SeqctlError(
            f"{filename} is a spreadsheet or zip file, not CSV: save it as CSV (UTF-8) first"
        )
    if _has_nul(stream):
        raise SeqctlError(f"{filename} is not a CSV file (it contains binary data)")
    encoding = next(e for e in ("utf-8-sig", "cp1252", "latin-1") if _decodes(stream, e))
    sample = head.decode(encoding, errors="ignore")
    controls = sum(1 for ch in sample if ch < " " and ch not in "\t\r\n" or "\x7f" <= ch <= "\x9f")
    if controls > max(2, len(sample) // 100):
        raise SeqctlError(f"{filename} is not a CSV file (it contains binary data)")
    return encoding


def _text(stream: IO[bytes], encoding: str) -> io.TextIOWrapper:
    stream.seek(0)
    return io.TextIOWrapper(stream, encoding=encoding, newline="")


def _reader(lines: Any, delimiter: str):
    return csv.reader(lines, delimiter=delimiter, quotechar='"', doublequote=True, strict=False)


def _first_record(stream: IO[bytes], encoding: str, delimiter: str) -> list[str] | None:
    text = _text(stream, encoding)
    try:
        for record in _reader(text, delimiter):
            if any(cell.strip() for cell in record):
                return record
        return None
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise SeqctlError(f"line 1: a header name is longer than {MAX_FIELD:,} characters "
                              "(a missing closing quote, or not a CSV file?)") from None
        return None
    finally:
        text.detach()


def _peek(stream: IO[bytes], encoding: str) -> str:
    """The first PEEK_BYTES of text, grown until it holds a whole line (up to 64 KB)."""
    size = PEEK_BYTES
    while True:
        stream.seek(0)
        text = stream.read(size).decode(encoding, errors="ignore")
        if "\n" in text.lstrip("\r\n") or size >= _MAX_PEEK:
            return text
        size *= 4


def _choose_delimiter(stream: IO[bytes], encoding: str) -> tuple[str, list[str]]:
    """The delimiter and header: the sniffed delimiter, else the header line's most frequent
    candidate; the first that yields an `email` column wins."""
    sample = _peek(stream, encoding)
    whole = stream.seek(0, io.SEEK_END) <= len(sample.encode(encoding, errors="ignore"))
    if not whole and "\n" in sample:
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
        header = _first_record(stream, encoding, delimiter)
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


def _columns(header: list[str]) -> tuple[list[str | None], list[str]]:
    """The field name of each header cell (None: ignored) and the warnings about them."""
    warnings: list[str] = []
    names: list[str | None] = []
    used: set[str] = set()      # a set, so any header width reads in linear time
    for position, raw in enumerate(header, start=1):
        name = column_name(raw) if raw.strip() else None
        if raw != raw.strip() and raw.strip():
            warnings.append(f"column '{raw}' has spaces around its name; read as '{name}'")
        if name is not None and name in used:
            warnings.append(
                f"column '{raw.strip()}' (column {position}) repeats '{name}'; "
                "the first one is used"
            )
            name = None
        if name is not None:
            used.add(name)
        names.append(name)
    return names, warnings


def _rows(opened: ContactsCsv) -> Iterator[tuple[dict[str, Any] | None, dict[str, Any] | None]]:
    names, _ = _columns(opened.header)
    email_index = names.index("email")
    known = [(i, name) for i, name in enumerate(names) if name in KNOWN_COLUMNS and name != "email"]
    custom = [(i, name) for i, name in enumerate(names) if name is not None and name not in KNOWN_COLUMNS]
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

    text = _text(opened.stream, opened.encoding)
    reader = _reader(text, opened.delimiter)
    last_line = 0
    seen_header = False
    try:
        while True:
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                line, last_line = last_line + 1, reader.line_num
                yield None, {"line": line, "email": "", "reason": f"cannot read this row: {exc}"}
                continue
            except UnicodeDecodeError:
                raise SeqctlError(
                    f"{opened.filename}:{reader.line_num + 1}: not valid {opened.encoding} text"
                ) from None
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
                    yield None, {
                        "line": line,
                        "email": record[email_index].strip(),
                        "reason": f"{len(record)} values but the header names {width} columns "
                        "(an unquoted delimiter in a value?)",
                    }
                    continue
            email_raw = record[email_index].strip()
            longest = max(map(len, record))
            if longest > MAX_FIELD:
                yield None, {
                    "line": line,
                    "email": email_raw[:254],
                    "reason": f"a value of {longest:,} characters (at most {MAX_FIELD:,}; "
                    "an unclosed quote?)",
                }
                continue
            if not email_raw:
                yield None, {"line": line, "email": "", "reason": "missing email"}
                continue
            try:
                email = normalise_email(email_raw)
            except ValueError as exc:
                yield None, {
                    "line": line, "email": email_raw, "reason": f"invalid email address: {exc}"
                }
                continue
            if timezone_index is not None and (zone := record[timezone_index].strip()):
                canonical = canonical_timezone(zone)
                if canonical is None:
                    yield None, {
                        "line": line,
                        "email": email_raw,
                        "reason": f"unknown timezone '{zone}' (use an IANA name such as "
                        "America/New_York)",
                    }
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
            yield row, None
    finally:
        text.detach()
    if nameless_used:
        opened.warnings.append(
            "a column without a name in the header has values; they were ignored")


@dataclass
class ContactsCsv:
    """An opened contacts CSV: `rows()` streams (good row, None) or (None, bad row) pairs in
    file order; `warnings` (about the header) is complete once it is opened, about nameless
    columns once the rows are read. `position()` is how many bytes are read, of `size`."""

    filename: str
    stream: IO[bytes]
    encoding: str
    delimiter: str
    header: list[str]
    size: int
    warnings: list[str] = field(default_factory=list)

    def position(self) -> int:
        try:
            return self.stream.tell()
        except (OSError, ValueError):
            return self.size

    def rows(self) -> Iterator[tuple[dict[str, Any] | None, dict[str, Any] | None]]:
        return _rows(self)


def open_csv(source: bytes | IO[bytes], *, filename: str) -> ContactsCsv:
    """Open a contacts CSV from bytes or a binary stream. Whole-file problems (binary data,
    empty file, no email column) raise SeqctlError naming `filename`."""
    stream = _seekable(source)
    size = stream.seek(0, io.SEEK_END)
    encoding = _encoding(stream, filename)
    if not _peek(stream, encoding).strip() and not _has_text(stream, encoding):
        raise SeqctlError(f"{filename} is empty: expected a header line with an `email` column")
    try:
        delimiter, header = _choose_delimiter(stream, encoding)
    except SeqctlError as exc:
        raise SeqctlError(f"{filename}: {exc.message}") from None
    longest = max(range(len(header)), key=lambda i: len(header[i]))
    if len(header[longest]) > MAX_FIELD:
        raise SeqctlError(f"{filename}:1: the name of column {longest + 1} is "
                          f"{len(header[longest]):,} characters long (at most {MAX_FIELD:,}): "
                          "is the first line really the header?")
    _, warnings = _columns(header)
    return ContactsCsv(filename, stream, encoding, delimiter, header, size, warnings)


def _has_text(stream: IO[bytes], encoding: str) -> bool:
    text = _text(stream, encoding)
    try:
        while block := text.read(_BLOCK):
            if block.strip():
                return True
        return False
    finally:
        text.detach()


def read_csv(data: bytes | IO[bytes], *, filename: str) -> tuple[list[dict], list[dict]]:
    """Parse a whole contacts CSV. Returns (good rows, invalid rows).

    A good row is {"line", "email" (normalised), the known columns present in the header,
    "custom_fields": {...}}; an invalid one is {"line", "email", "reason"}. Whole-file problems
    (binary data, empty file, no email column) raise SeqctlError. The owner is not checked here
    (that needs the database): `contacts.import_contacts` does it.
    """
    opened = open_csv(data, filename=filename)
    rows: list[dict] = []
    invalid: list[dict] = []
    for good, bad in opened.rows():
        if good is not None:
            rows.append(good)
        else:
            invalid.append(bad)
    return rows, invalid
