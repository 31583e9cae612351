"""Bad local input is one `aura: error:` line and a non-zero exit, never a traceback, and
what can be checked before a session exists is checked then: no session row is left for
a run that never ran, and no "follow up" hint points at one."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from .conftest import aura_argv, run_aura
from .gitrepo import git_env, make_repo

__all__ = ["git_env"]
pytestmark = pytest.mark.usefixtures("git_env")

QUICK = ["run", "--executor", "custom", "--prompt", "x", "--base-command", "true",
         "--no-tui"]


def one_error(result: subprocess.CompletedProcess) -> str:
    """The one error line of a failed command (nothing else on stderr)."""
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aura: error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


def sessions() -> list[dict]:
    listed = run_aura("session", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


@pytest.mark.parametrize("case", ["not-a-repo", "missing-dir", "bad-base", "dirty-in-place",
                                  "unknown-reviewer", "reviewer-not-installed"])
def test_what_can_be_checked_first_records_no_session(case: str, repo: Path,
                                                      tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (repo / "README.md").write_text("edited, not committed\n")
    args = {"not-a-repo": ["--repo", str(plain)],
            "missing-dir": ["--repo", str(tmp_path / "nowhere")],
            "bad-base": ["--repo", str(repo), "--base", "no-such-branch"],
            "dirty-in-place": ["--repo", str(repo), "--in-place"],
            "unknown-reviewer": ["--review-executor", "nosuch"],
            "reviewer-not-installed": ["--review-executor", "droid"]}[case]
    assert sessions() == []
    result = run_aura(*QUICK, *args, env={"PATH": os.path.dirname(shutil.which("git") or
                                                                   "/usr/bin")})
    line = one_error(result)
    assert "follow up" not in result.stdout + result.stderr
    assert sessions() == [], line
    assert (repo / "README.md").read_text() == "edited, not committed\n"


def test_a_review_that_passes_the_checks_still_runs(repo: Path) -> None:
    result = run_aura(*QUICK, "--repo", str(repo), "--review")
    assert result.returncode == 0, result.stderr
    assert len(sessions()) == 1


@pytest.mark.parametrize("command", [["session", "list"], ["board"]])
def test_a_huge_limit_is_a_usage_error(command: list[str]) -> None:
    line = one_error(run_aura(*command, "-n", "99999999999999999999"))
    assert "--limit" in line
    assert run_aura(*command, "-n", str(2**63 - 1)).returncode == 0


@pytest.mark.parametrize("args", [
    ["run", "--executor", "custom", "--prompt", "x", "--openai-endpoint", "http://[::1",
     "--model", "m", "--no-tui"],
    ["run", "--executor", "custom", "--prompt", "x", "--openai-endpoint", "http://[::1]:x/v1",
     "--model", "m", "--no-tui"],
    ["session", "list", "--coordinator", "ws://[::1"],
    ["workers", "--coordinator", "ws://[::1:8765"],
    ["run", "--on", "w1", "--coordinator", "ws://[zz", "--prompt", "x"],
])
def test_a_malformed_ipv6_url_is_one_line(args: list[str]) -> None:
    line = one_error(run_aura(*args, env={"AURA_TOKEN": "t"}))
    assert "URL" in line or "port" in line
    assert sessions() == []


def _spoil(aura_home: Path, sql: str) -> None:
    assert run_aura(*QUICK).returncode == 0
    with sqlite3.connect(aura_home / "aura.db") as db:
        db.execute(sql)


def test_a_negative_schema_version_is_one_line(aura_home: Path) -> None:
    _spoil(aura_home, "PRAGMA user_version = -5")
    line = one_error(run_aura("session", "list"))
    assert "schema version -5" in line


@pytest.mark.parametrize("sql", [
    "UPDATE sessions SET state = 'weird'",
    "UPDATE executions SET status = 'weird'",
    "UPDATE executions SET stage = 'weird'",
    "UPDATE transitions SET dst = 'weird'",
])
@pytest.mark.parametrize("command", [
    ["board"], ["board", "--json"], ["session", "latest"], ["session", "latest", "--json"],
    ["run", "--resume-latest", "--prompt", "again", "--no-tui"],
])
def test_an_unknown_state_in_the_database_is_never_a_traceback(
        aura_home: Path, sql: str, command: list[str]) -> None:
    _spoil(aura_home, sql)
    result = run_aura(*command)
    assert "Traceback" not in result.stderr
    if result.returncode != 0:
        assert "does not know" in one_error(result)


def _as_unprivileged(*args: str) -> subprocess.CompletedProcess:
    """aura as this user, or, as root, without the power to ignore file permissions."""
    argv = aura_argv(*args)
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("root without setpriv ignores file permissions")
        argv = [setpriv, "--bounding-set=-dac_override", "--inh-caps=-dac_override", *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def test_a_read_only_database_can_still_be_listed(aura_home: Path) -> None:
    assert run_aura(*QUICK).returncode == 0
    for path in aura_home.iterdir():
        path.chmod(0o444)
    aura_home.chmod(0o555)
    try:
        listed = _as_unprivileged("session", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [s["prompt"] for s in json.loads(listed.stdout)] == ["x"]
        assert _as_unprivileged("board").returncode == 0
        written = _as_unprivileged(*QUICK)
        assert "readonly" in one_error(written) or "read-only" in one_error(written)
    finally:
        aura_home.chmod(0o755)

