"""git.py and workspace.py against real repositories: worktrees, saving, rollback, odd repos."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from aura import git, workspace
from aura.errors import AuraError, UsageError

from .gitrepo import git as run
from .gitrepo import git_env, make_repo

__all__ = ["git_env"]
pytestmark = pytest.mark.usefixtures("git_env")

SID = "0123abcd-1111-2222-3333-444455556666"


def test_clean_env_strips_git_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path
                                        ) -> None:
    repo = make_repo(tmp_path / "repo")
    other = make_repo(tmp_path / "other")
    # As inside a git hook: every variable points at another repository.
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other))
    monkeypatch.setenv("GIT_INDEX_FILE", str(other / ".git" / "index"))
    monkeypatch.setenv("GIT_OBJECT_DIRECTORY", str(other / ".git" / "objects"))
    env = git.clean_env()
    assert not {"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY"} & set(env)
    assert "GIT_CONFIG_GLOBAL" in env  # config lookup is kept
    assert git.toplevel(repo) == repo.resolve()


def test_branch_name_and_slug() -> None:
    assert workspace.branch_name(SID, "Fix the login bug!") == "aura/0123abcd-fix-the-login-bug"
    assert workspace.slug("???") == "task"
    long = workspace.slug("word " * 30)
    assert len(long) <= 40 and not long.endswith("-")


def test_prepare_single_repo_makes_branch_and_worktree(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    ws = workspace.prepare(SID, "add a feature", [str(repo)])
    (entry,) = ws.repos
    assert entry.branch == "aura/0123abcd-add-a-feature"
    assert entry.base == run(repo, "rev-parse", "HEAD")
    assert entry.base_name == "main"
    assert ws.root == entry.path
    assert Path(ws.root).parent == workspace.workspaces_dir()
    assert (Path(ws.root) / "README.md").read_text() == "hello\n"
    assert run(ws.root, "symbolic-ref", "--short", "HEAD") == entry.branch
    # The user's checkout is untouched.
    assert run(repo, "symbolic-ref", "--short", "HEAD") == "main"
    assert workspace.Workspace.from_json(ws.to_json()) == ws


def test_changes_cover_commits_and_uncommitted_work(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\ntwo\n"})
    ws = workspace.prepare(SID, "task", [str(repo)])
    root = Path(ws.root)
    (root / "a.txt").write_text("one\nTWO\nthree\n")
    run(root, "commit", "-qam", "edit a")
    (root / "new file.txt").write_text("x\n")
    (change,) = workspace.changes(ws)
    assert [c["subject"] for c in change["commits"]] == ["edit a"]
    files = {f["path"]: f for f in change["files"]}
    assert files["a.txt"]["insertions"] == 2 and files["a.txt"]["deletions"] == 1
    assert files["new file.txt"]["status"] == "A"
    assert change["uncommitted"] == [{"path": "new file.txt", "status": "??"}]
    assert "+TWO" in workspace.diff(ws) and "new file.txt" in workspace.diff(ws)
    assert "1 commit" in workspace.changes_text(change)


def test_save_keeps_work_tree_and_index_and_chains_saves(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    ws = workspace.prepare(SID, "task", [str(repo)])
    root = Path(ws.root)
    assert workspace.save(ws, "nothing") == []
    (root / "README.md").write_text("changed\n")
    (root / "untracked.txt").write_text("u\n")
    run(root, "add", "README.md")
    index_before = run(root, "diff", "--cached", "--name-only")
    (first,) = workspace.save(ws, "first save")
    assert first["ref"] == f"refs/aura/saved/{SID}"
    assert run(repo, "show", f"{first['ref']}:untracked.txt") == "u"
    assert run(repo, "show", f"{first['ref']}:README.md") == "changed"
    # Nothing in the work tree or the index moved.
    assert (root / "untracked.txt").exists()
    assert run(root, "diff", "--cached", "--name-only") == index_before
    assert workspace.unsaved(ws) == []
    (root / "untracked.txt").write_text("u2\n")
    assert workspace.unsaved(ws) == [str(repo.resolve())]
    (second,) = workspace.save(ws, "second save")
    parents = run(repo, "rev-list", "--parents", "-n", "1", second["commit"]).split()[1:]
    assert first["commit"] in parents  # the earlier save is still reachable


def test_remove_refuses_unsaved_work_then_force_saves_first(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    ws = workspace.prepare(SID, "task", [str(repo)])
    (Path(ws.root) / "work.txt").write_text("precious\n")
    with pytest.raises(AuraError, match="uncommitted work"):
        workspace.remove(ws)
    assert Path(ws.root).exists()
    removed, saves, _deleted = workspace.remove(ws, force=True)
    assert removed.removed and not Path(ws.root).exists()
    assert run(repo, "show", f"{saves[0]['ref']}:work.txt") == "precious"
    # The branch had no commits: it is gone with its worktree; the saved ref stays.
    assert run(repo, "branch", "--list", "aura/*") == ""


def test_remove_keeps_a_branch_with_commits(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    ws = workspace.prepare(SID, "task", [str(repo)])
    (Path(ws.root) / "c.txt").write_text("c\n")
    run(ws.root, "add", "c.txt")
    run(ws.root, "commit", "-qm", "agent commit")
    workspace.remove(ws)
    assert run(repo, "log", "-1", "--format=%s", ws.repos[0].branch or "") == "agent commit"


def test_multi_repo_workspace_holds_one_worktree_per_repo(tmp_path: Path) -> None:
    a = make_repo(tmp_path / "a")
    b = make_repo(tmp_path / "sub" / "a")  # same directory name: deduplicated
    ws = workspace.prepare(SID, "task", [str(a), str(b)])
    names = sorted(p.name for p in Path(ws.root).iterdir())
    assert names == ["a", "a-2"]
    assert all(r.branch == "aura/0123abcd-task" for r in ws.repos)
    workspace.remove(ws)
    assert not Path(ws.root).exists()


def test_second_of_three_failing_rolls_back_the_first(tmp_path: Path) -> None:
    a = make_repo(tmp_path / "a")
    b = make_repo(tmp_path / "b")
    c = make_repo(tmp_path / "c")
    # A ref that blocks the branch: `aura/0123abcd-task/x` exists, so `aura/0123abcd-task`
    # cannot be created in b (a file/directory conflict in refs).
    run(b, "branch", "aura/0123abcd-task/x")
    with pytest.raises(AuraError, match=f"cannot create a worktree of {b.resolve()}"):
        workspace.prepare(SID, "task", [str(a), str(b), str(c)])
    assert run(a, "branch", "--list", "aura/*") == ""
    assert run(a, "worktree", "list").count("\n") == 0  # only the main checkout
    assert list(workspace.workspaces_dir().iterdir()) == []


def test_repo_without_commits(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "empty", commit=False)
    ws = workspace.prepare(SID, "first files", [str(repo)])
    (Path(ws.root) / "new.txt").write_text("n\n")
    (change,) = workspace.changes(ws)
    assert [f["path"] for f in change["files"]] == ["new.txt"]
    assert git.head(repo) is None  # the user's branch is still unborn


def test_detached_head_and_explicit_base(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    first = run(repo, "rev-parse", "HEAD")
    (repo / "b.txt").write_text("b\n")
    run(repo, "add", "b.txt")
    run(repo, "commit", "-qm", "second")
    run(repo, "checkout", "-q", "--detach", first)
    ws = workspace.prepare(SID, "task", [str(repo)])
    assert ws.repos[0].base == first and ws.repos[0].base_name == "HEAD"
    other = workspace.prepare("99999999-0000-0000-0000-000000000000", "task", [str(repo)],
                              base="main")
    assert (Path(other.root) / "b.txt").exists()
    with pytest.raises(AuraError, match="--base nope"):
        workspace.prepare(SID, "task", [str(repo)], base="nope")


def test_existing_branch_name_gets_a_suffix(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    run(repo, "branch", "aura/0123abcd-task")
    ws = workspace.prepare(SID, "task", [str(repo)])
    assert ws.repos[0].branch == "aura/0123abcd-task-2"


def test_submodule_is_checked_out(tmp_path: Path) -> None:
    lib = make_repo(tmp_path / "lib", {"lib.txt": "library\n"})
    repo = make_repo(tmp_path / "app")
    run(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "lib")
    run(repo, "commit", "-qm", "add lib")
    ws = workspace.prepare(SID, "task", [str(repo)])
    assert (Path(ws.root) / "lib" / "lib.txt").read_text() == "library\n"
    (change,) = workspace.changes(ws)
    assert change["files"] == []
    workspace.remove(ws)


def test_paths_with_spaces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "aura home with spaces"
    home.mkdir()
    monkeypatch.setenv("AURA_HOME", str(home))
    repo = make_repo(tmp_path / "my repo", {"a file.txt": "x\n"})
    ws = workspace.prepare(SID, "task", [str(repo)])
    assert " " in ws.root
    (Path(ws.root) / "a file.txt").write_text("y\n")
    (change,) = workspace.changes(ws)
    assert change["files"][0]["path"] == "a file.txt"
    workspace.remove(ws, force=True)
    assert run(repo, "show", f"refs/aura/saved/{SID}:a file.txt") == "y"


def test_in_place_refuses_dirty_unless_allowed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "README.md").write_text("dirty\n")
    with pytest.raises(AuraError, match="--allow-dirty"):
        workspace.prepare(SID, "task", [str(repo)], in_place=True)
    ws = workspace.prepare(SID, "task", [str(repo)], in_place=True, allow_dirty=True)
    assert ws.root == str(repo.resolve()) and ws.in_place
    with pytest.raises(UsageError):
        workspace.prepare(SID, "task", [str(repo), str(repo)])


def test_not_a_repo(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(AuraError, match="not inside a git repository"):
        workspace.prepare(SID, "task", [str(plain)])
    assert os.listdir(tmp_path / "aura-home") == []


def test_a_same_size_edit_in_the_index_clock_tick_is_in_the_snapshot(tmp_path: Path) -> None:
    # Git trusts a file whose size and mtime match its index entry, unless the file is not
    # older than the index itself ("racily clean"). Here the edit keeps the size and the
    # entry's mtime, and the index was written in that same tick: only the racy check can
    # find it, so the snapshot's copy of the index must keep the index's mtime.
    repo = tmp_path / "repo"
    repo.mkdir()
    # ctime cannot be set back, mtime can: the index is trusted on mtime and size only.
    subprocess.run(["sh", "-c", "git init -q . && git config core.trustctime false && "
                    "echo x > a.txt && git add a.txt && git commit -qm first"],
                   cwd=repo, check=True)
    entry_ns = (repo / "a.txt").stat().st_mtime_ns
    (repo / "a.txt").write_text("y\n")
    os.utime(repo / "a.txt", ns=(entry_ns, entry_ns))
    os.utime(repo / ".git" / "index", ns=(entry_ns, entry_ns))
    tree = git.snapshot_tree(repo)
    assert run(repo, "cat-file", "-p", f"{tree}:a.txt") == "y"
