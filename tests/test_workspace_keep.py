"""Nothing a worktree holds is lost by `workspace remove`: nested repositories, commits only
its detached HEAD reached, ignored files; refs go only into the session's own repo."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from aura import git, workspace
from aura.errors import AuraError

from .conftest import run_aura
from .gitrepo import git as run
from .gitrepo import git_env, make_repo

__all__ = ["git_env"]
pytestmark = pytest.mark.usefixtures("git_env")

SID = "0123abcd-1111-2222-3333-444455556666"
SAVED = git.saved_ref(SID)


def fsck_dangling_commits(repo: Path) -> list[str]:
    out = subprocess.run(["git", "fsck", "--no-reflogs", "--unreachable"], cwd=repo,
                         capture_output=True, text=True).stdout
    return [line.split()[2] for line in out.splitlines() if line.startswith("unreachable commit")]


def nested_repo(root: Path, *, commit: bool = True) -> Path:
    inner = root / "inner"
    inner.mkdir()
    run(inner, "init", "-q", "-b", "main")
    (inner / "done.txt").write_text("committed in the nested repo\n")
    if commit:
        run(inner, "add", "done.txt")
        run(inner, "commit", "-qm", "nested work")
        (inner / "done.txt").write_text("modified after the commit\n")
    (inner / "new.txt").write_text("untracked in the nested repo\n")
    return inner


def test_nested_repo_is_refused_by_name_then_saved_with_force(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    ws = workspace.prepare(SID, "task", [str(repo)])
    inner = nested_repo(Path(ws.root))
    nested_commit = run(inner, "rev-parse", "HEAD")
    # The outer tree records only a gitlink: saving it used to count the work as saved.
    workspace.save(ws, "first save")
    (inner / "later.txt").write_text("after the save\n")
    with pytest.raises(AuraError, match="nested repo inner"):
        workspace.remove(ws)
    assert (inner / "later.txt").exists()
    _removed, saves, _deleted = workspace.remove(ws, force=True)
    assert not Path(ws.root).exists()
    ref = f"{SAVED}.nested/inner/work"
    assert ref in {s["ref"] for s in saves}
    # Its files, as they were, and its own commits (the branch and the WIP's parent).
    assert run(repo, "show", f"{ref}:done.txt") == "modified after the commit"
    assert run(repo, "show", f"{ref}:new.txt") == "untracked in the nested repo"
    assert run(repo, "show", f"{ref}:later.txt") == "after the save"
    assert run(repo, "rev-parse", f"{SAVED}.nested/inner/heads/main") == nested_commit
    assert run(repo, "rev-parse", f"{ref}^") == nested_commit


def test_saved_nested_repo_lets_remove_go_without_force(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    ws = workspace.prepare(SID, "task", [str(repo)])
    nested_repo(Path(ws.root))
    assert any("nested repo inner" in u for u in workspace.unsaved(ws))
    workspace.save(ws, "end of run")
    assert workspace.unsaved(ws) == []
    workspace.remove(ws)
    assert run(repo, "show", f"{SAVED}.nested/inner/work:new.txt") == \
        "untracked in the nested repo"


def test_nested_repo_without_commits_does_not_break_saves(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    ws = workspace.prepare(SID, "task", [str(repo)])
    nested_repo(Path(ws.root), commit=False)
    (Path(ws.root) / "outer.txt").write_text("outer work\n")
    # git add -A fails on it ("does not have a commit checked out"): every save failed.
    assert workspace.changes(ws)[0]["files"][0]["path"] == "outer.txt"
    saves = workspace.save(ws, "end of run")
    assert {s["ref"] for s in saves} == {SAVED, f"{SAVED}.nested/inner/work"}
    assert run(repo, "show", f"{SAVED}:outer.txt") == "outer work"
    assert run(repo, "show", f"{SAVED}.nested/inner/work:done.txt") == \
        "committed in the nested repo"
    workspace.remove(ws)
    assert not Path(ws.root).exists()


def test_detached_head_commits_stay_reachable(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    ws = workspace.prepare(SID, "task", [str(repo)])
    run(ws.root, "checkout", "-q", "--detach")
    (Path(ws.root) / "d.txt").write_text("detached\n")
    run(ws.root, "add", "d.txt")
    run(ws.root, "commit", "-qm", "on a detached head")
    first = run(ws.root, "rev-parse", "HEAD")
    run(ws.root, "checkout", "-q", "--detach", "HEAD~1")
    (Path(ws.root) / "e.txt").write_text("second\n")
    run(ws.root, "add", "e.txt")
    run(ws.root, "commit", "-qm", "another detached commit")
    second = run(ws.root, "rev-parse", "HEAD")
    _removed, saves, _deleted = workspace.remove(ws)  # clean tree: no --force needed
    kept = {s["commit"]: s["ref"] for s in saves}
    assert kept == {first: f"{SAVED}.commits/{first[:12]}",
                    second: f"{SAVED}.commits/{second[:12]}"}
    assert fsck_dangling_commits(repo) == []
    assert run(repo, "log", "-1", "--format=%s", kept[first]) == "on a detached head"


def test_ignored_files_small_are_saved_big_ones_need_force(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {".gitignore": "*.log\nbuild/\n", "a.py": "x\n"})
    ws = workspace.prepare(SID, "task", [str(repo)])
    root = Path(ws.root)
    (root / "run.log").write_text("log line\n")
    (root / "build").mkdir()
    (root / "build" / "out.o").write_bytes(b"\0" * 100)
    _removed, saves, deleted = workspace.remove(ws)
    (ignored,) = saves
    assert ignored["ref"] == f"{SAVED}.ignored" and deleted == []
    assert run(repo, "show", f"{SAVED}.ignored:run.log") == "log line"
    assert run(repo, "cat-file", "-s", f"{SAVED}.ignored:build/out.o") == "100"

    ws2 = workspace.prepare(SID.replace("0123", "9999"), "task", [str(repo)])
    big = Path(ws2.root) / "build"
    big.mkdir()
    (big / "huge.bin").write_bytes(b"\0" * (2 << 20))
    with pytest.raises(AuraError, match=r"ignored files in .*build/huge\.bin"):
        workspace.remove(ws2)
    assert (big / "huge.bin").exists()
    _removed, _saves, deleted = workspace.remove(ws2, force=True)
    assert deleted and "build/huge.bin" in deleted[0]


def test_broken_worktree_inside_another_repo_gets_no_refs(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    outer = make_repo(tmp_path / "outer")
    monkeypatch.setenv("AURA_HOME", str(outer / "aura-home"))
    repo = make_repo(tmp_path / "repo")
    ws = workspace.prepare(SID, "task", [str(repo)])
    assert Path(ws.root).is_relative_to(outer)
    (Path(ws.root) / "work.txt").write_text("precious\n")
    (Path(ws.root) / ".git").unlink()
    for attempt in (lambda: workspace.save(ws, "m"), lambda: workspace.remove(ws, force=True)):
        with pytest.raises(AuraError, match="no longer a git worktree") as refused:
            attempt()
    assert run(outer, "for-each-ref", "refs/aura") == ""
    assert (Path(ws.root) / "work.txt").read_text() == "precious\n"
    # The error says how to put the .git file back; doing so makes the work savable.
    fix = str(refused.value).split("`")[1]
    subprocess.run(["sh", "-c", fix], check=True)
    workspace.remove(ws, force=True)
    assert run(repo, "show", f"{SAVED}:work.txt") == "precious"


def test_cli_remove_names_nested_repo_and_says_where_it_went(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    agent = tmp_path / "agent.sh"
    agent.write_text("git init -q inner && echo wip > inner/f.txt\n")
    done = run_aura("run", "--executor", "custom", "--base-command", f"sh {agent}",
                    "--prompt", "x", "--repo", str(repo), "--no-tui", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["state"] == "done"
    session = summary["session"]
    (Path(json.loads(run_aura("workspace", "list", "--json").stdout)[0]["root"]) / "inner" /
     "g.txt").write_text("later\n")
    refused = run_aura("workspace", "remove", session)
    assert refused.returncode == 1 and "nested repo inner" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    forced = run_aura("workspace", "remove", session, "--force")
    assert forced.returncode == 0, forced.stderr
    assert f"refs/aura/saved/{session}.nested/inner/work" in forced.stderr
    assert run(repo, "show", f"refs/aura/saved/{session}.nested/inner/work:g.txt") == "later"
