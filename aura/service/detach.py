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
    """How to start this same aura again: the zipapp, script or checkout's aura.py it
    runs from, else ``python -m aura`` (with this aura's package first on the path)."""
    main = sys.argv[0] if sys.argv else ""
    if main and os.path.basename(main) != "__main__.py" and os.path.isfile(main):
        return [sys.executable, main]
    return [sys.executable, "-m", "aura"]


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    import aura

    env = dict(os.environ, **(extra or {}))
    # `python -m aura` must find this aura, not another one installed on the path.
    package_root = str(Path(aura.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH"))
                                        if p)
    return env


def log_path(session_id: str) -> Path:
    return data_dir() / "logs" / f"{session_id}.log"


def spawn(args: list[str], session_id: str, env: dict[str, str] | None = None
          ) -> tuple[int, str | None]:
    """Start ``aura ARGS…`` detached (``env``: variables added to ours); its pid and start
    time (for liveness checks)."""
    path = log_path(session_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as log, open(os.devnull, "rb") as devnull:
        child = subprocess.Popen([*aura_argv(), *args], stdin=devnull, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True,
                                 close_fds=True, env=_child_env(env))
    # Nobody waits for it; reaping is the init process's business once we exit, and
    # Popen's own bookkeeping reaps it if we outlive it.
    return child.pid, process_start_time(child.pid)
