"""A SIGKILL of aura loses at most what its entry writer had not committed: the bound that
docs/ARCHITECTURE.md states (4 queued batches of 2,000, the one being written and the
pending one: 12,000 entries), checked on real processes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import aura_argv

BOUND = 12_000  # entries, as docs/ARCHITECTURE.md says
CHATTY = "import sys\nfor i in range(3_000_000):\n    sys.stdout.write(f'line {i}\\n')\n"


@pytest.mark.slow
@pytest.mark.parametrize("after_lines", [20_000, 80_000])
def test_kill_9_loses_at_most_the_stated_bound(tmp_path: Path, aura_home: Path,
                                               after_lines: int) -> None:
    agent = tmp_path / "chatty.py"
    agent.write_text(CHATTY)
    proc = subprocess.Popen(
        aura_argv("run", "--executor", "custom", "--base-command",
                  f"{sys.executable} {agent}", "--prompt", "x", "--json", "--no-tui",
                  "--cwd", str(tmp_path)),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        env={**os.environ, "AURA_HOME": str(aura_home)})
    assert proc.stdout is not None
    printed = 0
    session = None
    deadline = time.monotonic() + 120
    while printed < after_lines and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        entry = json.loads(line)
        session = entry.get("session", session)
        printed = max(printed, int(entry.get("seq", 0)))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    for line in proc.stdout:  # what was already in the pipe was printed too
        try:
            entry = json.loads(line)
        except ValueError:  # the last line, cut by the kill
            continue
        printed = max(printed, int(entry.get("seq", 0)))
    assert session is not None and printed >= after_lines
    db = sqlite3.connect(aura_home / "aura.db")
    [stored] = db.execute("SELECT max(last_seq) FROM entries WHERE session = ?",
                          (session,)).fetchone()
    db.close()
    assert stored is not None
    assert printed - stored <= BOUND, (printed, stored)
