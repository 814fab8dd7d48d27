"""Private files: the install secret and tokens."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor

import pytest

from seqctl.errors import SeqctlError
from seqctl.files import install_secret, write_private


def test_install_secret_is_created_once_private_and_stable(tmp_path):
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: install_secret(tmp_path), range(16)))
    assert len(keys) == 1 and len(next(iter(keys))) == 32
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]      # no temp files left


@pytest.mark.parametrize("content", ["", "\n", "abc", "zz" * 32, "00" * 31])
def test_a_damaged_secret_is_an_error_never_an_empty_key(tmp_path, content):
    (tmp_path / "secret.key").write_text(content)
    with pytest.raises(SeqctlError, match="damaged"):
        install_secret(tmp_path)


def test_write_private_is_0600_and_replaces_atomically(tmp_path):
    target = tmp_path / "tokens" / "t.json"
    write_private(target, "one")
    write_private(target, b"two")
    assert target.read_text() == "two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["t.json"]


def test_a_new_database_is_private(home):
    from seqctl import db as database

    database.get().execute("INSERT INTO settings (key, value) VALUES ('x', 'y')")
    for name in ("seqctl.db", "seqctl.db-wal"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600, name
