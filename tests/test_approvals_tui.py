"""The TUI's approval bar on a real terminal (tmux): y, a, a message and Enter, and an
answer from another terminal, with the fake agent executor (tests/approval_agent.py)."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import pytest

from . import terminal
from .conftest import run_aura
from .test_approvals_cli import LAUNCHER, MAKE, WRITE, WRITE_B, decisions, env_for, pending

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not terminal.available(), reason="needs tmux")]


def test_the_bar_shows_the_request_and_its_keys_answer_it(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    log = tmp_path / "log"
    steps = [MAKE, WRITE, WRITE_B, {**MAKE, "title": "Run make again"},
             {**MAKE, "title": "Run make thrice"}]
    env = {k: v for k, v in env_for(steps, log).items()
           if k.startswith(("AURA", "PATH", "HOME", "PYTHON"))}
    term = terminal.Tmux(tmp_path, width=160, height=40)
    try:
        argv = [sys.executable, LAUNCHER, "run", "-e", "fakeapprove", "-p", "go", "--cwd",
                str(work)]
        term.start(shlex.join(argv) + "; echo EXIT=$?; exec sleep 600",
                   env={**env, "NO_COLOR": "1", "TERM": "xterm-256color",
                        "AURA_HOME": os.environ["AURA_HOME"]}, cwd=tmp_path)
        screen = term.wait_for("the agent asks (command): Run make")
        assert "$ make all" in screen and "allow for this session" in screen
        term.type("y")
        term.wait_for("the agent asks (file_change): Write a.txt")
        term.type("a")
        term.wait_for("the agent asks (command): Run make again")
        term.type("n")
        term.wait_for("type a message for the agent")
        term.type("not now")
        term.send("Enter")
        term.wait_for("the agent asks (command): Run make thrice")
        run_aura("approve", pending()[-1]["id"])
        screen = term.wait_for(lambda s: "● done" in s or "○ idle" in s)
        assert "✗ approval" in screen and "not now" in screen
        assert "the agent asks" not in screen  # the bar is gone once answered
        term.send("C-c")
        term.send("C-c")
        term.wait_for("EXIT=")
    finally:
        term.close()
    got = decisions(log)
    assert [d["choice"] for d in got] == ["allow", "allow_session", "allow", "deny", "allow"]
    assert "(tui)" in got[0]["by"] and got[2]["by"].startswith("policy:")
    assert got[3]["message"] == "not now" and "aura approve" in got[4]["by"]
    assert (work / "b.txt").exists()
    shown = json.loads(run_aura("session", "latest", "--json").stdout)
    assert [e["status"] for e in shown["entries"] if e["kind"] == "approval"].count(
        "pending") == 5
