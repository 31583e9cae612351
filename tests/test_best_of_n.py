"""Best-of-N with real processes and real repos: `aura run -e custom --attempts 3` of a
fake agent (tests/agents/attempt_agent.py) whose attempts each write another solution,
with a check that passes for one of them; `aura compare` ranks it first, and `aura
workspace land` merges exactly its branch into the checkout's base branch. Land refuses
a conflicting change, a dirty checkout, another branch and --pr without gh, leaving the
repo byte-identical."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from .conftest import agent_command, run_aura
from .gitrepo import git, git_env, make_repo

__all__ = ["git_env"]
pytestmark = pytest.mark.usefixtures("git_env")  # slow: conftest.SLOW_MODULES
CHECK = 'test "$(cat solution.txt)" = 2'


def best_of_three(tmp_path: Path) -> tuple[Path, str, list[dict]]:
    repo = make_repo(tmp_path / "repo")
    result = run_aura("run", "-e", "custom", "--attempts", "3", "--no-tui",
                      "--base-command", agent_command("attempt_agent.py",
                                                      str(tmp_path / "counter")),
                      "--check", CHECK, "write the solution\n\nwith a body", cwd=repo)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    group = lines[0]
    assert len(lines) == 4 and all(line.startswith("#") for line in lines[1:]), lines
    shown = run_aura("compare", group[:8], "--json", cwd=repo)
    assert shown.returncode == 0, shown.stderr
    return repo, group, json.loads(shown.stdout)["attempts"]


def snapshot(repo: Path) -> dict[str, object]:
    """What must not change when land refuses: refs, HEAD, status, every file's bytes."""
    index = Path(git(repo, "rev-parse", "--path-format=absolute", "--git-path", "index"))
    files = {str(p.relative_to(repo)): p.read_bytes() for p in sorted(repo.rglob("*"))
             if p.is_file() and ".git" not in p.relative_to(repo).parts}
    return {"head": git(repo, "rev-parse", "HEAD"), "branch": git(repo, "branch",
                                                                  "--show-current"),
            "refs": git(repo, "for-each-ref", "--format=%(refname) %(objectname)"),
            "status": git(repo, "status", "--porcelain=v1", "--untracked-files=all"),
            "index": index.read_bytes(), "files": files}


def worktree_of(store_row: dict, home: Path) -> Path:
    found = [p for p in (home / "workspaces").iterdir()
             if p.name.startswith(store_row["session"][:8])]
    assert len(found) == 1
    return found[0]


def test_best_of_three_ranks_the_passing_attempt_first_and_lands_exactly_it(
        tmp_path: Path, aura_home: Path) -> None:
    repo, group, rows = best_of_three(tmp_path)
    best = rows[0]
    assert best["checks"] == [{"command": CHECK, "exit_code": 0}]
    assert all(r["checks"][0]["exit_code"] != 0 for r in rows[1:])
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert (worktree_of(best, aura_home) / "solution.txt").read_text() == "2\n"
    assert all(r["files"] == 1 and r["insertions"] == 1 for r in rows)
    assert best["cost_usd"] == 0.02 and best["output_tokens"] == 20  # from its usage entry
    assert [r["cost_usd"] for r in rows[1:]] == [0.01, 0.03]  # failing: cheaper first
    others = {r["branch"]: git(repo, "rev-parse", r["branch"]) for r in rows[1:]}
    base = git(repo, "rev-parse", "main")

    landed = run_aura("workspace", "land", best["session"][:8], cwd=repo)
    assert landed.returncode == 0, landed.stderr
    assert (repo / "solution.txt").read_text() == "2\n"
    assert git(repo, "rev-parse", "main") == git(repo, "rev-parse", best["branch"])
    assert git(repo, "rev-parse", "main^") == base  # exactly its one commit, on top
    assert git(repo, "log", "-1", "--format=%B", "main") == "write the solution\n\nwith a body"
    assert git(repo, "status", "--porcelain") == ""
    assert {b: git(repo, "rev-parse", b) for b in others} == others  # their work stays
    after = json.loads(run_aura("compare", group, "--json", cwd=repo).stdout)["attempts"]
    chosen = {r["session"]: r["chosen"] for r in after}
    assert chosen[best["session"]] is True
    assert [chosen[r["session"]] for r in rows[1:]] == [False, False]
    table = run_aura("compare", group[:6], cwd=repo).stdout
    assert "landed" in table and table.count("not chosen") == 2


def test_land_refuses_conflicts_a_dirty_checkout_and_another_branch_touching_nothing(
        tmp_path: Path, aura_home: Path) -> None:
    repo, _group, rows = best_of_three(tmp_path)
    target = rows[0]
    worktree = worktree_of(target, aura_home)
    (repo / "solution.txt").write_text("mine\n")
    git(repo, "add", "solution.txt")
    git(repo, "commit", "-q", "-m", "a solution of my own")
    cases = [("conflicts with main in solution.txt", lambda: None)]
    cases.append(("has uncommitted changes",
                  lambda: (repo / "README.md").write_text("edited, not committed\n")))
    cases.append(("is on other, not main", lambda: (
        git(repo, "checkout", "-q", "--", "README.md"), git(repo, "switch", "-qc", "other"))))
    for reason, prepare in cases:
        prepare()
        before, tree_before = snapshot(repo), snapshot(worktree)
        result = run_aura("workspace", "land", target["session"], cwd=repo)
        assert result.returncode == 1
        assert reason in result.stderr and len(result.stderr.strip().splitlines()) == 1, \
            result.stderr
        assert snapshot(repo) == before
        assert snapshot(worktree) == tree_before  # not even committed there


def test_squash_lands_one_new_commit_on_the_base(tmp_path: Path) -> None:
    repo, _group, rows = best_of_three(tmp_path)
    base = git(repo, "rev-parse", "main")
    (repo / "other.txt").write_text("moved on\n")
    git(repo, "add", "other.txt")
    git(repo, "commit", "-q", "-m", "the base moved on")
    moved = git(repo, "rev-parse", "main")
    result = run_aura("workspace", "land", rows[0]["session"][:8], "--squash", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert "squash" in result.stdout
    assert git(repo, "rev-parse", "main^") == moved  # one commit, one parent
    assert git(repo, "rev-list", "--count", f"{base}..main") == "2"
    assert (repo / "solution.txt").read_text() == "2\n"
    assert git(repo, "log", "-1", "--format=%s", "main") == "write the solution"
    assert git(repo, "status", "--porcelain") == ""


def test_pr_without_gh_says_so_and_pushes_nothing(tmp_path: Path) -> None:
    repo, _group, rows = best_of_three(tmp_path)
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    git_path = shutil.which("git")
    assert git_path is not None
    (bin_dir / "git").symlink_to(git_path)
    os.symlink("/bin/sh", bin_dir / "sh")
    before = snapshot(repo)
    result = run_aura("workspace", "land", rows[0]["session"][:8], "--pr", cwd=repo,
                      env={"PATH": str(bin_dir)})
    assert result.returncode == 1
    assert "`gh` on PATH" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert snapshot(repo) == before
    assert git(remote, "for-each-ref") == ""


def test_a_single_run_stores_its_check_and_task_add_queues_a_group(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    agent = agent_command("attempt_agent.py", str(tmp_path / "counter"))
    result = run_aura("run", "-e", "custom", "--base-command", agent, "--json",
                      "--check", "echo checking; echo boom >&2; exit 3", "go", cwd=repo)
    assert result.returncode == 0, result.stderr
    entries = [json.loads(line) for line in result.stdout.splitlines()]
    checks = [e for e in entries if (e.get("data") or {}).get("type") == "check"]
    assert len(checks) == 1 and checks[0]["data"]["exit_code"] == 3
    assert "boom" in checks[0]["data"]["tail"] and "checking" in checks[0]["data"]["tail"]
    assert entries[-1]["kind"] == "summary" and entries[-1]["state"] == "done"

    queued = run_aura("task", "add", "-e", "custom", "-e", "custom", "--base-command",
                      agent, "--check", CHECK, "--prompt", "queued pair", cwd=repo)
    assert queued.returncode == 0, queued.stderr
    group, *attempts = queued.stdout.splitlines()
    assert [a.split()[0] for a in attempts] == ["#1", "#2"]
    ran = run_aura("queue", "run", "--poll", "0.05", "--until-idle", cwd=repo)
    assert ran.returncode == 0, ran.stderr
    rows = json.loads(run_aura("compare", group, "--json").stdout)["attempts"]
    assert sorted(r["state"] for r in rows) == ["done", "done"]
    assert rows[0]["checks"][0]["exit_code"] == 0  # the counter gave it 2: it ranks first


def test_bad_group_and_attempt_references_are_one_line(tmp_path: Path) -> None:
    repo, group, _rows = best_of_three(tmp_path)
    for args, text in ((("compare", "nope"), "no group 'nope'"),
                       (("compare", group, "--diff", "1", "9"), "attempts 1..3, not 9"),
                       (("compare", group, "--diff", "zzzz", "1"), "names no attempt"),
                       (("compare", group, "--diff", "zz", "1"), "too short")):
        result = run_aura(*args, cwd=repo)
        assert result.returncode != 0 and text in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    newest = run_aura("compare", cwd=repo)
    assert newest.returncode == 0 and newest.stdout.startswith(f"group {group[:8]}")
    both = run_aura("compare", group, "--diff", "1", "2", cwd=repo)
    assert both.returncode == 0 and both.stdout.count("=== #") == 2
    assert "+2" in both.stdout and "+1" in both.stdout


def test_land_refuses_to_overwrite_an_ignored_file_of_the_checkout(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    agent = agent_command("attempt_agent.py", str(tmp_path / "counter"))
    result = run_aura("run", "-e", "custom", "--base-command", agent, "--no-tui", "go",
                      cwd=repo)
    assert result.returncode == 0, result.stderr
    session = run_aura("session", "latest", "--json").stdout
    session_id = json.loads(session)["id"]
    (repo / ".gitignore").write_text("solution.txt\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore solutions")
    (repo / "solution.txt").write_text("precious, and ignored\n")
    before = snapshot(repo)
    landed = run_aura("workspace", "land", session_id[:8], cwd=repo)
    assert landed.returncode == 1
    assert "would overwrite ignored files" in landed.stderr and "solution.txt" in \
        landed.stderr
    assert snapshot(repo) == before
    assert (repo / "solution.txt").read_text() == "precious, and ignored\n"


def test_detached_attempts_run_in_the_background_one_slot_at_a_time(tmp_path: Path) -> None:
    import time

    from .conftest import TIMEOUT_FACTOR

    repo = make_repo(tmp_path / "repo")
    assert run_aura("config", "set", "max_parallel", "1").returncode == 0
    agent = agent_command("attempt_agent.py", str(tmp_path / "counter"))
    started = run_aura("run", "-d", "-e", "custom", "-e", "custom", "--base-command", agent,
                       "--check", CHECK, "in the background", cwd=repo)
    assert started.returncode == 0, started.stderr
    group = started.stdout.strip()
    deadline = time.monotonic() + 60 * TIMEOUT_FACTOR
    rows: list[dict] = []
    while time.monotonic() < deadline:
        rows = json.loads(run_aura("compare", group, "--json").stdout)["attempts"]
        if all(r["state"] in ("done", "failed") for r in rows):
            break
        time.sleep(0.3)
    assert sorted(r["state"] for r in rows) == ["done", "done"], rows
    spans = []
    for r in rows:
        shown = json.loads(run_aura("session", "show", r["session"], "--json").stdout)
        coding = [e for e in shown["executions"] if e["stage"] == "coding_initial"]
        spans.append((coding[0]["started_at"], coding[0]["ended_at"]))
    spans.sort()
    assert spans[0][1] <= spans[1][0]  # max_parallel 1: the second began after the first
