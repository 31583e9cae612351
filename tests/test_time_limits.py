"""--timeout and --idle-timeout end a run that exceeds them: failed, the reason said,
exit 124, the agent stopped and its uncommitted work saved (a real git repo, a real
fake agent process)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_aura
from tests.gitrepo import git, git_env, make_repo

__all__ = ["git_env"]
pytestmark = pytest.mark.usefixtures("git_env")

QUIET_AGENT = """\
import time
with open("half.txt", "w") as fh:
    fh.write("half done\\n")
print("wrote half.txt, now thinking", flush=True)
time.sleep(60)
"""

CHATTY_AGENT = """\
import time
with open("half.txt", "w") as fh:
    fh.write("half done\\n")
for i in range(600):
    print("still working", i, flush=True)
    time.sleep(0.1)
"""


def _run_limited(tmp_path: Path, source: str, *limit: str) -> tuple[dict, float, str]:
    repo = make_repo(tmp_path / "repo")
    agent = tmp_path / "agent.py"
    agent.write_text(source)
    started = time.monotonic()
    result = run_aura("run", "-e", "custom", "--base-command", f"{sys.executable} {agent}",
                      "--repo", str(repo), "--prompt", "Do it", "--json", *limit)
    took = time.monotonic() - started
    assert result.returncode == 124, result.stderr
    done = json.loads(result.stdout.strip().splitlines()[-1])
    return done, took, str(repo)


def _show(session: str) -> dict:
    shown = run_aura("session", "show", session, "--json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


@pytest.mark.slow
def test_idle_timeout_ends_a_quiet_agent_and_saves_its_work(tmp_path: Path) -> None:
    done, took, repo = _run_limited(tmp_path, QUIET_AGENT, "--idle-timeout", "1.5")
    assert done["state"] == "failed" and done["exit_code"] == 124
    assert done["error"] == "no output for 1.5 s"
    assert took < 20  # the agent's 60 s sleep was cut short
    data = _show(done["session"])
    assert data["state"] == "failed"
    assert data["transitions"][-1]["reason"] == "no output for 1.5 s"
    saved = git(repo, "for-each-ref", "--format=%(refname)", "refs/aura/saved/")
    assert saved, "the uncommitted half.txt was not saved"
    assert git(repo, "show", f"{saved.splitlines()[0]}:half.txt") == "half done"


@pytest.mark.slow
def test_timeout_ends_an_agent_that_keeps_talking(tmp_path: Path) -> None:
    done, took, repo = _run_limited(tmp_path, CHATTY_AGENT, "--timeout", "2",
                                    "--idle-timeout", "30")
    assert done["error"] == "timed out after 2 s"
    assert done["state"] == "failed" and 2 <= took < 20
    texts = [e.get("text", "") for e in _show(done["session"])["entries"]]
    assert any("still working" in t for t in texts)  # output kept its idle timer fresh
    assert "timed out after 2 s" in texts
    assert git(repo, "for-each-ref", "refs/aura/saved/")


def test_time_limits_refuse_nonsense() -> None:
    for bad in ("0", "-1", "abc", "1e9"):
        result = run_aura("run", "-e", "custom", "--base-command", "true", "--prompt", "x",
                          "--timeout", bad)
        assert result.returncode == 2, (bad, result.stderr)
        assert "--timeout" in result.stderr and "Traceback" not in result.stderr
