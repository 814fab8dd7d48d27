"""Private files: the install secret and tokens."""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor

import pytest

from seqctl.errors import SeqctlError
from seqctl.files import install_secret, private_text_file, write_private


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


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_an_atomic_write_never_replaces_a_link_or_a_pipe(tmp_path, kind):
    """The rename would turn `-o /dev/null` or `-o /dev/stdout` into a plain file."""
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep")
    path = tmp_path / "out"
    if kind == "symlink":
        path.symlink_to(target)
    else:
        os.mkfifo(path)
    with pytest.raises(SeqctlError, match="not a regular file"):
        write_private(path, "new")
    with pytest.raises(SeqctlError, match="not a regular file"):
        with private_text_file(path) as handle:
            handle.write("new")
    assert path.is_symlink() if kind == "symlink" else stat.S_ISFIFO(path.lstat().st_mode)
    assert target.read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere.txt", "out"]


def test_export_and_draft_refuse_an_output_path_that_is_a_link(run, tmp_path):
    target = tmp_path / "real.csv"
    target.write_text("keep")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    for args in (["export", "events", "-o", str(link)],
                 ["sequence", "draft", "Day 1: intro email", "-o", str(link)]):
        result = run(*args)
        assert result.code == 1, (args, result.out, result.err)
        assert "not a regular file" in result.err.strip().splitlines()[-1]
        assert "Traceback" not in result.err
        assert link.is_symlink() and target.read_text() == "keep"
