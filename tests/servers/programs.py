"""Finding the server programs the tests start (installed by scripts/test-services.sh)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable


def find_program(name: str, candidates: Iterable[str] = ()) -> str | None:
    """`name` on PATH, else the first executable of `candidates` (sbin is often not on PATH)."""
    return shutil.which(name) or next(
        (path for path in candidates if os.access(path, os.X_OK)), None)
