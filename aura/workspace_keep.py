"""What a worktree holds beyond its own tree, which `git worktree remove` would destroy:
nested repositories, commits only its HEAD or reflog reaches, and ignored files.

Every ref this writes is next to the session's ``refs/aura/saved/<session>`` and is written
in the session's own repository (``owner``), never in whatever repository git finds from the
worktree's path:

- ``<saved>.nested/<path>/work``: a nested repository's work tree as a commit (its HEAD, if
  it has one, is the parent), ``<saved>.nested/<path>/heads/*``: its branches;
- ``<saved>.commits/<sha12>``: a commit the worktree reached (detached HEAD, reflog) that no
  branch, tag or aura ref holds;
- ``<saved>.ignored``: the ignored files, when they are small (``SMALL_IGNORED``).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from aura import git

# Ignored files are saved when they are at most this many and this big in total; larger
# ones (node_modules, build trees) are named and need --force to be deleted.
SMALL_IGNORED = (200, 1 << 20)


def _component(path: str) -> str:
    """A nested repo's path as one ref name component (no '/', no leading '.')."""
    text = quote(path.rstrip("/"), safe="-_")
    return text.replace(".", "%2E") if text.startswith(".") else text


def nested_ref(saved: str, path: str) -> str:
    return f"{saved}.nested/{_component(path)}"


# nested repositories --------------------------------------------------------------------

def nested_work(path: Path) -> tuple[str, str | None]:
    """(tree of a nested repo's work tree, its HEAD or None): objects in its own store."""
    return git.snapshot_tree(path), git.head(path)


def nested_state(owner: str | Path, worktree: str | Path, saved: str
                 ) -> list[tuple[str, bool]]:
    """(path, saved already) for every nested repository in ``worktree``."""
    out = []
    for rel in git.nested_repos(worktree):
        tree, _head = nested_work(Path(worktree) / rel)
        kept = git.rev(owner, nested_ref(saved, rel) + "/work")
        out.append((rel, kept is not None and git.tree_of(owner, kept) == tree))
    return out


def save_nested(owner: str | Path, worktree: str | Path, saved: str, message: str
                ) -> list[dict[str, str]]:
    """Copy every nested repository's objects into ``owner``: a commit of its work tree on
    ``…/work`` and its branches on ``…/heads/*``. Returns the saves made."""
    saves = []
    for rel, already in nested_state(owner, worktree, saved):
        if already:
            continue
        nested = Path(worktree) / rel
        tree, head = nested_work(nested)
        commit = head if head is not None and git.tree_of(nested, head) == tree else \
            git.commit_tree(nested, tree, message, [head])
        prefix = nested_ref(saved, rel)
        # A local fetch of one commit by its id: upload-pack must be told it may send it.
        git.run_git(["-c", "uploadpack.allowAnySHA1InWant=true", "fetch", "--quiet",
                     "--no-tags", "--no-write-fetch-head", str(nested.resolve()),
                     f"+{commit}:{prefix}/work", f"+refs/heads/*:{prefix}/heads/*"], owner)
        saves.append({"repo": f"{owner} (nested repo {rel.rstrip('/')})",
                      "ref": f"{prefix}/work", "commit": commit,
                      "what": f"nested repo {rel.rstrip('/')}"})
    return saves


# commits only the worktree reaches --------------------------------------------------------

def lost_commits(owner: str | Path, worktree: str | Path) -> list[str]:
    """Tips of the commits the worktree's HEAD and reflog reach that no branch, tag, remote
    or aura ref holds (they go with the worktree's HEAD and reflog)."""
    reflog = git.run_git(["reflog", "show", "--format=%H", "HEAD", "--"], worktree,
                         check=False).stdout.split()
    head = git.head(worktree)
    candidates = list(dict.fromkeys(([head] if head else []) + reflog))
    if not candidates:
        return []
    out = git.run_git(["rev-list", *candidates, "--not", "--branches", "--tags",
                       "--remotes", "--glob=refs/aura/*"], owner, check=False).stdout.split()
    unreachable = [c for c in candidates if c in set(out)]
    if len(unreachable) <= 1:
        return unreachable
    return git.run_git(["merge-base", "--independent", *unreachable], owner).stdout.split()


def keep_commits(owner: str | Path, worktree: str | Path, saved: str, message: str
                 ) -> list[dict[str, str]]:
    saves = []
    for commit in lost_commits(owner, worktree):
        ref = f"{saved}.commits/{commit[:12]}"
        git.run_git(["update-ref", "-m", message, ref, commit], owner)
        saves.append({"repo": str(owner), "ref": ref, "commit": commit,
                      "what": "a commit only the worktree's HEAD or reflog reached"})
    return saves


# ignored files ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Ignored:
    paths: tuple[str, ...]
    size: int

    @property
    def small(self) -> bool:
        return len(self.paths) <= SMALL_IGNORED[0] and self.size <= SMALL_IGNORED[1]

    def named(self, limit: int = 5) -> str:
        shown = ", ".join(self.paths[:limit])
        more = len(self.paths) - limit
        return shown + (f" and {more} more" if more > 0 else "")


def ignored(worktree: str | Path) -> Ignored:
    """The ignored files in ``worktree`` (a fresh worktree has none of the user's)."""
    out = git.run_git(["status", "--porcelain=v1", "-z", "--untracked-files=all",
                       "--ignored=traditional"], worktree).stdout
    paths, size = [], 0
    for item in out.split("\0"):
        if item.startswith("!! "):
            rel = item[3:]
            paths.append(rel)
            size += _size(Path(worktree) / rel)
    return Ignored(tuple(paths), size)


def _size(path: Path) -> int:
    try:
        if path.is_symlink() or not path.is_dir():
            return path.lstat().st_size
        return sum(_size(Path(root) / name) for root, _dirs, names in os.walk(path)
                   for name in names)
    except OSError:
        return 0


def save_ignored(owner: str | Path, worktree: str | Path, saved: str, found: Ignored,
                 message: str) -> dict[str, str]:
    """Commit the tree with the ignored files added (HEAD as parent) on ``<saved>.ignored``."""
    with tempfile.TemporaryDirectory(prefix="aura-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        spec = Path(tmp) / "paths"
        spec.write_bytes(b"\0".join(p.encode("utf-8", "surrogateescape")
                                    for p in found.paths))
        head = git.head(worktree)
        if head:
            git.run_git(["read-tree", head], worktree, env=env)
        git.run_git(["add", "-f", "--pathspec-from-file", str(spec), "--pathspec-file-nul"],
                    worktree, env=env)
        tree = git.run_git(["write-tree"], worktree, env=env).stdout.strip()
    commit = git.commit_tree(worktree, tree, message, [head])
    ref = f"{saved}.ignored"
    git.run_git(["update-ref", "-m", message, ref, commit], owner)
    return {"repo": str(owner), "ref": ref, "commit": commit,
            "what": f"{len(found.paths)} ignored file(s): {found.named()}"}
