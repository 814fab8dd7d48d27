"""`seqctl demo` runs the whole loop and leaves the user's own data alone."""


def test_demo_runs_the_whole_loop(run, home):
    result = run("demo", "--days", "14", timeout=300)
    assert result.code == 0, result.err
    assert "reply_received" in result.out
    assert "completed" in result.out or "active" in result.out
    assert "emails were written to" in result.out
    assert "got nothing after replying" in result.out
    assert not (home / "seqctl.db").exists()
    assert result.out.rstrip().endswith("run `seqctl demo --keep` to keep it and look at the "
                                        "emails")
    assert " CST" in result.out and " UTC " not in result.out     # the sequence's zone
