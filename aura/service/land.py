"""`aura workspace land ID [--squash] [--pr]`: bring a session's work into the branch the
run started from, in the user's own checkout.

Every refusal comes before anything is touched: the session still running, a workspace
that is not one worktree of one repo, a base that was no branch, the user's checkout on
another branch or with uncommitted changes, a merge that would conflict (tested in the
object store only, with ``git merge-tree --write-tree``, on what the worktree holds now).
Then: what is uncommitted in the worktree is committed on its branch (message: the
prompt's first line, the rest its body), and the base branch moves on to the merge (a
fast-forward when the base did not move, else a merge commit; with ``squash`` one new
commit on the base) by ``git merge --ff-only`` of a commit made beforehand, so the
checkout is never left half merged. ``--pr`` pushes the branch and opens a pull request
with ``gh`` instead of merging here.

The other attempts of the session's group are marked not chosen; their branches and
worktrees stay as they are.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from aura import git
from aura.errors import AuraError
from aura.service import workspaces
from aura.store import Store
from aura.workspace import RepoWorkspace


class LandRefused(AuraError):
    """Nothing was changed: the reason says why not."""


@dataclass(frozen=True, slots=True)
class Landed:
    session: str
    branch: str
    base: str  # the base branch's name
    checkout: str  # the user's checkout
    commit: str  # the base branch's new head (or, with --pr, the branch's head)
    committed: str | None  # the commit made of uncommitted work, if any
    how: str  # "fast-forward", "merge", "squash" or "pr"
    pr_url: str | None = None
    not_chosen: tuple[str, ...] = ()


def message_of(prompt: str) -> str:
    """The prompt's first line as the subject, the rest as the body."""
    lines = prompt.strip().splitlines() or ["aura: work of a session"]
    body = "\n".join(lines[1:]).strip()
    return lines[0].strip()[:200] + (f"\n\n{body}\n" if body else "\n")


def _repo_of(store: Store, session_id: str) -> tuple[str, str, RepoWorkspace]:
    session, ws = workspaces.get(store, session_id)
    running = workspaces.running_execution(store, session.id)
    if running is not None:
        raise LandRefused(f"session {session.id[:8]} is running ({running.stage}); wait for "
                          "it or cancel it first")
    if len(ws.repos) != 1:
        raise LandRefused(f"session {session.id[:8]} worked on {len(ws.repos)} repos; land "
                          "lands one worktree of one repo")
    repo = ws.repos[0]
    if repo.in_place or not repo.branch:
        raise LandRefused(f"session {session.id[:8]} worked in the checkout itself; there "
                          "is no branch to land")
    if not git.branch_exists(repo.repo, repo.branch):
        raise LandRefused(f"branch {repo.branch} is gone from {repo.repo}")
    return session.id, session.prompt, repo


def _candidate(repo: RepoWorkspace, message: str) -> tuple[str, bool]:
    """The branch's head as it will be once the worktree's uncommitted work is committed
    (a commit on no ref), and whether there is such work."""
    head = git.rev(repo.repo, f"refs/heads/{repo.branch}")
    assert head is not None
    if ws_missing(repo):
        return head, False
    tree = git.snapshot_tree(repo.path)
    if tree == git.tree_of(repo.path, head):
        return head, False
    return git.commit_tree(repo.path, tree, message, [head]), True


def ws_missing(repo: RepoWorkspace) -> bool:
    return not Path(repo.path).is_dir()


def _check_checkout(repo: RepoWorkspace) -> str:
    """The base branch's head; LandRefused when the checkout is not ready for it."""
    base = repo.base_name
    if base == "HEAD" or not git.branch_exists(repo.repo, base):
        raise LandRefused(f"the run started from a detached HEAD ({repo.base[:12]}), not a "
                          f"branch: merge {repo.branch} by hand")
    current = git.current_branch(repo.repo)
    if current != base:
        raise LandRefused(f"{repo.repo} is on {current or 'a detached HEAD'}, not {base}: "
                          f"`git switch {base}` there first")
    if git.is_dirty(repo.repo):
        raise LandRefused(f"{repo.repo} has uncommitted changes: commit or stash them first")
    _check_identity(repo)
    head = git.rev(repo.repo, f"refs/heads/{base}")
    assert head is not None
    return head


def _check_identity(repo: RepoWorkspace) -> None:
    if not git.has_identity(repo.repo):
        raise LandRefused(f"git does not know who you are in {repo.repo}: set user.name and "
                          "user.email (`git config --global user.email you@example.com`)")


def _shown(paths: list[str]) -> str:
    return ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")


def _test_merge(repo: RepoWorkspace, base_head: str, tip: str) -> str:
    """The merged tree; refused on a conflict, or when the merge would write over files
    the checkout ignores (a merge replaces those silently)."""
    tree, conflicts = git.merge_tree(repo.repo, base_head, tip)
    if tree is None:
        raise LandRefused(f"{repo.branch} conflicts with {repo.base_name} in "
                          f"{_shown(conflicts) or '?'}; nothing was changed")
    paths = [str(f["path"]) for f in git.tree_changes(repo.repo, base_head, tree)]
    ignored = git.ignored_among(repo.repo, paths)
    if ignored:
        raise LandRefused(f"landing {repo.branch} would overwrite ignored files in "
                          f"{repo.repo}: {_shown(ignored)}; move them away first")
    return tree


def land(store: Store, session_id: str, *, squash: bool = False, pr: bool = False
         ) -> Landed:
    """Land the session's work (see the module docstring)."""
    sid, prompt, repo = _repo_of(store, session_id)
    assert repo.branch is not None
    message = message_of(prompt)
    if pr:
        return _open_pr(store, sid, repo, message)
    base_head = _check_checkout(repo)
    tip, dirty = _candidate(repo, message)
    tree = _test_merge(repo, base_head, tip)
    committed = git.commit_all(repo.path, message) if dirty else None
    if committed is not None:
        tip = committed
        tree = _test_merge(repo, base_head, tip)
    if squash:
        target, how = git.user_commit_tree(repo.repo, tree, message, [base_head]), "squash"
    elif git.is_ancestor(repo.repo, base_head, tip):
        target, how = tip, "fast-forward"
    else:
        merge_message = f"Merge branch '{repo.branch}' into {repo.base_name}\n\n{message}"
        target, how = git.user_commit_tree(repo.repo, tree, merge_message,
                                           [base_head, tip]), "merge"
    git.fast_forward(repo.repo, target)
    return Landed(sid, repo.branch, repo.base_name, repo.repo, target, committed, how,
                  not_chosen=_choose(store, sid))


def _open_pr(store: Store, sid: str, repo: RepoWorkspace, message: str) -> Landed:
    assert repo.branch is not None
    gh = shutil.which("gh")
    if gh is None:
        raise LandRefused("--pr needs the GitHub CLI `gh` on PATH (https://cli.github.com); "
                          "nothing was pushed")
    remotes = git.remotes(repo.repo)
    remote = "origin" if "origin" in remotes else remotes[0] if len(remotes) == 1 else None
    if remote is None:
        raise LandRefused(f"{repo.repo} has {'no remote' if not remotes else 'several remotes'}"
                          " and no origin: push the branch by hand")
    _check_identity(repo)
    tip, dirty = _candidate(repo, message)
    committed = git.commit_all(repo.path, message) if dirty else None
    git.push_branch(repo.repo, remote, repo.branch)
    subject, _, body = message.partition("\n")
    proc = git.gh_pr_create(gh, repo.repo, repo.branch, repo.base_name, subject,
                            body.strip())
    if proc.returncode != 0:
        why = (proc.stderr.strip() or proc.stdout.strip() or f"exit {proc.returncode}")
        raise AuraError(f"pushed {repo.branch} to {remote}, but `gh pr create` failed: "
                        f"{why.splitlines()[-1]}")
    url = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else None
    return Landed(sid, repo.branch, repo.base_name, repo.repo, committed or tip, committed,
                  "pr", pr_url=url, not_chosen=_choose(store, sid))


def _choose(store: Store, session_id: str) -> tuple[str, ...]:
    """Mark the session its group's chosen attempt; the others' session ids."""
    attempt = store.attempt_of(session_id)
    if attempt is None:
        return ()
    store.choose_attempt(attempt.group, session_id)
    return tuple(a.session for a in store.attempts(attempt.group) if a.session != session_id)
