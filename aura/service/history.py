"""Removing history (`aura session rm | prune`, `aura workspace prune`) without losing
work: a session that runs is refused, and so is one whose workspace holds work that is not
saved (uncommitted changes not on ``refs/aura/saved/<session>``, unsaved nested
repositories, commits only the worktree's HEAD or reflog reaches). A saved workspace goes
with its session (its branch and saved refs stay in the repo); a workspace whose session
is gone is pruned only when its work tree is clean or saved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aura import git
from aura import workspace as ws_module
from aura import workspace_keep as keep
from aura.contracts import Session, State
from aura.errors import AuraError
from aura.service.ledger import workspace_of
from aura.service.workspaces import running_execution
from aura.store import Store
from aura.workspace import Workspace


def _busy(store: Store, session: Session) -> str | None:
    """Why the session cannot be removed now (it runs, waits to run), or None."""
    if running_execution(store, session.id) is not None or \
            any(c.session == session.id for c in store.claims()):
        return f"session {session.id[:8]} is running; stop it with `aura session cancel " \
               f"{session.id[:8]}` first"
    if not (session.state.is_final or session.state == State.REVIEW):
        return f"session {session.id[:8]} is {session.state}; cancel it with `aura " \
               f"session cancel {session.id[:8]}` first"
    return None


def unsaved_work(ws: Workspace) -> list[str]:
    """What of the workspace is not saved anywhere but in its worktrees."""
    if ws.removed:
        return []
    out = list(ws_module.unsaved(ws))
    for repo in ws.repos:
        if Path(repo.path).is_dir() and not repo.in_place:
            lost = keep.lost_commits(repo.repo, repo.path)
            if lost:
                out.append(f"{repo.repo}: {len(lost)} commit(s) on no branch "
                           f"({', '.join(c[:10] for c in lost[:3])})")
    return out


def check_removable(store: Store, session: Session) -> None:
    """Refuse (one line) a session that runs or whose workspace has unsaved work."""
    busy = _busy(store, session)
    if busy:
        raise AuraError(busy)
    ws = workspace_of(session)
    if ws is None:
        return
    found = unsaved_work(ws)
    if found:
        short = session.id[:8]
        raise AuraError(f"session {short} has unsaved work in its workspace ({'; '.join(found)}); "
                        f"save it with `aura workspace save {short}` (or commit it on a "
                        f"branch), or remove the workspace with `aura workspace remove "
                        f"{short} --force`, then try again")


def remove_sessions(store: Store, sessions: Sequence[Session], *, dry_run: bool = False
                    ) -> list[str]:
    """Remove the sessions, each after ``check_removable`` (all are checked before any is
    removed), with their saved workspaces; returns one line per workspace removed."""
    for session in sessions:
        check_removable(store, session)
    waited = {a for t in store.tasks(pending=True) for a in t.after} - \
        {s.id for s in sessions}
    for session in sessions:
        if session.id in waited:
            raise AuraError(f"session {session.id[:8]} is waited for by a queued task "
                            "(`aura task list`); remove or release that task first")
    if dry_run:
        return []
    notes = []
    for session in sessions:
        ws = workspace_of(session)
        if ws is not None and not ws.removed:
            ws_module.remove(ws)  # saved already: this keeps branches and saved refs
            notes.append(f"removed the workspace of session {session.id[:8]} ({ws.root}); "
                         f"its branch and {ws.ref} stay in the repo")
    store.delete_sessions([s.id for s in sessions])
    return notes


def prune_candidates(store: Store, older_than: str, state: str | None) -> list[Session]:
    """Final sessions last updated before ``older_than`` (a stored timestamp), of ``state``
    when given, oldest first."""
    found = [s for s in store.list_sessions()
             if s.state.is_final and s.updated_at < older_than and
             (state is None or s.state == state)]
    return sorted(found, key=lambda s: s.updated_at)


# workspace prune ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Pruned:
    path: str
    session: str | None  # None: a workspace whose session is gone
    removed: bool
    why: str  # why it was kept, or what was removed


def prune_workspaces(store: Store, *, dry_run: bool = False) -> list[Pruned]:
    """Remove the workspaces of finished sessions whose work is saved, and workspace
    directories whose session is gone when their work tree is clean or saved."""
    out: list[Pruned] = []
    roots: set[str] = set()
    for session in store.list_sessions():
        ws = workspace_of(session)
        if ws is None:
            continue
        roots.add(str(Path(ws.root).resolve()))
        if ws.removed or ws.in_place:
            continue
        if not session.state.is_final:
            out.append(Pruned(ws.root, session.id, False, f"session is {session.state}"))
            continue
        out.append(_prune_known(store, session, ws, dry_run))
    parent = ws_module.workspaces_dir()
    for path in sorted(parent.iterdir()) if parent.is_dir() else []:
        if path.is_dir() and str(path.resolve()) not in roots:
            out.append(_prune_orphan(path, dry_run))
    return out


def _prune_known(store: Store, session: Session, ws: Workspace, dry_run: bool) -> Pruned:
    short = session.id[:8]
    found = unsaved_work(ws)
    if found:
        return Pruned(ws.root, session.id, False,
                      f"unsaved work ({'; '.join(found)}): `aura workspace save {short}` "
                      f"or `aura workspace remove {short} --force`")
    if not dry_run:
        from aura.service.workspaces import remove

        remove(store, session.id)
    return Pruned(ws.root, session.id, True, "work saved or merged")


def _orphan_trees(path: Path) -> list[Path]:
    if (path / ".git").exists():
        return [path]
    return [p for p in sorted(path.iterdir()) if p.is_dir() and (p / ".git").exists()]


def _saved_trees(owner: Path) -> set[str]:
    out = git.run_git(["for-each-ref", "--format=%(objectname)^{tree}",
                       git.SAVED_PREFIX.rstrip("/")], owner, check=False).stdout.split()
    if not out:
        return set()
    return set(git.run_git(["rev-parse", *out], owner, check=False).stdout.split())


def _orphan_problem(tree_path: Path) -> tuple[Path | None, str | None]:
    """(owner repo, why it cannot be pruned or None) of a worktree with no session."""
    common = git.common_dir(tree_path)
    if common is None:
        return None, "not a git worktree; look at it and remove it by hand"
    owner = common.parent
    try:
        git.check_worktree(owner, tree_path)
    except AuraError:
        return owner, f"its .git does not lead back to {owner}; repair it with `git -C " \
                      f"'{owner}' worktree repair '{tree_path}'`"
    if git.nested_repos(tree_path):
        return owner, "it holds nested repositories; look at them and remove it by hand"
    tree = git.snapshot_tree(tree_path)
    if tree != git.tree_of(tree_path, git.head(tree_path)) and \
            tree not in _saved_trees(owner):
        return owner, f"uncommitted work; commit it (`git -C '{tree_path}' commit -a`) " \
                      "or remove it by hand"
    lost = keep.lost_commits(owner, tree_path)
    if lost:
        return owner, f"{len(lost)} commit(s) on no branch; put them on one " \
                      f"(`git -C '{tree_path}' branch NAME`)"
    return owner, None


def _prune_orphan(path: Path, dry_run: bool) -> Pruned:
    trees = _orphan_trees(path)
    if not trees:
        return Pruned(str(path), None, False, "no git worktree in it; remove it by hand")
    checked = [(t, *_orphan_problem(t)) for t in trees]
    problems = [f"{t}: {why}" for t, _owner, why in checked if why]
    if problems:
        return Pruned(str(path), None, False, "; ".join(problems))
    if not dry_run:
        for tree_path, owner, _why in checked:
            assert owner is not None
            git.worktree_remove(owner, tree_path)
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return Pruned(str(path), None, True, "its session is gone and its work is saved")
