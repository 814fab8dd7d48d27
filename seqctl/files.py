"""Files seqctl writes, always atomically: private ones (tokens, the install secret, backups,
exports) with mode 0600, and the user's own (`sequence draft -o FILE`, mode from the umask)."""

from __future__ import annotations

import os
import secrets
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TextIO

from seqctl.errors import SeqctlError


def write_private(path: Path, data: bytes | str, mode: int = 0o600) -> None:
    """Write `data` to `path` with `mode` (0600: for the owner only) via a temp file + rename,
    so a reader never sees half a file and a crash never leaves one."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _private_replacement(path, "wb", file_mode=mode) as handle:
        handle.write(data)


def refuse_special(path: Path) -> None:
    """Refuse a `path` that exists and is not a regular file: the atomic write renames over
    it, which would replace a link, a device such as /dev/null, or a pipe with a plain file."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise SeqctlError(f"{path} is not a regular file (a link, device or pipe): name an "
                          "ordinary file to write")


@contextmanager
def _private_replacement(path: Path, open_mode: str, *, file_mode: int = 0o600,
                         **options: Any) -> Iterator[IO[Any]]:
    """A handle on a temp file (`file_mode`, 0600 by default) beside `path` that replaces
    `path` when the block ends without an error; on an error the temp file is removed and
    `path` is untouched. A `path` that is a link, device or pipe is refused."""
    refuse_special(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, file_mode)
        with os.fdopen(fd, open_mode, **options) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


@contextmanager
def private_text_file(path: Path) -> Iterator[TextIO]:
    """Write a text file (UTF-8, newline untranslated) with mode 0600: the lines go to a
    private temp file beside `path`, renamed into place only when the block ends without an
    error, so nothing half-written is ever left at `path`. An existing file is replaced."""
    with _private_replacement(path, "w", newline="", encoding="utf-8") as handle:
        yield handle


def create_private_empty(path: Path) -> None:
    """Create `path` empty with mode 0600; FileExistsError when it exists."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def write_text(path: Path, text: str) -> None:
    """Write a user's file (mode from the umask) atomically; its folder must exist."""
    if not path.parent.is_dir():
        raise SeqctlError(f"cannot write {path}: folder {path.parent} does not exist")
    if path.is_dir():
        raise SeqctlError(f"cannot write {path}: it is a folder")
    umask = os.umask(0)
    os.umask(umask)
    try:
        write_private(path, text, mode=0o666 & ~umask)
    except OSError as exc:
        raise SeqctlError(f"cannot write {path}: {exc.strerror}") from None


_secrets: dict[Path, bytes] = {}     # read once per process: the secret never changes


def install_secret(home: Path) -> bytes:
    """The per-install secret (HMAC key for signed links and Message-IDs), created on first
    use: written to a temp file, fsynced, then linked into place, so no reader ever sees a
    partial or empty key, and two processes racing agree on one."""
    path = home / "secret.key"
    cached = _secrets.get(path)
    if cached is not None:
        return cached
    try:
        _secrets[path] = _read_secret(path)
        return _secrets[path]
    except FileNotFoundError:
        pass
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=home, prefix=".secret.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)          # atomic, and fails if another process got there first
        except FileExistsError:
            pass
        _fsync_dir(home)
    finally:
        os.unlink(tmp)
    _secrets[path] = _read_secret(path)
    return _secrets[path]


def _read_secret(path: Path) -> bytes:
    text = path.read_text().strip()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise SeqctlError(f"{path} is damaged (expected 64 hex characters): move it away to make "
                          "a new one; links in emails already sent will stop working")
    return bytes.fromhex(text)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
