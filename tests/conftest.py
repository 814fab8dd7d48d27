"""Shared fixtures: a temp SEQCTL_HOME per test, and the CLI run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from seqctl import clock, config
from seqctl import db as database

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self):
        return json.loads(self.out)

    # tuple-style unpacking: code, out, err = run(...)
    def __iter__(self):
        return iter((self.code, self.out, self.err))


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh data folder; every seqctl call in the test (in process or subprocess) uses it."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("SEQCTL_HOME", str(path))
    for name in ("SEQCTL_DB", "SEQCTL_NOW", "SEQCTL_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    database.reset()
    config.set_db_path(None)
    clock.set_now(None)
    yield path
    database.reset()
    clock.set_now(None)


@pytest.fixture
def run(home):
    """Run `seqctl ARGS...` as a subprocess; returns Result(code, out, err)."""

    def _run(*args: str, input: str | bytes | None = None, env: dict | None = None,
             now: str | None = None, timeout: float = 120) -> Result:
        full_env = dict(os.environ)
        full_env["SEQCTL_HOME"] = str(home)
        if now:
            full_env["SEQCTL_NOW"] = now
        if env:
            full_env.update(env)
        if isinstance(input, str):
            input = input.encode()
        proc = subprocess.run(
            [sys.executable, "-m", "seqctl", *map(str, args)],
            input=input, capture_output=True, env=full_env, timeout=timeout, cwd=ROOT,
        )
        return Result(proc.returncode, proc.stdout.decode(), proc.stderr.decode())

    return _run


@pytest.fixture(scope="module")
def dovecot():
    """A Dovecot IMAP server on loopback for the module's tests (see servers/imap_server.py)."""
    from servers.imap_server import DovecotServer, need_dovecot

    need_dovecot()
    with DovecotServer() as server:
        yield server
