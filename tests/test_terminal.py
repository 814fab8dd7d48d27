"""What a rep sees at the terminal: the version, usage errors, group defaults, help."""

from __future__ import annotations

import tomllib

from tests.conftest import ROOT


def test_version_prints_the_package_version(run):
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    result = run("--version")
    assert result.code == 0 and result.out == f"seqctl {version}\n"


def test_a_usage_error_is_one_line_with_a_hint(run):
    result = run("tick", "--phase", "soon")
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert "--phase" in result.err and "see 'seqctl tick --help'" in result.err
    assert result.out == ""


def test_an_unknown_command_is_one_line(run):
    result = run("tasks", "lsit")
    assert result.code == 2 and result.err.count("\n") == 1
    assert "lsit" in result.err and "seqctl tasks --help" in result.err


def test_a_bad_task_kind_is_a_usage_error(run):
    result = run("tasks", "list", "--kind", "phone")
    assert result.code == 2 and result.err.count("\n") == 1
    assert "--kind" in result.err and "linkedin" in result.err


def test_group_defaults_pass_their_options_through(run):
    assert run("tasks", "--status", "all", "--json").json == []
    assert run("tasks", "--status", "all", "--kind", "call", "--json").json == []
    assert run("tasks", "--status", "nope").code == 2
    assert run("users", "--json").json == []


def test_group_help_is_the_group_help(run):
    result = run("tasks", "--help")
    assert result.code == 0 and "Commands:" in result.out and "Example" in result.out


def test_db_never_creates_a_missing_folder(run, tmp_path):
    target = tmp_path / "no-such-dir" / "x.db"
    result = run("--db", target, "init")
    assert result.code == 1 and result.err.count("\n") == 1
    assert "does not exist" in result.err and "--db" in result.err
    assert not target.parent.exists()
    result = run("users", env={"SEQCTL_DB": str(target)})
    assert result.code == 1 and not target.parent.exists()


def test_enroll_into_an_unknown_or_inactive_sequence_imports_no_csv_row(run, home):
    csv = home / "leads.csv"
    csv.write_text("email,first_name\nann@a.test,Ann\n")
    result = run("enroll", "no-such-seq", "--csv", csv)
    assert result.code == 1 and "no sequence 'no-such-seq'" in result.err
    assert run("contacts", "--json").json == []
    (home / "s.yaml").write_text("name: s\nsteps:\n  - step_type: task\n    title: Call\n")
    assert run("sequence", "apply", home / "s.yaml").code == 0
    assert run("sequence", "deactivate", "s").code == 0
    result = run("enroll", "s", "--csv", csv)
    assert result.code == 1 and "inactive" in result.err
    assert run("contacts", "--json").json == []


def test_export_offers_only_options_that_work(run):
    assert run("export", "events", "--json").code == 2
    assert run("export", "--json").code == 2
    result = run("export", "events", "--csv")
    assert result.code == 0 and result.out.startswith("id,at,kind,sequence,")
