"""Every git call aura makes, with a clean environment, and the primitives built on them.

Contract:

- ``run_git`` never inherits ``GIT_DIR``, ``GIT_WORK_TREE``, ``GIT_INDEX_FILE`` or any other
  ``GIT_*`` variable (aura may itself run inside a git hook, where git exports them and
  they would silently point every command at the wrong repository). Kept are only the
  variables that configure transport and config lookup, as pre-commit's ``no_git_env``
  does. Prompts are disabled: aura is headless.
- Nothing here ever runs ``reset --hard``, ``checkout -f`` or ``clean``. Uncommitted work is
  *snapshotted* without touching the work tree or the real index (``git add -A`` into a
  temporary index, ``write-tree``, ``commit-tree``) and the commit is stored on a ref under
  ``refs/aura/``; the previous value of that ref stays a parent, so saving twice loses
  nothing either.
- Paths are passed as separate argv elements (spaces are fine) and output that lists paths
  is read with ``-z``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from aura.errors import AuraError, GitError

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
SAVED_PREFIX = "refs/aura/saved/"
# Identity of the commits aura itself writes (snapshots, the root of an empty repo): they
# live on aura's own refs, and the user may have no identity configured at all.
AURA_IDENTITY = {"GIT_AUTHOR_NAME": "aura", "GIT_AUTHOR_EMAIL": "aura@localhost",
                 "GIT_COMMITTER_NAME": "aura", "GIT_COMMITTER_EMAIL": "aura@localhost"}

_KEEP = frozenset({
    "GIT_EXEC_PATH", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_SSL_CAINFO", "GIT_SSL_NO_VERIFY",
    "GIT_CONFIG_COUNT", "GIT_HTTP_PROXY_AUTHMETHOD", "GIT_ALLOW_PROTOCOL", "GIT_ASKPASS",
    # Where config is read from (not which repository is used).
    "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM",
    # Who the user is, for the commits `aura workspace land` makes in their name.
    "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL",
})


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """os.environ without the GIT_* variables that redirect git, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GIT_") or k in _KEEP
           or k.startswith(("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_"))}
    env["GIT_TERMINAL_PROMPT"] = "0"
    if extra:
        env.update(extra)
    return env


def run_git(args: list[str], cwd: str | Path, *, check: bool = True,
            env: dict[str, str] | None = None, input: str | None = None
            ) -> subprocess.CompletedProcess[str]:
    """Run ``git ARGS`` in ``cwd``; a failure (with ``check``) is a GitError with stderr."""
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, env=clean_env(env), input=input,
                              capture_output=True, text=True, encoding="utf-8",
                              errors="surrogateescape",
                              stdin=None if input is not None else subprocess.DEVNULL)
    except FileNotFoundError:
        raise GitError("git is not installed (or not on PATH)") from None
    except NotADirectoryError:
        raise GitError(f"not a directory: {cwd}") from None
    if check and proc.returncode != 0:
        message = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise GitError(f"git {args[0]} failed in {cwd}: "
                       f"{message[-1] if message else f'exit {proc.returncode}'}")
    return proc


def _out(args: list[str], cwd: str | Path, **kw: object) -> str:
    return run_git(args, cwd, **kw).stdout.strip()  # type: ignore[arg-type]


# reading ------------------------------------------------------------------------------------

def toplevel(path: str | Path) -> Path:
    """The root of the work tree containing ``path``; AuraError if it is not in one."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise AuraError(f"{path} is not a directory")
    proc = run_git(["rev-parse", "--show-toplevel"], path, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise AuraError(f"{path} is not inside a git repository (git init it, or drop --repo)")
    return Path(proc.stdout.strip()).resolve()


def rev(repo: str | Path, name: str) -> str | None:
    """The commit ``name`` points to, or None (unborn HEAD, unknown name)."""
    proc = run_git(["rev-parse", "--verify", "--quiet", f"{name}^{{commit}}"], repo,
                   check=False)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def head(repo: str | Path) -> str | None:
    """HEAD's commit, or None in a repository without commits."""
    return rev(repo, "HEAD")


def current_branch(repo: str | Path) -> str | None:
    """The checked-out branch's short name, None when HEAD is detached."""
    proc = run_git(["symbolic-ref", "--quiet", "--short", "HEAD"], repo, check=False)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def branch_exists(repo: str | Path, branch: str) -> bool:
    return run_git(["show-ref", "--verify", "--quiet", f"refs/heads/{branch}"], repo,
                   check=False).returncode == 0


def unique_branch(repo: str | Path, wanted: str) -> str:
    """``wanted``, or ``wanted-2``, ``wanted-3``… if a branch of that name exists."""
    name, n = wanted, 1
    while branch_exists(repo, name):
        n += 1
        name = f"{wanted}-{n}"
    return name


def git_path(repo: str | Path, name: str) -> Path:
    """A path inside the repository's (per-worktree) git dir, e.g. ``index``."""
    out = _out(["rev-parse", "--git-path", name], repo)
    path = Path(out)
    return path if path.is_absolute() else Path(repo) / path


@dataclass(frozen=True, slots=True)
class StatusLine:
    code: str  # the two porcelain status letters, e.g. " M", "??", "A "
    path: str


def status(repo: str | Path) -> list[StatusLine]:
    """Uncommitted changes (tracked and untracked, ignored files excluded)."""
    out = run_git(["status", "--porcelain=v1", "-z", "--untracked-files=all"], repo).stdout
    items = out.split("\0")
    lines: list[StatusLine] = []
    i = 0
    while i < len(items):
        item = items[i]
        i += 1
        if len(item) < 4:
            continue
        code, path = item[:2], item[3:]
        if code[0] in "RC":
            i += 1  # the rename's source path follows
        lines.append(StatusLine(code, path))
    return lines


def nested_repos(repo: str | Path) -> list[str]:
    """Untracked directories of the work tree that are git repositories of their own
    (``git status`` shows them as one ``dir/`` entry), as paths ending in ``/``."""
    return [s.path for s in status(repo) if s.code == "??" and s.path.endswith("/")
            and (Path(repo) / s.path / ".git").exists()]


def snapshot_tree(repo: str | Path) -> str:
    """The tree of the work tree as it is now, untracked files included (ignored ones not),
    written without touching the work tree or the real index.

    A nested repository with no commits cannot be recorded as a gitlink (``git add`` fails
    on it); it is left out here and saved on its own (see save_nested)."""
    index = git_path(repo, "index")
    with tempfile.TemporaryDirectory(prefix="aura-index-") as tmp:
        tmp_index = Path(tmp) / "index"
        if index.exists():
            # Starting from the real index keeps its stat cache: `add -A` then only
            # re-reads files that changed. The copy keeps the index's mtime too: git
            # re-reads an entry whose file is not older than the index ("racily clean"),
            # and a fresh mtime would hide a same-size edit made within the same clock
            # tick as the index was written.
            shutil.copy2(index, tmp_index)
        env = {"GIT_INDEX_FILE": str(tmp_index)}
        proc = run_git(["add", "-A", "--", "."], repo, env=env, check=False)
        if proc.returncode != 0:
            unborn = [p for p in nested_repos(repo) if head(Path(repo) / p) is None]
            if not unborn:
                run_git(["add", "-A", "--", "."], repo, env=env)  # raises git's own error
            run_git(["add", "-A", "--", ".", *(f":(exclude){p}" for p in unborn)], repo,
                    env=env)
        return _out(["write-tree"], repo, env=env)


def tree_of(repo: str | Path, commit: str | None) -> str:
    return _out(["rev-parse", f"{commit}^{{tree}}"], repo) if commit else EMPTY_TREE


def is_dirty(repo: str | Path) -> bool:
    """Whether the work tree differs from HEAD (tracked or untracked, not ignored)."""
    return bool(status(repo))


def saved_ref(session_id: str) -> str:
    return SAVED_PREFIX + session_id


def work_state(repo: str | Path, ref: str) -> tuple[str, str]:
    """("clean" | "saved" | "unsaved", tree of the work tree now): clean when it matches
    HEAD, saved when that exact tree is already on ``ref``. One snapshot, reusable by
    save_work."""
    tree = snapshot_tree(repo)
    if tree == tree_of(repo, head(repo)):
        return "clean", tree
    saved = rev(repo, ref)
    if saved is not None and tree_of(repo, saved) == tree:
        return "saved", tree
    return "unsaved", tree


def save_work(repo: str | Path, ref: str, message: str, tree: str | None = None, *,
              owner: str | Path | None = None) -> str | None:
    """Commit the work tree's uncommitted state onto ``ref`` without changing the work tree,
    the index or HEAD. Returns the new commit, or None when there was nothing to save (a
    clean tree, or this exact state already on ``ref``).
    ``tree``: a snapshot just taken (work_state), to avoid taking it twice. ``owner``: the
    session's own repository, where the ref is written (``repo`` is its worktree; the caller
    has checked with check_worktree that both share one object store).

    Parents: HEAD (so ``git diff REF^ REF`` is exactly the unsaved work) and the ref's
    previous value, if any (so an earlier save is never lost)."""
    tree = tree or snapshot_tree(repo)
    head_commit = head(repo)
    if tree == tree_of(repo, head_commit):
        return None
    previous = rev(repo, ref)
    if previous is not None and tree_of(repo, previous) == tree:
        return None  # this exact state is already saved
    commit = commit_tree(repo, tree, message, [head_commit, previous])
    run_git(["update-ref", "-m", message, ref, commit], owner or repo)
    return commit


def commit_tree(repo: str | Path, tree: str, message: str,
                parents: list[str | None]) -> str:
    """A commit of ``tree`` (by aura's own identity) with the given parents, on no ref."""
    args = ["commit-tree", tree, "-m", message]
    for parent in dict.fromkeys(p for p in parents if p):
        args += ["-p", parent]
    return _out(args, repo, env=AURA_IDENTITY)


def work_saved(repo: str | Path, ref: str) -> bool:
    """True when the work tree is clean or its exact state is already on ``ref``."""
    return work_state(repo, ref)[0] != "unsaved"


def empty_root_commit(repo: str | Path, message: str = "aura: empty root") -> str:
    """A commit with the empty tree and no parent (a base for a repo with no commits)."""
    return _out(["commit-tree", EMPTY_TREE, "-m", message], repo, env=AURA_IDENTITY)


# whose work tree is it -------------------------------------------------------------------

def common_dir(path: str | Path) -> Path | None:
    """The shared git dir of the repository ``path`` belongs to (None: none)."""
    proc = run_git(["rev-parse", "--path-format=absolute", "--git-common-dir"], path,
                   check=False)
    out = proc.stdout.strip()
    return Path(out).resolve() if proc.returncode == 0 and out else None


def check_worktree(repo: str | Path, path: str | Path) -> None:
    """Refuse to touch ``path`` unless it is the top of a work tree of ``repo``: with its
    ``.git`` file gone, git would find whatever repository encloses it instead."""
    found = run_git(["rev-parse", "--show-toplevel"], path, check=False).stdout.strip()
    ours = common_dir(repo)
    if (found and Path(found).resolve() == Path(path).resolve()
            and ours is not None and common_dir(path) == ours):
        return
    admin = _worktree_admin(ours, Path(path)) if ours is not None else None
    fix = (f"put it back with `printf 'gitdir: {admin}\\n' > '{path}/.git'`" if admin
           else f"repair it with `git -C '{repo}' worktree repair '{path}'`")
    raise AuraError(f"{path} is no longer a git worktree of {repo} (its .git is missing or "
                    f"points elsewhere); nothing was saved or removed: {fix}, and try again")


def _worktree_admin(common: Path, path: Path) -> Path | None:
    """The directory in ``common``/worktrees that belongs to the worktree at ``path``."""
    wanted = (path / ".git").resolve()
    for gitdir in sorted((common / "worktrees").glob("*/gitdir")):
        try:
            if Path(gitdir.read_text().strip()).resolve() == wanted:
                return gitdir.parent
        except OSError:
            continue
    return None


# worktrees --------------------------------------------------------------------------------

def worktree_add(repo: str | Path, path: str | Path, branch: str, base: str) -> None:
    """Create ``branch`` at ``base`` and check it out in a new worktree at ``path``."""
    run_git(["worktree", "add", "--quiet", "--no-track", "-b", branch, str(path), base], repo)


def worktree_remove(repo: str | Path, path: str | Path) -> None:
    """Remove a worktree. The caller has saved any work first; ``--force`` is needed only
    because git refuses trees with untracked or modified files, which are saved by then."""
    run_git(["worktree", "remove", "--force", str(path)], repo)
    run_git(["worktree", "prune"], repo, check=False)


def delete_branch_if_unused(repo: str | Path, branch: str, base: str) -> bool:
    """Delete ``branch`` only if it still points at ``base`` (it holds no commits)."""
    if rev(repo, branch) != base:
        return False
    run_git(["update-ref", "-d", f"refs/heads/{branch}", base], repo)
    return True


def has_submodules(path: str | Path) -> bool:
    return (Path(path) / ".gitmodules").is_file()


def submodule_update(path: str | Path) -> None:
    """Check out the submodules of a new worktree. Local-path submodule URLs need the file
    protocol, which git refuses for submodules by default; this is the user's own repo."""
    run_git(["-c", "protocol.file.allow=always", "submodule", "update", "--init",
             "--recursive", "--quiet"], path)


# what changed ------------------------------------------------------------------------------

def commits_since(repo: str | Path, base: str) -> list[dict[str, str]]:
    """Commits on HEAD that are not on ``base``, oldest first."""
    out = run_git(["log", "--reverse", "-z", "--format=%H%x00%s", f"{base}..HEAD"], repo,
                  check=False).stdout
    parts = out.strip("\0").split("\0") if out.strip("\0") else []
    return [{"sha": parts[i], "subject": parts[i + 1]} for i in range(0, len(parts) - 1, 2)]


_NUMSTAT = re.compile(r"^(-|\d+)\t(-|\d+)\t")


def tree_changes(repo: str | Path, base: str, tree: str) -> list[dict[str, object]]:
    """Files that differ between ``base`` and ``tree``: path, status, +/- lines."""
    base_tree = tree_of(repo, base)
    names = run_git(["diff-tree", "-r", "-z", "--no-renames", "--name-status", base_tree,
                     tree], repo).stdout.split("\0")
    statuses = {names[i + 1]: names[i] for i in range(0, len(names) - 1, 2)}
    stats = run_git(["diff-tree", "-r", "-z", "--no-renames", "--numstat", base_tree, tree],
                    repo).stdout
    files: list[dict[str, object]] = []
    for record in stats.split("\0"):
        match = _NUMSTAT.match(record)
        if not match:
            continue
        path = record[match.end():]
        added, deleted = match.groups()
        files.append({"path": path, "status": statuses.get(path, "M"),
                      "insertions": int(added) if added != "-" else 0,
                      "deletions": int(deleted) if deleted != "-" else 0,
                      "binary": added == "-"})
    return files


def diff_text(repo: str | Path, base: str, tree: str, limit: int = 200_000) -> str:
    """The patch from ``base`` to ``tree``, cut at ``limit`` characters with a note."""
    text = run_git(["diff-tree", "-p", "-r", "--no-color", tree_of(repo, base), tree],
                   repo).stdout
    if len(text) > limit:
        return text[:limit] + f"\n… [diff cut: {len(text) - limit} more characters]\n"
    return text


# landing a branch (service/land.py) -----------------------------------------------------------

def merge_tree(repo: str | Path, ours: str, theirs: str) -> tuple[str | None, list[str]]:
    """Merge ``theirs`` into ``ours`` in the object store only (``merge-tree
    --write-tree``, git ≥ 2.38): (the merged tree, []) when clean, (None, conflicted
    paths) when not. Nothing in any work tree, index or ref changes."""
    proc = run_git(["merge-tree", "--write-tree", "--name-only", "--no-messages", ours,
                    theirs], repo, check=False)
    lines = proc.stdout.splitlines()
    if proc.returncode == 0 and lines:
        return lines[0].strip(), []
    if proc.returncode == 1 and lines:
        return None, [line for line in lines[1:] if line.strip()]
    message = (proc.stderr.strip() or f"exit {proc.returncode}").splitlines()[-1]
    raise GitError(f"cannot test the merge in {repo} (git merge-tree --write-tree needs "
                   f"git 2.38 or newer): {message}")


def has_identity(repo: str | Path) -> bool:
    """Whether git knows who commits here (user.name/user.email, or the environment)."""
    return all(run_git(["var", name], repo, check=False).returncode == 0
               for name in ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT"))


def is_ancestor(repo: str | Path, ancestor: str, commit: str) -> bool:
    return run_git(["merge-base", "--is-ancestor", ancestor, commit], repo,
                   check=False).returncode == 0


def commit_all(repo: str | Path, message: str) -> str:
    """Commit everything uncommitted in the work tree (``add -A``, ignored files aside)
    with the user's own identity; the new HEAD."""
    run_git(["add", "-A", "--", "."], repo)
    run_git(["commit", "-q", "--no-verify", "-F", "-"], repo, input=message)
    return _out(["rev-parse", "HEAD"], repo)


def user_commit_tree(repo: str | Path, tree: str, message: str, parents: list[str]) -> str:
    """A commit of ``tree`` with the user's own identity, on no ref."""
    args = ["commit-tree", tree, "-F", "-"]
    for parent in parents:
        args += ["-p", parent]
    return run_git(args, repo, input=message).stdout.strip()


def fast_forward(repo: str | Path, commit: str) -> None:
    """Move the checked-out branch (and the work tree) on to ``commit``, a descendant;
    git refuses, changing nothing, if an untracked file is in the way."""
    run_git(["merge", "--ff-only", "-q", commit], repo)


def remotes(repo: str | Path) -> list[str]:
    return _out(["remote"], repo).split()


def push_branch(repo: str | Path, remote: str, branch: str) -> None:
    run_git(["push", "-q", "-u", remote, f"refs/heads/{branch}:refs/heads/{branch}"], repo)


def gh_pr_create(gh: str, repo: str | Path, head: str, base: str, title: str, body: str
                 ) -> subprocess.CompletedProcess[str]:
    """``gh pr create`` for a pushed branch (the GitHub CLI at ``gh``), not checked."""
    return subprocess.run([gh, "pr", "create", "--head", head, "--base", base, "--title",
                           title, "--body", body], cwd=repo, capture_output=True, text=True,
                          env=clean_env(), stdin=subprocess.DEVNULL)


def ignored_among(repo: str | Path, paths: list[str]) -> list[str]:
    """Those of ``paths`` that are ignored files in the work tree now (git would overwrite
    them without a word when a merge brings tracked files there)."""
    if not paths:
        return []
    out = run_git(["ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--",
                   *(f":(literal){p}" for p in paths)], repo).stdout
    return [p for p in out.split("\0") if p]
