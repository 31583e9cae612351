"""Workspaces: where a session's agent works, made of git worktrees of one or many repos.

Contract:

- ``prepare`` makes, for each repo, a branch ``aura/<8-hex>-<slug-of-prompt>`` from the
  repo's HEAD (or ``base``) and a worktree of it under ``data_dir()/workspaces``. One repo:
  the agent runs in that worktree. Several: in a directory holding one worktree per repo.
  ``in_place`` uses the checkout itself (refused when dirty unless ``allow_dirty``).
  If any repo fails, the worktrees and branches already made are removed again (they are
  fresh: nothing of the user's is in them) and the error names the repo.
- ``save`` snapshots uncommitted work of every repo onto ``refs/aura/saved/<session>``
  (see git.save_work), and nested repositories next to it (workspace_keep), and reports
  where it went; ``remove`` refuses unsaved work, unsaved nested repositories and big
  ignored files unless ``force``, and even then saves first; it always keeps commits only
  the worktree reached and small ignored files. Branches with commits are always kept.
- Refs are written only in the session's own repo, after checking that each worktree
  still belongs to it (git.check_worktree).
- A ``Workspace`` is plain data (to_json/from_json): the service stores it with the session.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from aura import git
from aura import workspace_keep as keep
from aura.errors import AuraError, GitError, UsageError


@dataclass(frozen=True, slots=True)
class RepoWorkspace:
    repo: str  # the user's checkout (its top level)
    path: str  # where the agent works on it: the worktree, or the checkout when in place
    branch: str | None  # the branch checked out at ``path`` (None: detached, in place)
    base: str  # the commit the work started from
    base_name: str  # what the user called it: a branch name, or "HEAD" when detached
    in_place: bool = False
    name: str = ""  # directory name inside a multi-repo workspace


@dataclass(frozen=True, slots=True)
class Workspace:
    session: str
    root: str  # the directory the agent runs in
    repos: tuple[RepoWorkspace, ...] = ()
    removed: bool = False
    saved: dict[str, str] = field(default_factory=dict)  # repo → last saved commit

    @property
    def in_place(self) -> bool:
        return any(r.in_place for r in self.repos)

    @property
    def ref(self) -> str:
        return git.saved_ref(self.session)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["repos"] = [asdict(r) for r in self.repos]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Workspace:
        return cls(session=data["session"], root=data["root"],
                   repos=tuple(RepoWorkspace(**r) for r in data.get("repos", ())),
                   removed=bool(data.get("removed", False)),
                   saved=dict(data.get("saved", {})))


def slug(text: str, limit: int = 40) -> str:
    """A branch-safe slug of the first words of ``text`` ("task" when nothing is left)."""
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    cut = words[:limit].rstrip("-")
    if len(words) > limit and "-" in cut:
        cut = cut.rsplit("-", 1)[0]  # end on a whole word
    return cut or "task"


def branch_name(session_id: str, prompt: str) -> str:
    return f"aura/{session_id.replace('-', '')[:8]}-{slug(prompt)}"


def workspaces_dir() -> Path:
    from aura.paths import data_dir

    return data_dir() / "workspaces"


def _unique_dir(parent: Path, name: str) -> Path:
    path, n = parent / name, 1
    while path.exists():
        n += 1
        path = parent / f"{name}-{n}"
    return path


def prepare(session_id: str, prompt: str, repos: list[str], *, base: str | None = None,
            in_place: bool = False, allow_dirty: bool = False) -> Workspace:
    """Create the workspace of a session (see the module docstring)."""
    if not repos:
        raise UsageError("a workspace needs at least one repo")
    tops: list[Path] = []
    for repo in repos:
        top = git.toplevel(repo)
        if top in tops:
            raise UsageError(f"--repo {repo} is given twice (it is {top})")
        tops.append(top)
    if in_place:
        if len(tops) > 1:
            raise UsageError("--in-place works on one repo; drop it to get worktrees")
        return _in_place(session_id, tops[0], base, allow_dirty)
    branch = branch_name(session_id, prompt)
    leaf = branch.split("/", 1)[1]
    parent = workspaces_dir()
    parent.mkdir(parents=True, exist_ok=True)
    root = _unique_dir(parent, leaf)
    made: list[RepoWorkspace] = []
    try:
        if len(tops) > 1:
            root.mkdir()
        names: set[str] = set()
        for top in tops:
            name = top.name
            n = 1
            while name in names:
                n += 1
                name = f"{top.name}-{n}"
            names.add(name)
            path = root / name if len(tops) > 1 else root
            made.append(_add_worktree(top, path, branch, base, name))
    except BaseException as exc:
        _rollback(made, root)
        if isinstance(exc, GitError):
            failed = tops[len(made)]
            undone = f" (undid {len(made)} worktree(s) already made)" if made else ""
            raise AuraError(f"cannot create a worktree of {failed}: {exc}{undone}") from None
        raise
    return Workspace(session=session_id, root=str(root), repos=tuple(made))


def _add_worktree(top: Path, path: Path, wanted: str, base: str | None,
                  name: str) -> RepoWorkspace:
    if base is not None:
        commit = git.rev(top, base)
        if commit is None:
            raise AuraError(f"--base {base} is not a branch or commit of {top}")
        base_name = base
    else:
        commit = git.head(top)
        base_name = git.current_branch(top) or "HEAD"
        if commit is None:
            # A repository without commits has nothing to branch from: give the new
            # branch an empty root commit (the user's own branch is left unborn).
            commit = git.empty_root_commit(top)
    branch = git.unique_branch(top, wanted)
    git.worktree_add(top, path, branch, commit)
    made = RepoWorkspace(repo=str(top), path=str(path), branch=branch, base=commit,
                         base_name=base_name, name=name)
    if git.has_submodules(path):
        try:
            git.submodule_update(path)
        except GitError:
            _rollback([made], None)
            raise
    return made


def _in_place(session_id: str, top: Path, base: str | None, allow_dirty: bool) -> Workspace:
    if base is not None:
        raise UsageError("--base makes a new branch; it cannot be used with --in-place")
    if not allow_dirty and git.is_dirty(top):
        raise AuraError(f"{top} has uncommitted changes; commit or stash them, or pass "
                        "--allow-dirty to let the agent work on top of them")
    commit = git.head(top) or git.empty_root_commit(top)
    branch = git.current_branch(top)
    repo = RepoWorkspace(repo=str(top), path=str(top), branch=branch, base=commit,
                         base_name=branch or "HEAD", in_place=True, name=top.name)
    return Workspace(session=session_id, root=str(top), repos=(repo,))


def _rollback(made: list[RepoWorkspace], root: Path | None) -> None:
    """Undo freshly made worktrees and branches (best effort: the first error wins)."""
    for repo in reversed(made):
        try:
            git.worktree_remove(repo.repo, repo.path)
        except GitError:
            pass
        if repo.branch:
            try:
                git.delete_branch_if_unused(repo.repo, repo.branch, repo.base)
            except GitError:
                pass
    if root is not None and root.is_dir() and not any(root.iterdir()):
        root.rmdir()


# after the agent ---------------------------------------------------------------------------

def changes(ws: Workspace) -> list[dict[str, Any]]:
    """Per repo: files changed since the base (committed or not), +/- lines, the commits
    made, and what is still uncommitted."""
    out = []
    for repo in ws.repos:
        path = Path(repo.path)
        if not path.is_dir():
            continue
        tree = git.snapshot_tree(path)
        files = git.tree_changes(path, repo.base, tree)
        uncommitted = [{"path": s.path, "status": s.code} for s in git.status(path)]
        out.append({
            "type": "changes", "repo": repo.repo, "name": repo.name, "path": repo.path,
            "branch": repo.branch, "base": repo.base, "base_name": repo.base_name,
            "files": files,
            "insertions": sum(int(f["insertions"]) for f in files),  # type: ignore[call-overload]
            "deletions": sum(int(f["deletions"]) for f in files),  # type: ignore[call-overload]
            "commits": git.commits_since(path, repo.base),
            "uncommitted": uncommitted,
        })
    return out


def changes_text(change: dict[str, Any]) -> str:
    """One line per repo: ``name (branch): 3 files, +10 -2, 1 commit, 2 uncommitted``."""
    files = len(change["files"])
    commits = len(change["commits"])
    return (f"{change['name']} ({change['branch'] or change['base_name']}): "
            f"{files} file{'s' * (files != 1)}, +{change['insertions']} "
            f"-{change['deletions']}, {commits} commit{'s' * (commits != 1)}, "
            f"{len(change['uncommitted'])} uncommitted")


def diff(ws: Workspace) -> str:
    """The patch of every repo from its base to the work tree as it is now."""
    parts = []
    for repo in ws.repos:
        path = Path(repo.path)
        if not path.is_dir():
            continue
        text = git.diff_text(path, repo.base, git.snapshot_tree(path))
        if len(ws.repos) > 1 and text:
            text = f"# repo {repo.name} ({repo.repo})\n{text}"
        parts.append(text)
    return "".join(parts)


def save(ws: Workspace, message: str) -> list[dict[str, str]]:
    """Save every repo's uncommitted work on ``refs/aura/saved/<session>``, and each nested
    repository's on its own ref (workspace_keep); returns ``[{"repo", "ref", "commit"}]``
    for what had something to save. A worktree that is no longer one of its repo is
    refused (AuraError) rather than saved into whatever repository encloses it."""
    saved = []
    for repo in ws.repos:
        if not Path(repo.path).is_dir():
            continue
        git.check_worktree(repo.repo, repo.path)
        saved += keep.save_nested(repo.repo, repo.path, ws.ref, message)
        commit = git.save_work(repo.path, ws.ref, message, owner=repo.repo)
        if commit is not None:
            saved.append({"repo": repo.repo, "ref": ws.ref, "commit": commit})
    return saved


def fingerprint(ws: Workspace) -> dict[str, list[str | None]]:
    """Per repo: [HEAD, tree of the work tree]; equal fingerprints mean nothing was written
    in between (used around the review, which must not write)."""
    return {r.repo: [git.head(r.path), git.snapshot_tree(r.path)] for r in ws.repos
            if Path(r.path).is_dir()}


def save_apart(ws: Workspace, before: dict[str, list[str | None]], ref: str, message: str
               ) -> list[dict[str, Any]]:
    """Save each repo that changed since ``before`` (a fingerprint) on ``ref`` (a commit of
    the work tree now; parents: HEAD now and the ref's previous value). The work tree is
    left as it is. Returns ``[{"repo", "ref", "commit", "files"}]``."""
    out: list[dict[str, Any]] = []
    for r in ws.repos:
        if not Path(r.path).is_dir() or r.repo not in before:
            continue
        git.check_worktree(r.repo, r.path)
        head, tree = git.head(r.path), git.snapshot_tree(r.path)
        old_head, old_tree = before[r.repo]
        if [head, tree] == [old_head, old_tree]:
            continue
        files = [str(f["path"]) for f in git.tree_changes(r.path, old_tree or git.EMPTY_TREE,
                                                          tree)]
        commit = git.commit_tree(r.path, tree, message, [head, git.rev(r.repo, ref)])
        git.run_git(["update-ref", "-m", message, ref, commit], r.repo)
        out.append({"repo": r.repo, "ref": ref, "commit": commit, "files": files,
                    "committed": head != old_head})
    return out


def unsaved(ws: Workspace) -> list[str]:
    """Repos (and nested repos) whose uncommitted work is not saved yet."""
    out = []
    for r in ws.repos:
        if not Path(r.path).is_dir():
            continue
        try:
            git.check_worktree(r.repo, r.path)
        except AuraError:
            out.append(f"{r.repo} (its worktree {r.path} is broken)")
            continue
        if not git.work_saved(r.path, ws.ref):
            out.append(r.repo)
        out += [f"{r.repo}: nested repo {rel.rstrip('/')}"
                for rel, kept in keep.nested_state(r.repo, r.path, ws.ref) if not kept]
    return out


def with_saves(ws: Workspace, saves: list[dict[str, str]]) -> Workspace:
    merged = dict(ws.saved)
    merged.update({s["repo"]: s["commit"] for s in saves})
    return replace(ws, saved=merged)


@dataclass(frozen=True, slots=True)
class _Findings:
    """What removing one repo's worktree would destroy."""

    repo: RepoWorkspace
    state: str
    tree: str
    nested: list[tuple[str, bool]]
    ignored: keep.Ignored

    def problems(self, ref: str) -> list[str]:
        out = []
        if self.state == "unsaved":
            out.append(f"uncommitted work in {self.repo.repo}")
        out += [f"nested repo {rel.rstrip('/')} in {self.repo.path} (a repository of its "
                "own: removing the worktree deletes its commits and files)"
                for rel, kept in self.nested if not kept]
        if self.ignored.paths and not self.ignored.small:
            out.append(f"{len(self.ignored.paths)} ignored files in {self.repo.path} "
                       f"({self.ignored.size // 1024} KiB, too big to save: "
                       f"{self.ignored.named()})")
        return out


def _findings(ws: Workspace, repo: RepoWorkspace) -> _Findings:
    git.check_worktree(repo.repo, repo.path)
    state, tree = git.work_state(repo.path, ws.ref)
    if repo.in_place:  # the user's checkout stays: only its uncommitted work is saved
        return _Findings(repo, state, tree, [], keep.Ignored((), 0))
    return _Findings(repo, state, tree, keep.nested_state(repo.repo, repo.path, ws.ref),
                     keep.ignored(repo.path))


def remove(ws: Workspace, *, force: bool = False
           ) -> tuple[Workspace, list[dict[str, str]], list[str]]:
    """Remove the worktrees (never the user's checkout) after saving what needs saving.

    Refused without ``force``, naming each: uncommitted work, nested repositories not saved
    yet, ignored files too big to save. With ``force`` everything but those ignored files is
    saved first. Always, without asking: commits only the worktree's HEAD or reflog reached
    are kept on refs, small ignored files are saved. Branches that hold commits stay; a
    branch still at its base is deleted with its worktree.
    Returns the workspace, the saves made and the ignored files deleted (one line each)."""
    if ws.removed:
        raise AuraError(f"workspace {ws.session[:8]} is already removed")
    found = [_findings(ws, r) for r in ws.repos if Path(r.path).is_dir()]
    problems = [p for f in found for p in f.problems(ws.ref)]
    if problems and not force:
        raise AuraError("; ".join(problems) + "; commit it, or pass --force to save what "
                        f"can be saved on {ws.ref}… and remove the workspace")
    saves: list[dict[str, str]] = []
    deleted: list[str] = []
    message = f"aura: saved before removing workspace of session {ws.session}"
    for f in found:
        owner, path = f.repo.repo, f.repo.path
        saves += keep.save_nested(owner, path, ws.ref, message)
        if f.state == "unsaved":
            commit = git.save_work(path, ws.ref, message, f.tree, owner=owner)
            if commit is not None:
                saves.append({"repo": owner, "ref": ws.ref, "commit": commit})
        if f.repo.in_place:
            continue
        saves += keep.keep_commits(owner, path, ws.ref, message)
        if f.ignored.paths and f.ignored.small:
            saves.append(keep.save_ignored(owner, path, ws.ref, f.ignored, message))
        elif f.ignored.paths:
            deleted.append(f"deleted {len(f.ignored.paths)} ignored files in {path}: "
                           f"{f.ignored.named()}")
    for repo in ws.repos:
        if repo.in_place or not Path(repo.path).exists():
            continue
        git.worktree_remove(repo.repo, repo.path)
        if repo.branch:
            git.delete_branch_if_unused(repo.repo, repo.branch, repo.base)
    root = Path(ws.root)
    if not ws.in_place and root.is_dir() and not any(root.iterdir()):
        root.rmdir()  # the holder of a multi-repo workspace; anything else in it stays
    return replace(with_saves(ws, saves), removed=True), saves, deleted
