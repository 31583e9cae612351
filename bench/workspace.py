#!/usr/bin/env python3
"""Workspace cost: aura's prepare + cleanup of a worktree workspace for a repo with many
files (default 20,000), against bare `git worktree add -b` + `git worktree remove` in the
same run, same repo, interleaved. Also the disk one workspace uses. One JSON line per
figure.

aura's side is what `aura run --repo` and `aura workspace remove` do around the agent:
resolve the repo, name and create the branch and worktree, record the workspace, then
check for unsaved work (a snapshot of the tree), save it if any, remove the worktree and
the unused branch.

    python3 bench/workspace.py [--files 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GIT_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
           "GIT_CONFIG_NOSYSTEM": "1"}


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                   env=dict(os.environ, **GIT_ENV))


def make_repo(path: Path, files: int) -> None:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    per_dir = 100
    for i in range(files):
        d = path / f"pkg{i // per_dir:04d}"
        if i % per_dir == 0:
            d.mkdir()
        (d / f"mod{i % per_dir:03d}.py").write_text(f"# module {i}\nVALUE = {i}\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "many files")


def du_bytes(*paths: Path) -> int:
    total = 0
    for path in paths:
        for dirpath, _dirs, names in os.walk(path):
            for name in names:
                try:
                    total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
                except OSError:
                    pass
    return total


def bare_round(repo: Path, where: Path, n: int) -> tuple[float, float]:
    path = where / f"bare-{n}"
    start = time.perf_counter()
    git(repo, "worktree", "add", "--quiet", "-b", f"bare/{n}", str(path), "HEAD")
    added = time.perf_counter()
    git(repo, "worktree", "remove", str(path))
    removed = time.perf_counter()
    git(repo, "branch", "-q", "-D", f"bare/{n}")
    return added - start, removed - added


def aura_round(repo: Path) -> tuple[float, float, int]:
    from aura import workspace

    sid = str(uuid.uuid4())
    start = time.perf_counter()
    ws = workspace.prepare(sid, "benchmark the workspace", [str(repo)])
    prepared = time.perf_counter()
    admin = Path(subprocess.run(["git", "rev-parse", "--git-dir"], cwd=ws.root,
                                capture_output=True, text=True, check=True).stdout.strip())
    disk = du_bytes(Path(ws.root), admin if admin.is_absolute() else Path(ws.root) / admin)
    paused = time.perf_counter()
    workspace.remove(ws)
    end = time.perf_counter()
    return prepared - start, end - paused, disk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aura-bench-ws-") as tmp:
        tmp_path = Path(tmp)
        os.environ["AURA_HOME"] = str(tmp_path / "aura-home")
        for key, value in GIT_ENV.items():
            os.environ.setdefault(key, value)
        repo = tmp_path / "repo"
        make_repo(repo, args.files)
        checkout = du_bytes(repo) - du_bytes(repo / ".git")
        bare_round(repo, tmp_path, -1)  # warm the page cache for both sides
        aura_round(repo)
        bare, bare_add, bare_remove = [], [], []
        aura_prepare, aura_cleanup, disks = [], [], []
        for n in range(args.rounds):
            add, remove = bare_round(repo, tmp_path, n)
            bare_add.append(add)
            bare_remove.append(remove)
            bare.append(add + remove)
            prepare, cleanup, disk = aura_round(repo)
            aura_prepare.append(prepare)
            aura_cleanup.append(cleanup)
            disks.append(disk)
        totals = [p + c for p, c in zip(aura_prepare, aura_cleanup, strict=True)]
        base = statistics.median(bare)
        figures = [
            {"figure": "bare_git_worktree_add_remove_s", "files": args.files,
             "median": round(base, 3), "runs": [round(x, 3) for x in bare]},
            {"figure": "bare_git_worktree_add_s", "median": round(statistics.median(bare_add), 3)},
            {"figure": "bare_git_worktree_remove_s",
             "median": round(statistics.median(bare_remove), 3)},
            {"figure": "aura_prepare_s", "median": round(statistics.median(aura_prepare), 3)},
            {"figure": "aura_cleanup_s", "median": round(statistics.median(aura_cleanup), 3)},
            {"figure": "aura_prepare_plus_cleanup_s", "median": round(statistics.median(totals), 3),
             "runs": [round(x, 3) for x in totals]},
            {"figure": "ratio_aura_vs_bare", "value": round(statistics.median(totals) / base, 2),
             "target": "<= 1.5"},
            {"figure": "disk_per_workspace_bytes", "value": int(statistics.median(disks)),
             "checkout_bytes": checkout,
             "note": "work tree + its git admin dir (index); objects are shared"},
        ]
        for figure in figures:
            print(json.dumps(figure), flush=True)


if __name__ == "__main__":
    main()
