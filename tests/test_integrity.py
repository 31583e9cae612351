"""Integrity of sessions: one run per session (claimed in the database), no child
outliving aura (Ctrl-C, SIGTERM, kill -9), exit codes by signal, and no traceback on any
of those exits. Everything here runs real `aura run` processes and real process trees."""

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

from tests.conftest import TIMEOUT_FACTOR, agent_command, aura_argv, run_aura, write_agent

pytestmark = pytest.mark.slow

TREE_AGENT = [
    "import os, sys, time",
    "d = sys.argv[1]",
    "def daemon():",  # double fork: the grandchild is re-parented away from the agent
    "    if os.fork() == 0:",
    "        os.setsid()",
    "        if os.fork() == 0:",
    "            open(d + '/daemon.pid', 'w').write(str(os.getpid()))",
    "            os.close(1); os.close(2)",
    "            time.sleep(300); os._exit(0)",
    "        os._exit(0)",
    "daemon()",
    "if os.fork() == 0:",  # setsid'd sleeper that keeps stdout open
    "    os.setsid()",
    "    open(d + '/sleeper.pid', 'w').write(str(os.getpid()))",
    "    time.sleep(300); os._exit(0)",
    "open(d + '/agent.pid', 'w').write(str(os.getpid()))",
    "print('tree started', flush=True)",
    "time.sleep(300)",
]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rfind(")") + 2] != "Z"


def _start_tree(tmp_path: Path) -> tuple[subprocess.Popen, list[int]]:
    agent = write_agent(tmp_path / "tree_agent.py", TREE_AGENT)
    proc = subprocess.Popen(
        aura_argv("run", "-e", "custom", "--base-command", agent_command(str(agent),
                  str(tmp_path)), "-p", "go", "--no-tui", "--cwd", str(tmp_path)),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    names = ("agent.pid", "daemon.pid", "sleeper.pid")
    deadline = time.monotonic() + 20 * TIMEOUT_FACTOR
    while not all((tmp_path / n).exists() and (tmp_path / n).read_text() for n in names):
        assert time.monotonic() < deadline, "the fake agent never started its tree"
        time.sleep(0.05)
    time.sleep(0.2)
    return proc, [int((tmp_path / n).read_text()) for n in names]


def _gone(pids: list[int], within: float = 5.0) -> list[int]:
    deadline = time.monotonic() + within * TIMEOUT_FACTOR
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux guarantees")
@pytest.mark.parametrize(("sig", "code", "reason"), [
    (signal.SIGINT, 130, "interrupted by the user"), (signal.SIGTERM, 143, "terminated")])
def test_a_signal_leaves_no_process_of_the_tree_and_no_traceback(
        tmp_path: Path, sig: signal.Signals, code: int, reason: str) -> None:
    proc, pids = _start_tree(tmp_path)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30 * TIMEOUT_FACTOR)
    assert proc.returncode == code, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert "cancelled" in err and f": {reason}" in err, (out, err)
    assert _gone(pids) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux guarantees")
def test_kill_9_of_aura_then_one_more_command_leaves_no_process(tmp_path: Path) -> None:
    proc, pids = _start_tree(tmp_path)
    proc.kill()
    proc.communicate(timeout=10)
    assert _gone(pids[:1]) == [], "the agent outlived aura (no parent-death signal)"
    listed = run_aura("session", "list")
    assert listed.returncode == 0 and "failed" in listed.stdout
    assert _gone(pids) == [], "escaped descendants outlived the next aura command"


def _follow_ups(session: str, count: int, tmp: Path, *extra: str,
                timeout: float) -> list[tuple[subprocess.Popen, str, str]]:
    """``count`` follow-ups started together; output to files (a pipe nobody reads yet
    would stall a winner and so every waiter)."""
    procs = []
    for i in range(count):
        out, err = (tmp / f"out{i}").open("w"), (tmp / f"err{i}").open("w")
        procs.append(subprocess.Popen(
            aura_argv("run", "--session", session, "-p", "more", "--json", *extra),
            stdin=subprocess.DEVNULL, stdout=out, stderr=err, text=True))
    for proc in procs:
        proc.wait(timeout * TIMEOUT_FACTOR)
    return [(p, (tmp / f"out{i}").read_text(), (tmp / f"err{i}").read_text())
            for i, p in enumerate(procs)]


def _new_session(lines: int) -> str:
    base = agent_command("lines_agent.py", str(lines), "200", "0.01")
    first = run_aura("run", "-e", "custom", "--base-command", base, "-p", "x", "--json")
    assert first.returncode == 0, first.stderr
    return json.loads(first.stdout.splitlines()[-1])["session"]


def _stored(aura_home: Path, session: str) -> tuple[list[dict], list[tuple[str, str]]]:
    db = sqlite3.connect(aura_home / "aura.db")
    bodies = [b for (b,) in db.execute(
        "SELECT bodies FROM entries WHERE session = ? ORDER BY first_seq", (session,))]
    entries = [json.loads(line) for b in bodies for line in b.split("\n")]
    moves = db.execute("SELECT src, dst FROM transitions WHERE session = ? ORDER BY id",
                       (session,)).fetchall()
    return entries, moves


def _printed(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()[:-1]]


def test_eight_concurrent_follow_ups_one_wins_and_nothing_is_lost(aura_home: Path,
                                                                  tmp_path: Path) -> None:
    session = _new_session(2000)
    results = _follow_ups(session, 8, tmp_path, timeout=120)
    winners = [r for r in results if r[0].returncode == 0]
    losers = [r for r in results if r[0].returncode != 0]
    assert len(winners) >= 1
    for proc, _out, err in losers:
        assert proc.returncode == 1
        assert "is busy" in err and "--wait" in err and len(err.strip().splitlines()) == 1
    entries, moves = _stored(aura_home, session)
    seqs = [e["seq"] for e in entries]
    assert seqs == list(range(1, len(seqs) + 1))  # one writer at a time: no gap, no overlap
    stored_ids = {(e["execution"], e["seq"]) for e in entries}
    for _proc, out, _err in winners:
        printed = _printed(out)
        assert sum(1 for e in printed if e.get("text", "").startswith("line ")) == 2000
        assert {(e["execution"], e["seq"]) for e in printed} <= stored_ids
    follow_ups = [m for m in moves if m[1] == "coding_follow_up"]
    assert len(follow_ups) == len(winners)
    assert len([m for m in moves if m[1] == "done"]) == 1 + len(winners)


def test_eight_follow_ups_with_wait_run_one_after_another(aura_home: Path,
                                                          tmp_path: Path) -> None:
    session = _new_session(500)
    results = _follow_ups(session, 8, tmp_path, "--wait", timeout=180)
    assert [p.returncode for p, _o, _e in results] == [0] * 8, [e for _p, _o, e in results]
    entries, moves = _stored(aura_home, session)
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    printed = sum(len(_printed(out)) for _p, out, _e in results)
    assert len(entries) - printed == sum(1 for e in entries if e["stage"] == "coding_initial")
    assert sum(1 for e in entries if e.get("text", "").startswith("line ")) == 9 * 500
    assert [m[1] for m in moves].count("coding_follow_up") == 8
    # Each follow-up starts from done, never from another's running state.
    assert all(src == "done" for src, dst in moves if dst == "coding_follow_up")


def test_a_busy_session_refuses_a_follow_up_naming_the_running_execution(
        tmp_path: Path) -> None:
    proc, pids = _start_tree(tmp_path)
    try:
        listed = json.loads(run_aura("session", "list", "--json").stdout)
        session = listed[0]["id"] if isinstance(listed, list) else listed["sessions"][0]["id"]
        second = run_aura("run", "--session", session, "-p", "again")
        assert second.returncode == 1
        assert "is busy: execution" in second.stderr and "coding_initial" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert _gone(pids) == []
