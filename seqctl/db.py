"""The schema, its migrations, and the one database opener.

Times are stored as ISO 8601 UTC text with a `Z` (see `clock.iso`), so they sort as strings.
JSON-valued columns end in `_json`.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from seqctl import config
from seqctl.errors import SeqctlError, environment_problem
from seqctl.files import create_private_empty


@contextmanager
def _numpy_and_pandas_hidden() -> Iterator[None]:
    """sqlite-utils imports numpy and pandas when they are installed (to map their column
    types), which is most of a short command's start-up; seqctl never hands it either. Hide
    them while sqlite-utils loads; later imports of numpy (scipy for `compare`) work as usual."""
    hidden = [name for name in ("numpy", "pandas") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # `import name` raises ImportError
    try:
        yield
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


# Every other module imports sqlite_utils for type hints only (under TYPE_CHECKING), so this
# is the one place it loads.
with _numpy_and_pandas_hidden():
    from sqlite_utils import Database, Migrations  # noqa: E402

migrations = Migrations("seqctl")
BUSY_TIMEOUT = 30.0     # seconds a write waits for another process's transaction


def run_script(db: Database, script: str) -> None:
    """Run SQL statements one by one (executescript would commit the migration's transaction)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""


@migrations()
def m001_core(db: Database) -> None:
    run_script(
        db,
        """
        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            first_name TEXT NOT NULL DEFAULT '',
            last_name TEXT NOT NULL DEFAULT '',
            is_default INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        );
        CREATE TABLE inboxes (
            id INTEGER PRIMARY KEY,
            address TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,                 -- maildir | gmail | outlook | smtp
            user_id INTEGER NOT NULL REFERENCES users(id),
            is_default INTEGER NOT NULL DEFAULT 0,
            config_json TEXT NOT NULL DEFAULT '{}',   -- kind-specific, never secrets
            daily_cap INTEGER,                  -- NULL: the kind's default
            status TEXT NOT NULL DEFAULT 'active',    -- active | needs_reauth | paused_bounces
            status_message TEXT,
            sync_cursor TEXT,                   -- provider cursor (historyId, deltaLink, UID...)
            last_sync_at TEXT,
            created_at TEXT NOT NULL
        );
        CREATE TABLE sequences (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            description TEXT NOT NULL DEFAULT '',
            active INTEGER NOT NULL DEFAULT 1,
            timezone TEXT NOT NULL DEFAULT 'UTC',
            send_window_start_hour INTEGER NOT NULL DEFAULT 0,
            send_window_end_hour INTEGER NOT NULL DEFAULT 24,
            send_weekdays_only INTEGER NOT NULL DEFAULT 0,
            holidays TEXT,
            send_in_contact_timezone INTEGER NOT NULL DEFAULT 0,
            exit_on_reply INTEGER NOT NULL DEFAULT 1,
            exit_on_stage_change INTEGER NOT NULL DEFAULT 0,
            exit_on_booking INTEGER NOT NULL DEFAULT 1,
            exit_on_company_reply INTEGER NOT NULL DEFAULT 0,
            pause_on_auto_reply INTEGER NOT NULL DEFAULT 1,
            track_opens INTEGER NOT NULL DEFAULT 0,
            track_clicks INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE steps (
            id INTEGER PRIMARY KEY,
            sequence_id INTEGER NOT NULL REFERENCES sequences(id),
            step_key TEXT,                      -- the YAML `id`, when given
            position INTEGER,                   -- 1-based; NULL once removed
            step_type TEXT NOT NULL,            -- email | call | linkedin | task | wait
            delay_business_days INTEGER NOT NULL DEFAULT 0,
            delay_calendar_days INTEGER NOT NULL DEFAULT 0,
            delay_hours REAL NOT NULL DEFAULT 0,
            subject TEXT,
            body TEXT,
            cc_json TEXT NOT NULL DEFAULT '[]',
            bcc_json TEXT NOT NULL DEFAULT '[]',
            variant_b_json TEXT,                -- {"subject": ..., "body": ...}
            template TEXT,
            title TEXT,
            notes TEXT,
            removed INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX steps_sequence ON steps(sequence_id, removed, position);
        CREATE TABLE contacts (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,         -- normalised: stripped, lower case
            first_name TEXT NOT NULL DEFAULT '',
            last_name TEXT NOT NULL DEFAULT '',
            company_name TEXT NOT NULL DEFAULT '',
            owner_email TEXT,
            lifecycle_stage TEXT NOT NULL DEFAULT '',
            timezone TEXT,
            custom_fields_json TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE contact_aliases (
            email TEXT PRIMARY KEY,
            contact_id INTEGER NOT NULL REFERENCES contacts(id)
        );
        CREATE TABLE enrollments (
            id INTEGER PRIMARY KEY,
            sequence_id INTEGER NOT NULL REFERENCES sequences(id),
            contact_id INTEGER NOT NULL REFERENCES contacts(id),
            inbox_id INTEGER REFERENCES inboxes(id),
            status TEXT NOT NULL,               -- active | paused | exited | failed
            exit_reason TEXT,
            failure_message TEXT,
            variant TEXT NOT NULL DEFAULT 'A',
            step_id INTEGER REFERENCES steps(id),   -- the step up next; NULL once past the last
            anchor_at TEXT NOT NULL,            -- previous step's actual fire/send time
            next_run_at TEXT,                   -- when step_id is due; NULL while waiting on a send
            waiting_outbox_id INTEGER,          -- the queued email the next step waits for
            paused_until TEXT,                  -- auto-resume time (out-of-office)
            enrolled_at TEXT NOT NULL,
            exited_at TEXT,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX enrollments_due ON enrollments(status, next_run_at);
        CREATE INDEX enrollments_contact ON enrollments(contact_id, status);
        CREATE INDEX enrollments_sequence ON enrollments(sequence_id, status);
        CREATE UNIQUE INDEX enrollments_open_pair ON enrollments(sequence_id, contact_id)
            WHERE status != 'exited';
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            enrollment_id INTEGER REFERENCES enrollments(id),   -- NULL for `inbox test`
            step_id INTEGER REFERENCES steps(id),
            inbox_id INTEGER NOT NULL REFERENCES inboxes(id),
            contact_id INTEGER REFERENCES contacts(id),
            to_email TEXT NOT NULL,
            status TEXT NOT NULL,   -- queued | sending | sent | failed | unknown | skipped | cancelled
            is_follow_up INTEGER NOT NULL DEFAULT 0,
            variant TEXT,
            scheduled_at TEXT NOT NULL,         -- not before (step fire time, cap deferrals)
            next_attempt_at TEXT NOT NULL,      -- scheduled_at, or later after a retry
            attempts INTEGER NOT NULL DEFAULT 0,
            message_id TEXT NOT NULL UNIQUE,    -- our RFC 5322 Message-ID, chosen at queue time
            subject TEXT,
            raw BLOB,                           -- the exact MIME bytes handed to the provider
            thread_id TEXT,                     -- provider thread id (reply threading)
            provider_message_id TEXT,
            error TEXT,
            created_at TEXT NOT NULL,
            claimed_at TEXT,
            sent_at TEXT
        );
        CREATE UNIQUE INDEX outbox_step_once ON outbox(enrollment_id, step_id)
            WHERE enrollment_id IS NOT NULL;
        CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
        CREATE INDEX outbox_inbox_sent ON outbox(inbox_id, status, sent_at);
        CREATE TABLE tasks (
            id INTEGER PRIMARY KEY,
            enrollment_id INTEGER REFERENCES enrollments(id),
            step_id INTEGER REFERENCES steps(id),
            sequence_id INTEGER REFERENCES sequences(id),
            contact_id INTEGER NOT NULL REFERENCES contacts(id),
            kind TEXT NOT NULL,                 -- call | linkedin | task
            title TEXT NOT NULL,
            notes TEXT NOT NULL DEFAULT '',
            due_at TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'open',    -- open | done | skipped
            created_at TEXT NOT NULL,
            completed_at TEXT
        );
        CREATE UNIQUE INDEX tasks_step_once ON tasks(enrollment_id, step_id)
            WHERE enrollment_id IS NOT NULL;
        CREATE INDEX tasks_status ON tasks(status, due_at);
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,   -- sent | skipped | open | click | reply | auto_reply | bounce
                                  -- | soft_bounce | unsubscribe | meeting | exit | paused | resumed
                                  -- | failed | stage_changed | inbox_paused | inbox_resumed
            at TEXT NOT NULL,
            enrollment_id INTEGER,
            sequence_id INTEGER,
            step_id INTEGER,
            contact_id INTEGER,
            outbox_id INTEGER,
            inbox_id INTEGER,
            variant TEXT,
            detail_json TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX events_sequence ON events(sequence_id, kind);
        CREATE INDEX events_outbox ON events(outbox_id, kind);
        CREATE TABLE suppressions (
            email TEXT PRIMARY KEY,
            reason TEXT NOT NULL,               -- manual | bounced | unsubscribed | ...
            created_at TEXT NOT NULL
        );
        CREATE TABLE templates (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id),
            name TEXT NOT NULL,
            subject TEXT,
            body TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (user_id, name)
        );
        CREATE TABLE deals (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            stage TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE deal_contacts (
            deal_id INTEGER NOT NULL REFERENCES deals(id),
            contact_id INTEGER NOT NULL REFERENCES contacts(id),
            PRIMARY KEY (deal_id, contact_id)
        );
        CREATE TABLE inbound (
            id INTEGER PRIMARY KEY,
            inbox_id INTEGER NOT NULL REFERENCES inboxes(id),
            provider_id TEXT NOT NULL,          -- provider's id (file name, Gmail id, UID...)
            message_id TEXT,
            from_email TEXT,
            subject TEXT,
            verdict TEXT NOT NULL,              -- bounce | auto_reply | unsubscribe | meeting
                                                -- | reply | ignored
            contact_id INTEGER,
            enrollment_id INTEGER,
            detail_json TEXT NOT NULL DEFAULT '{}',
            received_at TEXT NOT NULL,
            UNIQUE (inbox_id, provider_id)
        );
        """
    )


@migrations()
def m002_events_by_contact(db: Database) -> None:
    """The exits backstop asks, per fired step, for a contact's outcomes since enrollment."""
    db.execute("CREATE INDEX events_contact ON events(contact_id, kind, at)")


@migrations()
def m_throughput_cap_and_bounce_indexes(db: Database) -> None:
    """The hourly cap counts the sends since the hour began, and the bounce-rate check looks
    up an inbox's last pause or resume: both read a window, so both need an index that ends
    in the time column, or they scan every email ever sent and every event."""
    db.execute("CREATE INDEX outbox_sent_at ON outbox(status, sent_at)")
    db.execute("CREATE INDEX events_inbox ON events(inbox_id, kind, at)")


@migrations()
def m_throughput_stats_index(db: Database) -> None:
    """`stats` counts the distinct emails per step and variant from the events: with those
    columns in the index it reads the index alone. It replaces events(sequence_id, kind)."""
    db.execute("CREATE INDEX events_sequence_step ON events(sequence_id, kind, step_id, "
               "variant, outbox_id)")
    db.execute("DROP INDEX events_sequence")


@migrations()
def m_content_click_minutes(db: Database) -> None:
    """One row per email, link and minute clicked: recording a click is one insert (a repeat
    in the same minute is ignored) and reads only the clicks of the last seconds."""
    run_script(
        db,
        """
        CREATE TABLE click_minutes (
            outbox_id INTEGER NOT NULL,
            url TEXT NOT NULL,                  -- the link, normalised
            minute TEXT NOT NULL,               -- 2026-03-02T14:11Z
            at TEXT NOT NULL,
            event_id INTEGER,
            scanner INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (outbox_id, url, minute)
        ) WITHOUT ROWID;
        CREATE INDEX click_minutes_at ON click_minutes(outbox_id, at);
        INSERT OR IGNORE INTO click_minutes (outbox_id, url, minute, at, event_id, scanner)
            SELECT outbox_id, COALESCE(json_extract(detail_json, '$.url'), ''),
                   substr(at, 1, 16) || 'Z', at, id,
                   COALESCE(json_extract(detail_json, '$.scanner'), 0)
            FROM events WHERE kind = 'click' AND outbox_id IS NOT NULL ORDER BY id;
        """
    )


@migrations()
def m_content_require_fields(db: Database) -> None:
    """Sequence key `require_fields`: "" (none), "all", or comma-separated field names."""
    db.execute("ALTER TABLE sequences ADD COLUMN require_fields TEXT NOT NULL DEFAULT ''")


@migrations()
def m_intent_pause_on_not_now(db: Database) -> None:
    """Reply intent (SPEC 18): the sequence key `pause_on_not_now` (off by default), and the
    reply inbox (`seqctl replies`) reads reply events newest first."""
    db.execute(
        "ALTER TABLE sequences ADD COLUMN pause_on_not_now INTEGER NOT NULL DEFAULT 0"
    )
    db.execute("CREATE INDEX events_kind_at ON events(kind, at)")


@migrations()
def m_sending_throttle_and_spacing(db: Database) -> None:
    """A throttled inbox waits until `status_until`; `--spacing` keeps a random gap between
    an inbox's sends (`next_send_at`); a recipient's temporary refusals are counted from
    `deferred_since` (the 72 h soft-bounce limit)."""
    run_script(
        db,
        """
        ALTER TABLE inboxes ADD COLUMN status_until TEXT;
        ALTER TABLE inboxes ADD COLUMN spacing_min INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE inboxes ADD COLUMN spacing_max INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE inboxes ADD COLUMN next_send_at TEXT;
        ALTER TABLE outbox ADD COLUMN deferred_since TEXT;
        """,
    )


@migrations()
def m_throughput_outbox_by_enrollment(db: Database) -> None:
    """An outcome is attributed to the enrollment's last sent email (`events.record`): an
    index on (enrollment_id, status, sent_at) answers that directly. Without it the planner
    walks the (status, sent_at) index through every email ever sent."""
    db.execute("CREATE INDEX outbox_enrollment_sent ON outbox(enrollment_id, status, sent_at)")


def connect(path: Path | None = None) -> Database:
    """Open (creating if missing) the database, apply pending migrations, and return it."""
    chosen = path is None and config.db_path_is_chosen()
    path = path or config.db_path()
    if chosen and not path.parent.is_dir():
        raise SeqctlError(f"cannot open database {path}: the folder {path.parent} does not exist "
                          "(create it, or fix --db / SEQCTL_DB)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        new = not path.exists()
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT, isolation_level=None)
        if new:     # contacts and whole emails: for the owner's eyes only (SQLite gives the
            os.chmod(path, 0o600)   # -wal and -shm files the database file's mode)
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except (OSError, sqlite3.Error) as exc:
        raise SeqctlError(
            environment_problem(exc, path)
            or f"cannot open database {path}: {exc} (check --db / SEQCTL_DB / SEQCTL_HOME)"
        ) from None
    db = Database(conn, execute_plugins=False)  # seqctl uses no sqlite-utils plugins
    try:
        if migrations.pending(db):
            with open(path.with_name(path.name + ".migrate.lock"), "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                migrations.apply(db)
    except (sqlite3.Error, OSError) as exc:
        raise SeqctlError(environment_problem(exc, path)
                          or f"cannot migrate database {path}: {exc}") from None
    return db


_open: Database | None = None


def get() -> Database:
    """The process's database connection, opened on first use."""
    global _open
    if _open is None:
        _open = connect()
    return _open


def reset() -> None:
    """Forget the cached connection (tests that switch `SEQCTL_DB`)."""
    global _open
    if _open is not None:
        _open.close()
    _open = None


def backup(db: Database, target: Path) -> None:
    """A consistent copy of the database at `target` (VACUUM INTO, safe during a tick), mode
    0600 like the database itself. `target` must not exist; nothing is left on failure."""
    try:
        create_private_empty(target)    # VACUUM INTO fills an empty file and keeps its mode
    except FileExistsError:
        raise SeqctlError(f"{target} exists: choose a new file name") from None
    except OSError as exc:
        raise SeqctlError(f"cannot write the backup to {target}: {exc.strerror or exc}") from None
    try:
        db.execute("VACUUM INTO ?", [str(target)])
    except sqlite3.Error as exc:
        target.unlink(missing_ok=True)
        raise SeqctlError(f"cannot write the backup to {target}: {exc}") from None


def database_file(db: Database) -> Path | None:
    """The file of the connection's main database; None for an in-memory one."""
    for _seq, name, file in db.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return Path(file) if file else None
    return None


_savepoints = itertools.count(1)


class transaction:
    """`with transaction(db):` — one IMMEDIATE transaction; rolled back on any exception.

    Inside another transaction it is a SAVEPOINT: an inner failure rolls back the inner
    writes only, so a caller that catches it keeps its own work and none of the inner's.
    """

    def __init__(self, db: Database):
        self.conn = db.conn
        self.savepoint: str | None = None

    def __enter__(self) -> None:
        if self.conn.in_transaction:
            self.savepoint = f"seqctl_{next(_savepoints)}"
            self.conn.execute(f"SAVEPOINT {self.savepoint}")
            return
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.savepoint is not None:
            if not self.conn.in_transaction:
                return  # SQLite already rolled the whole transaction back (e.g. disk full)
            if exc_type is not None:
                self.conn.execute(f"ROLLBACK TO SAVEPOINT {self.savepoint}")
            self.conn.execute(f"RELEASE SAVEPOINT {self.savepoint}")
            return
        if exc_type is None:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:     # SQLite may have rolled back already (disk full)
            self.conn.execute("ROLLBACK")
