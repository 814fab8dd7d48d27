"""Long work shows a progress bar on a terminal only; pipes and scripts stay clean."""

from __future__ import annotations

import os
import pty
import subprocess
import sys


def test_enroll_draws_a_progress_bar_on_a_tty_and_none_in_a_pipe(run, home):
    assert run("inbox", "add", "maildir", "rep@a.test", "--dir", home / "m").code == 0
    (home / "s.yaml").write_text("name: s\nsteps:\n  - step_type: task\n    title: T\n")
    assert run("sequence", "apply", home / "s.yaml").code == 0
    csv = "email\n" + "".join(f"p{i}@x.test\n" for i in range(5000))
    env = dict(os.environ, SEQCTL_HOME=str(home))
    master, replica = pty.openpty()
    proc = subprocess.run([sys.executable, "-m", "seqctl", "enroll", "s", "--csv", "-"],
                          env=env, input=csv.encode(), stdout=subprocess.PIPE, stderr=replica,
                          timeout=120)
    os.close(replica)
    drawn = b""
    try:
        while chunk := os.read(master, 65536):
            drawn += chunk
    except OSError:
        pass
    os.close(master)
    assert proc.returncode == 0
    assert proc.stdout == b"enrolled 5000, skipped 0 duplicates, failed 0\n"
    assert b"enrolling" in drawn and b"importing" in drawn

    piped = run("enroll", "s", "--csv", "-", input=csv)
    assert "enrolling" not in piped.err and "importing" not in piped.err
