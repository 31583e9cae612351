"""Shared by the remote benchmarks: a real coordinator and one worker (`b1`) as child
processes of this interpreter, and the helpers that wait for them and count what they stored."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AURA = [sys.executable, str(ROOT / "aura.py")]


def wait_log(path: Path, pattern: str, timeout: float = 60) -> re.Match[str]:
    """The first match of ``pattern`` in the log file, waiting for it to be written."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, path.read_text(errors="replace"))
        if found:
            return found
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {pattern!r} in {path}")


def stored(db: Path) -> int:
    """How many entries the store at ``db`` holds (entries rows are runs of seqs)."""
    with sqlite3.connect(db) as conn:
        return conn.execute("select coalesce(sum(last_seq - first_seq + 1), 0) "
                            "from entries").fetchone()[0]


def start_cluster(tmp: Path, env: dict[str, str],
                  procs: list[subprocess.Popen]) -> tuple[subprocess.Popen, subprocess.Popen, str]:
    """`aura serve` on a free loopback port and `aura worker b1` connected to it (homes
    ``tmp/coord`` and ``tmp/worker``); both are appended to ``procs`` for the caller to stop.
    Returns (coordinator, worker, url) once the worker is online."""
    coord_log = tmp / "coord.log"
    with coord_log.open("w") as log:
        coord = subprocess.Popen([*AURA, "serve", "--listen", "127.0.0.1:0"],
                                 env=dict(env, AURA_HOME=str(tmp / "coord")),
                                 stdout=log, stderr=log)
    procs.append(coord)
    url = wait_log(coord_log, r"listening on (ws://[\d.]+:\d+)").group(1)
    with (tmp / "worker.log").open("w") as log:
        worker = subprocess.Popen([*AURA, "worker", "--connect", url, "--name", "b1",
                                   "--allow-command"],
                                  env=dict(env, AURA_HOME=str(tmp / "worker")),
                                  stdout=log, stderr=log, cwd=tmp)
    procs.append(worker)
    wait_log(coord_log, r"worker b1 online")
    return coord, worker, url
