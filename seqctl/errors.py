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
