"""Safe defaults: one rule for where the agent works in a repo, and a reviewer that cannot
write (read-only where the agent allows it, detected and saved apart where not), never run
on nothing."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from aura.contracts import State
from aura.executors import registry
from aura.executors.base import Approvals, RunRequest
from aura.service.pipeline import Orchestrator, ReviewPlan
from aura.store import MemoryStore

from .conftest import run_aura
from .gitrepo import agent_base_command, git, git_env, make_repo
from .test_orchestrator import NoAgent, ScriptedHost, _plan, _session

__all__ = ["git_env"]
pytestmark = pytest.mark.usefixtures("git_env")

WRITER = "open('agent.txt', 'a').write('work\\n')\nprint('wrote agent.txt')\n"
# A reviewer that edits the code it reviews, then approves.
MEDDLER = """\
open("README.md", "a").write("30 lines the reviewer slipped in\\n")
print("VERDICT: approve")
"""


def last(stdout: str) -> dict[str, Any]:
    return json.loads(stdout.strip().splitlines()[-1])


def entries(session: str) -> list[dict[str, Any]]:
    return json.loads(run_aura("session", "show", session, "--json").stdout)["entries"]


# where the agent works ------------------------------------------------------------------

def test_run_from_inside_a_repo_makes_a_worktree_like_cwd_does(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "README.md").write_text("the user's uncommitted edit\n")
    agent = agent_base_command(tmp_path / "agent.py", WRITER)
    for extra in ((), ("--cwd", str(repo))):
        done = run_aura("run", "-e", "custom", "--base-command", agent, "--prompt", "x",
                        "--json", *extra, cwd=repo)
        assert done.returncode == 0, done.stderr
        sid = last(done.stdout)["session"]
        (announced,) = [e["text"] for e in entries(sid) if e["kind"] == "system"
                        and e["text"].startswith("workspace:")]
        assert "in worktree" in announced and "checkout is untouched" in announced
    # The checkout kept the user's edit and got nothing of the agent's.
    assert not (repo / "agent.txt").exists()
    assert (repo / "README.md").read_text() == "the user's uncommitted edit\n"
    assert git(repo, "status", "--porcelain") == "M README.md"


def test_in_place_is_refused_when_dirty_unless_allowed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "README.md").write_text("dirty\n")
    agent = agent_base_command(tmp_path / "agent.py", WRITER)
    refused = run_aura("run", "-e", "custom", "--base-command", agent, "--prompt", "x",
                       "--in-place", cwd=repo)
    assert refused.returncode == 1 and "uncommitted changes" in refused.stderr
    assert not (repo / "agent.txt").exists()
    allowed = run_aura("run", "-e", "custom", "--base-command", agent, "--prompt", "x",
                       "--in-place", "--allow-dirty", "--json", cwd=repo)
    assert allowed.returncode == 0, allowed.stderr
    assert (repo / "agent.txt").read_text() == "work\n"
    texts = [e.get("text", "") for e in entries(last(allowed.stdout)["session"])]
    assert any("in place, in the checkout itself" in t for t in texts)


# the reviewer --------------------------------------------------------------------------------

def review_run(tmp_path: Path, repo: Path | None, coder: str, reviewer: str
               ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    marker = tmp_path / "reviewer-ran"
    source = f"open({str(marker)!r}, 'w').close()\n" + reviewer
    review_cmd = agent_base_command(tmp_path / "reviewer.py", source)
    (tmp_path / "cfg.toml").write_text(
        f"[review]\nexecutor = \"custom\"\nbase_command = {json.dumps(review_cmd)}\n")
    where = ["--repo", str(repo)] if repo else []
    if repo:
        (repo / ".aura.toml").write_text((tmp_path / "cfg.toml").read_text())
        git(repo, "add", ".aura.toml")
        git(repo, "commit", "-qm", "review config")
    else:
        where = ["--review-executor", "custom"]
    done = run_aura("run", "-e", "custom", "--base-command",
                    agent_base_command(tmp_path / "coder.py", coder), "--review",
                    "--prompt", "x", "--json", *where)
    assert done.returncode == 0, done.stderr
    result = last(done.stdout)
    result["reviewer_ran"] = marker.exists()
    return result, entries(result["session"])


def test_a_reviewer_that_writes_is_reported_and_saved_apart(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    result, found = review_run(tmp_path, repo, WRITER, MEDDLER)
    assert result["reviewer_ran"]
    # Its approval does not count: the session waits in review for a person.
    assert result["state"] == "review"
    (wrote,) = [e for e in found if e["kind"] == "error"]
    ref = f"refs/aura/saved/{result['session']}.reviewer"
    assert ref in wrote["text"] and "README.md" in wrote["text"]
    assert git(repo, "show", f"{ref}:README.md").endswith("the reviewer slipped in")
    assert any("has no read-only mode" in e.get("text", "") for e in found)


def test_no_review_of_an_empty_diff_or_without_a_workspace(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    nothing = "print('I changed nothing')\n"
    result, found = review_run(tmp_path, repo, nothing, "print('VERDICT: approve')\n")
    assert not result["reviewer_ran"] and result["state"] == "done"
    assert any(e.get("text") == "review skipped: the agent changed nothing" for e in found)
    outside = tmp_path / "plain"
    outside.mkdir()
    result, found = review_run(outside, None, WRITER, "print('VERDICT: approve')\n")
    assert not result["reviewer_ran"] and result["state"] == "done"
    assert any("review skipped: there is no workspace" in e.get("text", "") for e in found)


class ReadOnlyCapable(NoAgent):
    read_only_mode = "test"


class RecordingHost(ScriptedHost):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[RunRequest] = []

    async def run_agent(self, executor: Any, request: RunRequest, output: Any) -> Any:
        self.requests.append(request)
        return await super().run_agent(executor, request, output)


def test_the_reviewer_runs_read_only_without_the_coders_approvals() -> None:
    store = MemoryStore()
    host = RecordingHost()
    plan = _plan(True)
    request = RunRequest(prompt="task", cwd="/here", session_id="s1", execution_id="",
                         approvals=Approvals(yolo=True))
    plan.review = lambda project: ReviewPlan(ReadOnlyCapable(), request)
    finished = asyncio.run(Orchestrator(store, host, _session(store)).run(plan))
    assert finished.state is State.DONE
    coder, reviewer = host.requests
    assert not coder.read_only
    assert reviewer.read_only and reviewer.approvals == Approvals()


@pytest.mark.parametrize(("name", "wanted", "unwanted"), [
    ("codex", ["--sandbox", "read-only"], "--dangerously-bypass-approvals-and-sandbox"),
    ("claude", ["--permission-mode", "plan"], "--dangerously-skip-permissions"),
    ("droid", [], "--skip-permissions-unsafe"),
])
def test_read_only_maps_to_each_agents_own_mode(name: str, wanted: list[str],
                                                unwanted: str) -> None:
    executor = registry.load(name)()
    assert executor.read_only_mode
    request = RunRequest(prompt="review", cwd=".", session_id="s", execution_id="e",
                         program=sys.executable, approvals=Approvals(yolo=True),
                         read_only=True)
    argv = executor.build_command(request).argv
    assert unwanted not in argv and "--auto" not in argv
    if wanted:
        i = argv.index(wanted[0])
        assert argv[i:i + len(wanted)] == wanted


def test_opencode_read_only_denies_edits_and_commands() -> None:
    executor = registry.load("opencode")()
    request = RunRequest(prompt="review", cwd=".", session_id="s", execution_id="e",
                         program=sys.executable, approvals=Approvals(yolo=True),
                         read_only=True)
    config = json.loads(executor.build_command(request).env["OPENCODE_CONFIG_CONTENT"])
    assert config["permission"]["edit"] == "deny" and config["permission"]["bash"] == "deny"


def test_an_acp_reviewer_is_refused_writes_even_when_the_coder_had_yolo(tmp_path: Path
                                                                        ) -> None:
    from .test_acp import fake, recorded

    repo = make_repo(tmp_path / "repo")
    review_record = tmp_path / "review.jsonl"
    reviewer = fake(review_record, "gemini-acp", flags=("--permission",))
    (repo / ".aura.toml").write_text(f"[review]\nexecutor = \"gemini\"\n"
                                     f"base_command = {json.dumps(reviewer)}\n")
    git(repo, "add", ".aura.toml")
    git(repo, "commit", "-qm", "review config")
    done = run_aura("run", "-e", "gemini", "--yolo", "--review", "--prompt", "p", "--json",
                    "--base-command", fake(tmp_path / "coder.jsonl", "gemini-acp",
                                           flags=("--permission",)),
                    "--setup", "echo change > setup.txt", "--repo", str(repo))
    assert done.returncode == 0, done.stderr
    coder_answers = [m for m in recorded(tmp_path / "coder.jsonl")[1]
                     if "method" not in m and m.get("id") == 9001]
    assert coder_answers[0]["result"]["outcome"]["optionId"] == "proceed_once"
    starts, received = recorded(review_record)
    answers = [m for m in received if "method" not in m and m.get("id") == 9001]
    assert answers[0]["result"] == {"outcome": {"outcome": "selected", "optionId": "cancel"}}
    assert "--yolo" not in starts[0]["argv"]
    texts = [e.get("text", "") for e in entries(last(done.stdout)["session"])]
    assert any("the review is read-only" in t for t in texts)
