"""The one error type: the CLI prints its message on one line and exits 1."""

from __future__ import annotations


class SeqctlError(Exception):
    """A problem the user can fix. The message says what happened and what to do."""

    exit_code = 1

    def __init__(self, message: str, *, exit_code: int = 1):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


def environment_problem(exc: BaseException, db_path: object) -> str | None:
    """One line saying what to do, for a failure the machine caused rather than seqctl (a
    locked, full, damaged or read-only database, a full disk); None for anything else (a bug).
    """
    import errno
    import sqlite3

    text = str(exc).lower()
    if isinstance(exc, sqlite3.Error):
        if "locked" in text or "busy" in text:
            return (f"the database {db_path} is busy: another program held it longer than the "
                    "busy timeout (a long tick or import?); nothing was changed, run the command "
                    "again in a moment")
        if "disk is full" in text or "database or disk is full" in text:
            return (f"the disk is full (writing {db_path}); nothing was half-written: free some "
                    "space and run the command again")
        if "readonly" in text or "read-only" in text:
            return (f"the database {db_path} is read-only: make the file and its folder "
                    "writable for you (SQLite also writes -wal and -shm files beside it)")
        if "malformed" in text or "corrupt" in text:
            return (f"the database {db_path} is damaged ({exc}): restore your latest "
                    f"`seqctl backup`, or try `sqlite3 {db_path} .recover`")
        if "unable to open" in text or "disk i/o error" in text:
            return f"cannot use the database {db_path} ({exc}): check the disk and the file"
        return None
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        if exc.errno == errno.ENOSPC:
            return f"the disk is full{where}: free some space and run the command again"
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return f"permission denied{where}: make it writable for you, or choose another path"
        if exc.errno == errno.EDQUOT:
            return f"your disk quota is used up{where}: free some space and run it again"
    return None
