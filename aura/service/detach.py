"""Start an aura command in the background: its own session (``start_new_session``, so
closing the terminal or Ctrl-C there does not reach it), stdin from /dev/null, output to a
log file under the data dir. Used by `aura run --detach` and by the queue's scheduler."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from aura.liveness import process_start_time
from aura.paths import data_dir


def aura_argv() -> list[str]:
    """How to start this same aura again: the zipapp or script it runs from, else
    ``python -m aura``."""
    main = sys.argv[0] if sys.argv else ""
    if main.endswith(".pyz") or (main and os.path.basename(main) == "aura"
                                 and os.path.isfile(main)):
        return [sys.executable, main]
    return [sys.executable, "-m", "aura"]


def log_path(session_id: str) -> Path:
    return data_dir() / "logs" / f"{session_id}.log"


def spawn(args: list[str], session_id: str) -> tuple[int, str | None]:
    """Start ``aura ARGS…`` detached; its pid and start time (for liveness checks)."""
    path = log_path(session_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as log, open(os.devnull, "rb") as devnull:
        child = subprocess.Popen([*aura_argv(), *args], stdin=devnull, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True,
                                 close_fds=True)
    # Nobody waits for it; reaping is the init process's business once we exit, and
    # Popen's own bookkeeping reaps it if we outlive it.
    return child.pid, process_start_time(child.pid)
