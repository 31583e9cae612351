"""Approvals end to end, as real processes on one AURA_HOME: `aura run` with the fake
agent executor (tests/approval_agent.py) asking, answered by `aura approve`/`aura deny`
from another process, by the plain-mode prompt on a pty, by policy, or by nobody."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import AGENTS, TIMEOUT_FACTOR, run_aura

LAUNCHER = str(AGENTS / "aura_with_fake_agent.py")
MAKE = {"kind": "command", "title": "Run make", "detail": {"command": "make all"},
        "write": "made.txt"}
WRITE = {"kind": "file_change", "title": "Write a.txt", "detail": {"paths": ["a.txt"]},
         "write": "a.txt"}
WRITE_B = {"kind": "file_change", "title": "Write b.txt", "detail": {"paths": ["b.txt"]},
           "write": "b.txt"}


def env_for(steps: list[dict], log: Path) -> dict[str, str]:
    return dict(os.environ, AURA_FAKE_APPROVALS=json.dumps(steps),
                AURA_FAKE_DECISIONS=str(log))


def start(work: Path, steps: list[dict], log: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, LAUNCHER, "run", "-e", "fakeapprove", "-p",
                             "go", "--cwd", str(work), "--json", *extra],
                            env=env_for(steps, log), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def pending(wait: float = 15) -> list[dict]:
    """The pending requests once there is one (read from the store file the runs write;
    the CLI's own listing is checked where it is the point)."""
    from aura.approvals import ApprovalState
    from aura.paths import db_path
    from aura.store_sqlite import SQLiteStore

    deadline = time.monotonic() + wait * TIMEOUT_FACTOR
    while time.monotonic() < deadline:
        if db_path().exists():
            store = SQLiteStore(db_path())
            try:
                found = store.list_approvals(state=ApprovalState.PENDING)
            finally:
                store.close()
            if found:
                return [a.to_json() for a in found]
        time.sleep(0.05)
    raise AssertionError("no approval request showed up")


def decisions(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def approval_entries(session: str | None = None) -> list[dict]:
    args = ("session", "show", session, "--json") if session else ("session", "latest",
                                                                     "--json")
    shown = json.loads(run_aura(*args).stdout)
    return [e for e in shown["entries"] if e["kind"] == "approval"]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def test_aura_approve_from_a_second_process_lets_the_run_go_on(work: Path, tmp_path: Path
                                                                ) -> None:
    log = tmp_path / "log"
    run = start(work, [MAKE], log)
    pending()
    waiting = json.loads(run_aura("approvals", "--json").stdout)
    assert [(w["kind"], w["title"], w["state"]) for w in waiting] == \
        [("command", "Run make", "pending")]
    assert waiting[0]["age_s"] >= 0
    listed = run_aura("approvals")
    assert waiting[0]["id"][:8] in listed.stdout and "Run make" in listed.stdout
    started = time.monotonic()
    answered = run_aura("approve", waiting[0]["id"][:8])
    assert answered.returncode == 0, answered.stderr
    assert "allowed once: Run make" in answered.stdout
    out, err = run.communicate(timeout=30 * TIMEOUT_FACTOR)
    assert run.returncode == 0, err
    assert time.monotonic() - started < 5  # seen within a poll or two, plus startup
    assert (work / "made.txt").exists()
    assert decisions(log)[0]["option"] == "proceed_once"
    streamed = [json.loads(line) for line in out.splitlines()]
    assert [e["status"] for e in streamed if e.get("kind") == "approval"] == \
        ["pending", "allowed"]
    stored = approval_entries()
    assert [e["status"] for e in stored] == ["pending", "allowed"]
    assert "aura approve" in stored[1]["data"]["by"]
    again = run_aura("approve", waiting[0]["id"])
    assert again.returncode == 3 and "already answered: allowed by" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    assert json.loads(run_aura("approvals", "--json").stdout) == []
    every = json.loads(run_aura("approvals", "--all", "--json").stdout)
    assert [(a["id"], a["state"]) for a in every] == [(waiting[0]["id"], "allowed")]
    assert "STATE" in run_aura("approvals", "--all").stdout
    shown = run_aura("session", "show", stored[0]["session"][:8])
    assert "? approval" in shown.stdout and "✓ approval" in shown.stdout


def test_aura_deny_with_a_message_is_what_the_agent_hears(work: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    run = start(work, [MAKE], log)
    ident = pending()[0]["id"]
    denied = run_aura("deny", ident[:10], "--message", "run make test instead")
    assert denied.returncode == 0, denied.stderr
    run.communicate(timeout=30 * TIMEOUT_FACTOR)
    assert not (work / "made.txt").exists()
    assert decisions(log) == [{"choice": "deny", "option": "cancel",
                               "message": "run make test instead",
                               "by": decisions(log)[0]["by"]}]
    assert approval_entries()[-1]["data"]["message"] == "run make test instead"


def test_session_wide_allow_is_remembered_for_the_next_turn(work: Path, tmp_path: Path
                                                             ) -> None:
    log = tmp_path / "log"
    run = start(work, [WRITE], log)
    run_aura("approve", pending()[0]["id"], "--session-wide")
    run.communicate(timeout=30 * TIMEOUT_FACTOR)
    session = approval_entries()[0]["session"]
    follow = subprocess.run([sys.executable, LAUNCHER, "run", "--session", session, "-p",
                             "more", "--json", "--approval-timeout", "5"],
                            env=env_for([WRITE_B], log), stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=30 * TIMEOUT_FACTOR)
    assert follow.returncode == 0, follow.stderr
    assert (work / "b.txt").exists()
    last = decisions(log)[-1]
    assert last["choice"] == "allow" and \
        last["by"] == "policy: allow kind file_change (allowed for this session)"


def test_cancelled_with_a_request_pending_it_is_lost_and_late_answers_refused(
        work: Path, tmp_path: Path) -> None:
    run = start(work, [MAKE], tmp_path / "log")
    ident = pending()[0]["id"]
    run.send_signal(signal.SIGINT)
    run.communicate(timeout=30 * TIMEOUT_FACTOR)
    late = run_aura("approve", ident)
    assert late.returncode == 3
    assert "is lost: the run that asked went away" in late.stderr
    assert [e["status"] for e in approval_entries()] == ["pending", "lost"]
    assert run_aura("approvals", "--json").stdout.strip() == "[]"
    assert not (work / "made.txt").exists()


def test_a_killed_run_leaves_nothing_waiting(work: Path, tmp_path: Path) -> None:
    run = start(work, [MAKE], tmp_path / "log")
    ident = pending()[0]["id"]
    run.kill()
    run.wait()
    assert json.loads(run_aura("approvals", "--json").stdout) == []
    late = run_aura("deny", ident)
    assert late.returncode == 3 and "lost" in late.stderr


def test_nobody_answers_it_expires_and_the_agent_is_told(work: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    run = start(work, [MAKE], log, "--approval-timeout", "0.5")
    _out, err = run.communicate(timeout=30 * TIMEOUT_FACTOR)
    assert run.returncode == 0, err
    assert decisions(log)[0]["choice"] == "deny"
    assert "nobody answered within 0.5 s" in decisions(log)[0]["message"]
    assert approval_entries()[-1]["status"] == "expired"


def test_a_project_rule_answers_and_says_so(work: Path, tmp_path: Path) -> None:
    (work / ".aura.toml").write_text(
        '[approvals]\ndeny = [{ command = "make", message = "CI builds" }]\n')
    log = tmp_path / "log"
    run = start(work, [MAKE], log)
    run.communicate(timeout=30 * TIMEOUT_FACTOR)
    assert decisions(log)[0]["message"] == "CI builds"
    assert approval_entries()[-1]["data"]["by"].startswith("policy: deny command `make` (")
    (work / ".aura.toml").write_text('[approvals]\nallow = [{ colour = "red" }]\n')
    broken = start(work, [MAKE], log)
    out, _err = broken.communicate(timeout=30 * TIMEOUT_FACTOR)
    summary = json.loads(out.splitlines()[-1])
    assert broken.returncode != 0 and "unknown key(s) colour" in summary["error"]
    assert ".aura.toml" in summary["error"]


@pytest.mark.parametrize("ident, code, said", [("nope", 1, "no approval request 'nope'"),
                                               ("", 2, "give the id")])
def test_bad_ids_are_one_line_errors(ident: str, code: int, said: str) -> None:
    result = run_aura("approve", ident)
    assert result.returncode == code and said in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_help_states_the_default_timeout() -> None:
    from aura.service.approvals import DEFAULT_TIMEOUT

    shown = " ".join(run_aura("run", "--help").stdout.split())
    assert f"(default {DEFAULT_TIMEOUT:g})" in shown


# plain mode on a terminal -----------------------------------------------------------------

class Pty:
    def __init__(self, work: Path, steps: list[dict], log: Path) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.environ.update(env_for(steps, log))
            os.execv(sys.executable, [sys.executable, LAUNCHER, "run", "-e", "fakeapprove",
                                      "-p", "go", "--cwd", str(work), "--no-tui"])
        self.seen = ""
        self.mark = 0  # what expect() already matched: each expect looks further on

    def expect(self, text: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout * TIMEOUT_FACTOR
        while text not in self.seen[self.mark:]:
            left = deadline - time.monotonic()
            assert left > 0, f"never saw {text!r} in {self.seen[-2000:]!r}"
            ready, _w, _x = select.select([self.fd], [], [], left)
            if ready:
                try:
                    self.seen += os.read(self.fd, 4096).decode(errors="replace")
                except OSError:
                    break
        found = self.seen.find(text, self.mark)
        self.mark = found + len(text) if found >= 0 else self.mark
        return self.seen

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def wait(self) -> int:
        try:
            self.expect("\x00never", timeout=20)
        except AssertionError:
            pass
        _pid, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)


def test_the_prompt_on_a_terminal_allows_once_for_session_and_denies(work: Path,
                                                                     tmp_path: Path) -> None:
    log = tmp_path / "log"
    term = Pty(work, [MAKE, WRITE, WRITE_B, {**MAKE, "title": "Run make again"}], log)
    term.expect("[y/a/N]")
    assert "the agent asks (command): Run make" in term.seen and "$ make all" in term.seen
    term.type("y\n")
    term.expect("the agent asks (file_change): Write a.txt")
    term.expect("[y/a/N]")
    term.type("a\n")
    term.expect("the agent asks (command): Run make again")
    term.expect("[y/a/N]")
    term.type("n\n")
    term.expect("message for the agent")
    term.type("not now\n")
    assert term.wait() == 0
    got = decisions(log)
    assert [d["choice"] for d in got] == ["allow", "allow_session", "allow", "deny"]
    assert got[2]["by"].startswith("policy: allow kind file_change")
    assert got[3]["message"] == "not now" and "(tty)" in got[3]["by"]
    assert (work / "b.txt").exists() and (work / "made.txt").exists()


def test_the_prompt_gives_way_to_an_answer_from_another_terminal(work: Path,
                                                                 tmp_path: Path) -> None:
    log = tmp_path / "log"
    term = Pty(work, [MAKE], log)
    term.expect("[y/a/N]")
    run_aura("approve", pending()[0]["id"])
    term.expect("✓ approval")
    assert term.wait() == 0
    assert decisions(log)[0]["choice"] == "allow" and "aura approve" in decisions(log)[0]["by"]
