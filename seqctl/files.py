"""Private files (tokens, the install secret): mode 0600, written atomically."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path


def write_private(path: Path, data: bytes | str) -> None:
    """Write `data` to `path` with mode 0600 via a temp file + rename, so a reader never sees
    half a file and a crash never leaves one."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def install_secret(home: Path) -> bytes:
    """The per-install secret (HMAC key for signed links), created on first use."""
    path = home / "secret.key"
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        value = secrets.token_bytes(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:          # another process won the race: use theirs
            return bytes.fromhex(path.read_text().strip())
        except FileNotFoundError:
            home.mkdir(parents=True, exist_ok=True, mode=0o700)
            return install_secret(home)
        with os.fdopen(fd, "w") as handle:
            handle.write(value.hex())
        return value
