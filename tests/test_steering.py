"""Steering and interrupting a running session from another terminal, with real processes:
`aura run` runs a fake agent (claude's control protocol, codex app-server, a custom
command) and `aura session steer|interrupt` is run next to it; what each delivered,
queued or refused is read back from the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AGENTS, FIXTURES, TIMEOUT_FACTOR, agent_command, aura_argv, run_aura

PY = sys.executable
CODEX_PROMPT = "Create a file hello.txt containing the text hi, then say Done."
CODEX_THREAD = "01a230d1-cd31-71a2-a871-d5fb77682195"
CODEX_TURN = "01a230d1-cd4c-7950-a026-bba00c3056d2"


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(aura_argv("run", "--json", *args), text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=dict(os.environ, **(env or {})))


def wait_line(proc: subprocess.Popen[str], needle: str) -> list[str]:
    """Read the run's JSON lines until one holds ``needle``."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 30 * TIMEOUT_FACTOR
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return seen
    proc.kill()
    raise AssertionError(f"{needle!r} never came: {seen} {proc.stderr.read()}")  # type: ignore[union-attr]


def finish(proc: subprocess.Popen[str]) -> tuple[int, dict[str, Any]]:
    out, err = proc.communicate(timeout=60 * TIMEOUT_FACTOR)
    assert out.strip(), err
    summary = json.loads(out.splitlines()[-1])
    return proc.returncode, summary


def latest_id() -> str:
    return str(json.loads(run_aura("session", "latest", "--json").stdout)["id"])


def show(session: str) -> dict[str, Any]:
    return json.loads(run_aura("session", "show", session, "--json").stdout)


def kinds(data: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in data["entries"] if e.get("kind") == kind]


def controls(data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["data"]["kind"], e["data"]["state"]) for e in kinds(data, "system")
            if (e.get("data") or {}).get("type") == "control"]


def claude(log: Path) -> tuple[list[str], dict[str, str]]:
    return (["-e", "claude", "--base-command", agent_command("fake_claude_control.py")],
            {"FAKE_CLAUDE_LOG": str(log)})


def lines_of(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_steer_goes_into_a_running_claude_turn(tmp_path: Path) -> None:
    log = tmp_path / "claude.jsonl"
    args, env = claude(log)
    proc = start(*args, "-p", "hold on", env=env)
    wait_line(proc, "working on: hold on")
    sid = latest_id()
    said = run_aura("session", "steer", sid[:8], "also write the docs")
    assert said.returncode == 0, said.stderr
    assert said.stdout == f"steered {sid[:8]}: the text went into the running turn\n"
    code, summary = finish(proc)
    assert code == 0 and summary["state"] == "done"
    users = [m for m in lines_of(log) if m.get("type") == "user"]
    assert [u["message"]["content"] for u in users][1] == "also write the docs"
    data = show(sid)
    assert [e["text"] for e in kinds(data, "assistant_message")] == \
        ["working on: hold on", "steered: also write the docs"]
    assert kinds(data, "user_message")[-1] == {**kinds(data, "user_message")[-1],
                                               "text": "also write the docs",
                                               "data": {"steer": True}}
    assert controls(data) == [("steer", "delivered")]
    assert len(data["executions"]) == 1  # the same turn, no follow-up


def test_steer_without_live_steering_is_queued_and_runs_after_the_turn(tmp_path: Path
                                                                       ) -> None:
    release = tmp_path / "release"
    agent = tmp_path / "agent.py"
    agent.write_text("import os, time\n"
                     "prompt = os.environ['AURA_PROMPT']\n"
                     "print(f\"turn: {prompt} in {os.environ['AURA_SESSION_ID']}\", flush=True)\n"
                     f"while 'hold' in prompt and not os.path.exists({str(release)!r}):\n"
                     "    time.sleep(0.05)\n")
    proc = start("-e", "custom", "--base-command", f"{PY} {agent}", "-p", "hold first")
    wait_line(proc, "turn: hold first")
    sid = latest_id()
    with_stdin = subprocess.run(aura_argv("session", "steer", sid, "-p", "-"), text=True,
                                input="then the second\n", capture_output=True, timeout=30)
    assert with_stdin.returncode == 0, with_stdin.stderr
    assert with_stdin.stdout == (f"queued for {sid[:8]}: it runs as the next follow-up "
                                 "when the current turn ends (custom takes no text "
                                 "mid-turn in the mode it runs in)\n")
    queued = show(sid)
    assert controls(queued) == [("steer", "queued")]  # shown before it runs
    release.touch()
    code, summary = finish(proc)
    assert code == 0 and summary["state"] == "done" and summary["session"] == sid
    data = show(sid)
    assert [e["stage"] for e in data["executions"]] == ["coding_initial", "coding_follow_up"]
    assert [e["text"] for e in kinds(data, "assistant_message")] == \
        [f"turn: hold first in {sid}", f"turn: then the second in {sid}"]
    assert [e["text"] for e in kinds(data, "user_message")] == ["hold first",
                                                                "then the second"]


def test_interrupt_a_claude_turn_with_a_follow_up_then_follow_up_again(tmp_path: Path
                                                                      ) -> None:
    log = tmp_path / "claude.jsonl"
    args, env = claude(log)
    proc = start(*args, "-p", "hold a long task", env=env)
    wait_line(proc, "working on: hold a long task")
    sid = latest_id()
    said = run_aura("session", "interrupt", sid, "only fix the test")
    assert said.returncode == 0, said.stderr
    assert said.stdout == f"interrupted {sid[:8]}; the follow-up runs next\n"
    code, summary = finish(proc)
    assert code == 0 and summary["state"] == "done", summary
    sent = lines_of(log)
    argvs = [m["argv"] for m in sent if "argv" in m]
    native = argvs[0][argvs[0].index("--session-id") + 1]
    assert argvs[1][argvs[1].index("--resume") + 1] == native  # the same agent session
    assert any((m.get("request") or {}).get("subtype") == "interrupt" for m in sent)
    data = show(sid)
    moves = data["transitions"][-3:]
    assert [t["to"] for t in moves] == ["cancelled", "coding_follow_up", "done"]
    assert moves[0]["reason"].startswith("interrupted by ") and \
        moves[0]["reason"].endswith("(aura session interrupt)")
    assert controls(data) == [("interrupt", "delivered"), ("follow_up", "queued")]
    # and a plain follow-up afterwards resumes the same agent session again
    again = run_aura("run", *args, "--session", sid, "-p", "and the docs", env=env)
    assert again.returncode == 0, again.stderr
    last = [m["argv"] for m in lines_of(log) if "argv" in m][-1]
    assert last[last.index("--resume") + 1] == native


def test_codex_app_server_steer_then_interrupt(tmp_path: Path) -> None:
    sent = tmp_path / "sent.jsonl"
    recording = FIXTURES / "agents" / "approvals" / "codex-appserver-interrupt.exchange.jsonl"
    base = agent_command("fake_codex_appserver.py", "--recording", str(recording),
                         "--turn", "0", "--log", str(sent), "--steer")
    proc = start("-e", "codex", "--base-command", base, "-p", CODEX_PROMPT)
    wait_line(proc, "codex thread started")
    sid = latest_id()
    deadline = time.monotonic() + 20 * TIMEOUT_FACTOR
    while '"turn/start"' not in sent.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # the turn id is back
    steered = run_aura("session", "steer", sid, "also say hello")
    assert steered.returncode == 0 and "went into the running turn" in steered.stdout, \
        steered.stdout + steered.stderr
    stopped = run_aura("session", "interrupt", sid)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == (f"interrupted {sid[:8]}; continue with "
                              f"`aura run --session {sid[:8]} TEXT`\n")
    code, summary = finish(proc)
    assert code == 130 and summary["state"] == "cancelled"
    lines = [json.loads(line) for line in sent.read_text().splitlines()]
    steer = [m for m in lines if m.get("method") == "turn/steer"]
    assert steer[0]["params"] == {"threadId": CODEX_THREAD, "expectedTurnId": CODEX_TURN,
                                  "input": [{"type": "text", "text": "also say hello"}]}
    assert lines[-1]["method"] == "turn/interrupt"
    data = show(sid)
    assert controls(data) == [("steer", "delivered"), ("interrupt", "delivered")]
    assert data["native_session_id"] == CODEX_THREAD  # kept for a follow-up


def test_refusals_are_one_line_and_non_zero(tmp_path: Path) -> None:
    done = run_aura("run", "-e", "custom", "--base-command", "echo hi", "-p", "x", "--json")
    sid = json.loads(done.stdout.splitlines()[-1])["session"]
    for args in (["steer", sid, "more"], ["interrupt", sid]):
        result = run_aura("session", *args)
        assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
        assert f"session {sid[:8]} is not running (done)" in result.stderr
    empty = run_aura("session", "steer", sid, "  ")
    assert empty.returncode == 2 and "empty" in empty.stderr
    from_stdin = subprocess.run(aura_argv("session", "steer", sid, "-p", "-"), text=True,
                                input="\n", capture_output=True, timeout=30)
    assert from_stdin.returncode == 2 and "empty" in from_stdin.stderr
    unknown = run_aura("session", "steer", "nosuchsession", "x")
    assert unknown.returncode != 0 and unknown.stderr.count("\n") == 1


def test_interrupt_of_an_agent_without_one_is_refused_unless_cancel(tmp_path: Path
                                                                    ) -> None:
    proc = start("-e", "custom", "--base-command", "sh -c 'echo up; sleep 60'", "-p", "x")
    wait_line(proc, '"up"')
    sid = latest_id()
    refused = run_aura("session", "interrupt", sid)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused.stderr
    assert "custom cannot interrupt a turn" in refused.stderr
    assert f"aura session cancel {sid[:8]}" in refused.stderr
    fallback = run_aura("session", "interrupt", sid, "--cancel")
    assert fallback.returncode == 0, fallback.stderr
    assert fallback.stdout.strip() == f"session {sid[:8]} cancelled"
    code, summary = finish(proc)
    assert code == 130 and summary["state"] == "cancelled"
    assert controls(show(sid)) == [("interrupt", "refused"), ("interrupt", "refused")]


def test_a_session_running_on_a_worker_is_refused_by_name(tmp_path: Path) -> None:
    from aura.contracts import Execution, ExecutionStatus, Session, State
    from aura.paths import db_path
    from aura.store_sqlite import SQLiteStore

    run_aura("session", "list")  # makes the database
    store = SQLiteStore(db_path())
    try:
        now = "2026-01-01T00:00:00.000Z"
        store.create_session(Session(id="remote-1", executor="codex",
                                     state=State.CODING_INITIAL, cwd=str(tmp_path),
                                     created_at=now, updated_at=now, prompt="p"))
        store.create_execution(Execution(id="exec-1", session="remote-1",
                                         stage=State.CODING_INITIAL,
                                         status=ExecutionStatus.RUNNING, started_at=now,
                                         host="box2"))
    finally:
        store.close()
    result = run_aura("session", "steer", "remote-1", "x")
    assert result.returncode == 1 and "runs on worker box2" in result.stderr


def test_an_approval_waiting_reaches_notify_command(tmp_path: Path, aura_home: Path) -> None:
    got = tmp_path / "events.jsonl"
    (aura_home / "config.toml").write_text(f'notify_command = "cat >> {got}"\n')
    step = {"kind": "command", "title": "Run make", "detail": {"command": "make"}}
    result = subprocess.run(
        [PY, str(AGENTS / "aura_with_fake_agent.py"), "run", "-e", "fakeapprove", "-p", "go",
         "--json", "--approval-timeout", "0.5"], text=True, capture_output=True,
        stdin=subprocess.DEVNULL, timeout=60 * TIMEOUT_FACTOR,
        env=dict(os.environ, AURA_FAKE_APPROVALS=json.dumps([step])))
    assert result.returncode == 0, result.stderr
    session = json.loads(result.stdout.splitlines()[-1])["session"]
    deadline = time.monotonic() + 10 * TIMEOUT_FACTOR
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        events = [json.loads(line) for line in got.read_text().splitlines()] \
            if got.exists() else []
        if len(events) == 2:
            break
        time.sleep(0.05)
    waiting = [e for e in events if e["event"] == "approval.waiting"]
    assert len(waiting) == 1, events
    assert waiting[0]["session"] == session and waiting[0]["kind"] == "command"
    assert waiting[0]["title"] == "Run make" and waiting[0]["approval"]


@pytest.mark.parametrize("name", ["gemini-acp-cancel", "opencode-acp-cancel",
                                  "droid-jsonrpc-interrupt"])
def test_protocol_agents_interrupt_a_live_turn_without_a_cancel(tmp_path: Path, name: str
                                                                ) -> None:
    """`aura session interrupt`'s executor side, on the recorded exchanges: the turn
    ends the agent's way and ``run`` returns (nothing is cancelled)."""
    import asyncio

    from aura.executors.droid import DroidExecutor
    from aura.executors.gemini import GeminiExecutor
    from aura.executors.opencode import OpencodeExecutor
    from tests.test_approval_channels import Approver, Collect, jsonrpc_request, request_for
    from tests.test_approval_channels import sent as sent_of

    executor = {"gemini": GeminiExecutor, "opencode": OpencodeExecutor,
                "droid": DroidExecutor}[name.split("-")[0]]()
    approver = Approver(None)
    request = jsonrpc_request(tmp_path, name, approver) if "jsonrpc" in name else \
        request_for(tmp_path, name, approver)

    async def scenario() -> Any:
        assert executor.live_controls() == frozenset()
        task = asyncio.create_task(executor.run(request, Collect()))
        await asyncio.wait_for(approver.waiting.wait(), 30)
        assert executor.live_controls() == {"interrupt"}
        await executor.interrupt_turn()
        outcome = await asyncio.wait_for(task, 30)
        assert executor.live_controls() == frozenset()
        return outcome

    outcome = asyncio.run(scenario())
    assert outcome.native_session_id  # the agent session is kept for a follow-up
    methods = [m.get("method") for m in sent_of(tmp_path)]
    assert ("droid.interrupt_session" if "jsonrpc" in name else "session/cancel") in methods
    assert not (tmp_path / "hello.txt").exists()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_control_moves_once_whoever_moves_it(tmp_path: Path, kind: str) -> None:
    from aura.errors import StoreError
    from aura.store import MemoryStore
    from aura.store_controls import Control
    from aura.store_sqlite import SQLiteStore

    store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "a.db")
    store.create_control(Control("c1", "s1", "steer", "2026-01-01T00:00:00.000Z", "me",
                                 "text"))
    store.create_control(Control("c2", "s1", "interrupt", "2026-01-01T00:00:01.000Z", "me"))
    assert [c.id for c in store.list_controls("s1", "pending")] == ["c1", "c2"]
    assert store.move_control("c1", "pending", "queued", at="t", note="why", execution="e")
    assert not store.move_control("c1", "pending", "refused", at="t2")  # the run was first
    moved = store.get_control("c1")
    assert (moved.state, moved.note, moved.execution, moved.handled_at) == \
        ("queued", "why", "e", "t")
    assert [c.id for c in store.list_controls("s1", "pending")] == ["c2"]
    assert store.list_controls("other") == []
    with pytest.raises(StoreError):
        store.get_control("nope")
    with pytest.raises(StoreError):
        Control("c3", "s1", "shout", "t", "me")


def test_a_cancel_drops_the_queued_follow_up_and_says_so(tmp_path: Path) -> None:
    proc = start("-e", "custom", "--base-command", "sh -c 'echo up; sleep 60'", "-p", "x")
    wait_line(proc, '"up"')
    sid = latest_id()
    queued = run_aura("session", "steer", sid, "later")
    assert queued.returncode == 0 and queued.stdout.startswith("queued for"), queued.stderr
    assert run_aura("session", "cancel", sid).returncode == 0
    code, summary = finish(proc)
    assert code == 130 and summary["state"] == "cancelled"
    from aura.paths import db_path
    from aura.store_sqlite import SQLiteStore

    store = SQLiteStore(db_path())
    try:
        [control] = store.list_controls(sid)
    finally:
        store.close()
    assert (control.state, control.note) == ("refused", "the run ended (cancelled) before it ran")
    assert len(show(sid)["executions"]) == 1  # it never ran
