"""codex through `codex app-server` on the real recorded exchanges (codex-cli 0.169.0).

The executor runs tests/agents/fake_codex_appserver.py as its --base-command: a real
process that replays one recorded turn, checks every line aura writes the way codex reads
it, and fails (exit 3, reason on stderr) when aura says anything else. A small Approver
answers as a person would; what it was asked, and what aura wrote, are checked.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from aura.approvals import (
    ApprovalKind,
    ApprovalOption,
    ApprovalRequest,
    Choice,
    Decision,
    OptionKind,
    pick,
)
from aura.contracts import Entry
from aura.executors.base import Approvals, Outcome, RunRequest
from aura.executors.codex import CodexExecutor
from aura.executors.codex_items import AMEND_POLICY, DENY_AND_STOP, answer
from tests.conftest import FIXTURES, agent_command

RECORDED = FIXTURES / "agents" / "approvals"
THREAD = "01a230d1-c57b-7b51-b22f-81d66ab17ab4"  # allow, then resumed in resume
PROMPTS = {
    ("allow", 0): "Create a file hello.txt containing the text hi, then say Done.",
    ("allow", 1): "Now use a shell command to create shell.txt containing sh.",
    ("deny", 0): "Create a file hello.txt containing the text hi, then say Done.",
    ("deny", 1): "Now use a shell command to create shell.txt containing sh.",
    ("resume", 0): "Now also create bye.txt containing bye.",
    ("resume", 1): "Finally create third.txt containing 3.",
    ("interrupt", 0): "Create a file hello.txt containing the text hi, then say Done.",
    ("interrupt", 1): "Now also create bye.txt containing bye.",
    ("cancel", 0): "Create a file hello.txt containing the text hi, then say Done.",
}


class Collect:
    """The recorder's side of Output, in memory."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.native: list[str] = []

    def emit(self, entries: list[Entry]) -> None:
        self.entries.extend(entries)

    def emit_json(self, items: list[tuple[Entry, str]]) -> None:
        self.entries.extend(entry for entry, _ in items)

    def set_native_session_id(self, native_id: str) -> None:
        self.native.append(native_id)

    def kinds(self, kind: str) -> list[Entry]:
        return [e for e in self.entries if e.get("kind") == kind]


class Person:
    """An Approver that answers each request with the next choice (None: never)."""

    def __init__(self, *choices: Choice | None) -> None:
        self.choices = list(choices)
        self.asked: list[ApprovalRequest] = []
        self.withdrawn: list[str] = []
        self.waiting = asyncio.Event()

    async def ask(self, request: ApprovalRequest) -> Decision:
        self.asked.append(request)
        self.waiting.set()
        choice = self.choices.pop(0)
        if choice is None:
            await asyncio.Event().wait()
        assert isinstance(choice, Choice)
        return Decision(choice, by="test", option=pick(request.options, choice))

    def withdraw(self, native_id: str) -> None:
        self.withdrawn.append(native_id)


def request_for(tmp_path: Path, recording: str, turn: int, person: Person | None, *,
                native: str | None = None, steer: bool = False,
                approvals: Approvals | None = None) -> RunRequest:
    args = ["--recording", str(RECORDED / f"codex-appserver-{recording}.exchange.jsonl"),
            "--turn", str(turn), "--log", str(tmp_path / "sent.jsonl"),
            "--pidfile", str(tmp_path / "pid")]
    return RunRequest(prompt=PROMPTS[(recording, turn)], cwd=str(tmp_path), session_id="s",
                      execution_id="e", native_session_id=native, approver=person,
                      base_command=agent_command("fake_codex_appserver.py",
                                                 *args, *(["--steer"] if steer else [])),
                      approvals=approvals or Approvals())


def sent(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "sent.jsonl").read_text().splitlines()]


def gone(tmp_path: Path) -> bool:
    """The fake codex process has exited (and been reaped)."""
    try:
        os.kill(int((tmp_path / "pid").read_text()), 0)
    except ProcessLookupError:
        return True
    return False


def run(request: RunRequest) -> tuple[Outcome, Collect]:
    out = Collect()
    outcome = asyncio.run(asyncio.wait_for(CodexExecutor().run(request, out), 30))
    return outcome, out


def stderr_of(out: Collect) -> str:
    return "\n".join(e.get("text", "") for e in out.entries if e.get("stream") == "stderr")


def test_allow_a_write_then_the_turn_completes(tmp_path: Path) -> None:
    person = Person(Choice.ALLOW)
    outcome, out = run(request_for(tmp_path, "allow", 0, person))
    assert outcome == Outcome(0, "01a230d1-c57b-7b51-b22f-81d66ab17ab4", None), stderr_of(out)
    assert out.native == [THREAD]
    assert gone(tmp_path)
    (asked,) = person.asked
    assert asked.kind is ApprovalKind.FILE_CHANGE and asked.native_id == "0"
    assert asked.title == "Write hello.txt"
    assert asked.detail["paths"] == [str(tmp_path / "hello.txt")]
    assert "hi" in asked.detail["diff"]
    # every answer offered, whatever availableDecisions says
    assert [o.id for o in asked.options] == ["accept", "acceptForSession", "decline", "cancel"]
    messages = [e["text"] for e in out.kinds("assistant_message")]
    assert messages == ["I'll do that now.", "Done."]
    (call,) = [e for e in out.kinds("tool_call") if e["status"] != "running"]
    assert (call["action"], call["target"], call["status"]) == ("file_write", "hello.txt", "ok")
    (usage,) = out.kinds("usage")
    assert usage["usage"] == {"input_tokens": 200, "output_tokens": 40,
                              "cached_input_tokens": 0, "reasoning_tokens": 0}
    lines = sent(tmp_path)
    assert [m.get("method") for m in lines] == [
        "initialize", "initialized", "thread/start", "turn/start", None]
    assert lines[-1] == {"id": 0, "result": {"decision": "accept"}}
    assert lines[2]["params"] == {"approvalPolicy": "untrusted", "sandbox": "workspace-write",
                                  "cwd": str(tmp_path)}


def test_allow_a_shell_command(tmp_path: Path) -> None:
    person = Person(Choice.ALLOW)
    outcome, out = run(request_for(tmp_path, "allow", 1, person))
    assert outcome.exit_code == 0, stderr_of(out)
    (asked,) = person.asked
    assert asked.kind is ApprovalKind.COMMAND and asked.native_id == "1"
    assert asked.title == "Run `printf sh > shell.txt`"
    assert asked.detail["command"] == "/bin/bash -lc 'printf sh > shell.txt'"
    assert asked.detail["cwd"] == str(tmp_path)
    kinds = {o.id: o.kind for o in asked.options}
    assert kinds["acceptWithExecpolicyAmendment"] is OptionKind.ALLOW_ALWAYS
    assert pick(asked.options, Choice.ALLOW_SESSION).id == "acceptForSession"  # type: ignore
    (call,) = [e for e in out.kinds("tool_call") if e["status"] != "running"]
    assert (call["action"], call["status"], call["data"]) == \
        ("command", "ok", {"exit_code": 0})
    assert sent(tmp_path)[-1] == {"id": 1, "result": {"decision": "accept"}}


@pytest.mark.parametrize("turn,action", [(0, "file_write"), (1, "command")])
def test_deny_tells_codex_and_the_turn_goes_on(tmp_path: Path, turn: int, action: str) -> None:
    person = Person(Choice.DENY)
    outcome, out = run(request_for(tmp_path, "deny", turn, person))
    assert outcome.exit_code == 0, stderr_of(out)
    assert sent(tmp_path)[-1]["result"] == {"decision": "decline"}
    (call,) = [e for e in out.kinds("tool_call") if e["status"] != "running"]
    assert (call["action"], call["status"]) == (action, "error")  # declined
    assert out.kinds("assistant_message")[-1]["text"].startswith("Done")


def test_allow_for_session_on_a_resumed_thread_in_a_new_process(tmp_path: Path) -> None:
    # The thread of the allow recording, resumed by a second codex process.
    person = Person(Choice.ALLOW_SESSION)
    outcome, out = run(request_for(tmp_path, "resume", 0, person, native=THREAD))
    assert outcome == Outcome(0, THREAD, None), stderr_of(out)
    lines = sent(tmp_path)
    assert lines[2]["method"] == "thread/resume" and lines[2]["params"]["threadId"] == THREAD
    assert lines[-1] == {"id": 0, "result": {"decision": "acceptForSession"}}
    assert person.asked[0].title == "Write bye.txt"
    assert "codex thread resumed" in [e["text"] for e in out.kinds("system")]
    # another file asks again: "for the session" covers the same files only
    person = Person(Choice.ALLOW)
    outcome, out = run(request_for(tmp_path, "resume", 1, person, native=THREAD))
    assert outcome.exit_code == 0 and person.asked[0].title == "Write third.txt"


def test_deny_and_stop_answers_cancel_and_ends_the_turn(tmp_path: Path) -> None:
    # Recorded by aura's client against the real codex 0.169.0 (see its meta.json).
    class Stop(Person):
        async def ask(self, request: ApprovalRequest) -> Decision:
            self.asked.append(request)
            return Decision(Choice.DENY, by="test", option=DENY_AND_STOP)

    person = Stop()
    outcome, out = run(request_for(tmp_path, "cancel", 0, person))
    assert outcome == Outcome(0, "01a23140-4432-7cf1-9f01-3cf16b3a86b2", None), stderr_of(out)
    assert sent(tmp_path)[-1] == {"result": {"decision": "cancel"}, "id": 0}
    assert person.withdrawn == []  # answered, not withdrawn
    assert "codex turn interrupted" in [e["text"] for e in out.kinds("system")]
    assert not (tmp_path / "hello.txt").exists() and gone(tmp_path)


def test_interrupt_mid_turn_then_the_thread_can_follow_up(tmp_path: Path) -> None:
    async def scenario() -> Collect:
        out = Collect()
        task = asyncio.create_task(CodexExecutor().run(
            request_for(tmp_path, "interrupt", 0, Person()), out))
        while not any(e.get("text") == "codex thread started" for e in out.entries):
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # the turn has started and holds
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return out

    out = asyncio.run(asyncio.wait_for(scenario(), 30))
    lines = sent(tmp_path)
    assert lines[-1] == {"method": "turn/interrupt", "id": 4, "params": {
        "threadId": "01a230d1-cd31-71a2-a871-d5fb77682195",
        "turnId": "01a230d1-cd4c-7950-a026-bba00c3056d2"}}
    assert out.entries[-1]["text"] == "codex turn interrupted", stderr_of(out)
    assert "fake codex" not in stderr_of(out)
    assert gone(tmp_path)


def test_cancel_during_a_pending_approval_withdraws_it(tmp_path: Path) -> None:
    person = Person(None)  # never answers

    async def scenario() -> Collect:
        out = Collect()
        task = asyncio.create_task(CodexExecutor().run(
            request_for(tmp_path, "interrupt", 1, person), out))
        await asyncio.wait_for(person.waiting.wait(), 20)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return out

    out = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert person.asked[0].title == "Write bye.txt"
    assert person.withdrawn == ["0"]
    lines = sent(tmp_path)
    assert lines[-1]["method"] == "turn/interrupt"
    assert not [m for m in lines if "result" in m]  # the request was never answered
    assert "codex turn interrupted" in [e["text"] for e in out.kinds("system")]
    assert gone(tmp_path)
    # codex never completes the file change it asked about: closed, not left running
    assert [(e["target"], e["status"]) for e in out.kinds("tool_call")] == \
        [("bye.txt", "running"), ("bye.txt", "error")]


def test_steer_sends_into_the_running_turn(tmp_path: Path) -> None:
    async def scenario() -> tuple[Collect, CodexExecutor]:
        out = Collect()
        executor = CodexExecutor()
        task = asyncio.create_task(executor.run(
            request_for(tmp_path, "interrupt", 0, Person(), steer=True), out))
        while not any(e.get("text") == "codex thread started" for e in out.entries):
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        await executor.steer("also say hello")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return out, executor

    out, executor = asyncio.run(asyncio.wait_for(scenario(), 30))
    steer = [m for m in sent(tmp_path) if m.get("method") == "turn/steer"]
    assert steer[0]["params"] == {"threadId": "01a230d1-cd31-71a2-a871-d5fb77682195",
                                  "expectedTurnId": "01a230d1-cd4c-7950-a026-bba00c3056d2",
                                  "input": [{"type": "text", "text": "also say hello"}]}
    assert out.kinds("user_message") == [{"kind": "user_message", "text": "also say hello",
                                          "data": {"steer": True}}]
    from aura.errors import AuraError
    with pytest.raises(AuraError, match="app-server mode"):
        asyncio.run(executor.steer("too late"))


def test_an_unexpected_answer_fails_the_fake(tmp_path: Path) -> None:
    # The fake is strict: answering the allow recording with a decline is refused.
    outcome, out = run(request_for(tmp_path, "allow", 0, Person(Choice.DENY)))
    assert outcome.exit_code != 0
    assert "fake codex: answer" in stderr_of(out)


def test_codex_exiting_mid_turn_is_a_clear_failure(tmp_path: Path) -> None:
    script = tmp_path / "dies.py"
    script.write_text("import sys\nsys.stdin.readline()\nprint('boom', file=sys.stderr)\n"
                      "sys.exit(7)\n")
    import sys
    request = RunRequest(prompt="x", cwd=str(tmp_path), session_id="s", execution_id="e",
                         approver=Person(), base_command=f"{sys.executable} {script}")
    outcome, _ = run(request)
    assert outcome.exit_code == 7 and outcome.error is not None
    assert "exited with code 7" in outcome.error and "boom" in outcome.error


def test_yolo_or_no_approver_keeps_codex_exec(tmp_path: Path) -> None:
    yolo = request_for(tmp_path, "allow", 0, Person(), approvals=Approvals(yolo=True))
    assert not CodexExecutor.uses_app_server(yolo)
    assert not CodexExecutor.uses_app_server(request_for(tmp_path, "allow", 0, None))
    assert CodexExecutor.uses_app_server(request_for(tmp_path, "allow", 0, Person()))


def test_answers_by_choice_and_by_option() -> None:
    request = ApprovalRequest("3", ApprovalKind.COMMAND, "Run `ls`",
                              {"execpolicy_amendment": ["ls"]}, ())
    assert answer(Decision(Choice.ALLOW_SESSION), request) == {"decision": "acceptForSession"}
    assert answer(Decision(Choice.DENY), request) == {"decision": "decline"}
    stop = Decision(Choice.DENY, option=DENY_AND_STOP)
    assert answer(stop, request) == {"decision": "cancel"}
    always = Decision(Choice.ALLOW,
                      option=ApprovalOption(AMEND_POLICY, "", OptionKind.ALLOW_ALWAYS))
    assert answer(always, request) == \
        {"decision": {AMEND_POLICY: {"execpolicy_amendment": ["ls"]}}}


HOSTILE = r'''
import json, sys
log = open(sys.argv[1], "w")
def read():
    line = sys.stdin.readline()
    log.write(line); log.flush()
    return json.loads(line) if line else None
def say(obj):
    sys.stdout.write((obj if isinstance(obj, str) else json.dumps(obj)) + "\n"); sys.stdout.flush()
init = read(); say({"id": init["id"], "result": {}})
read()  # initialized
start = read()
say("not json at all")
say({"method": "item/tool/requestUserInput", "id": 0, "params": {}})
say({"id": start["id"], "result": {"thread": {"id": "T"}}})
while True:
    msg = read()
    if msg.get("method") == "turn/start":
        break
say({"id": msg["id"], "result": {"turn": {"id": "U"}}})
say({"method": "item/commandExecution/requestApproval", "id": 1, "params": [1]})
say({"method": "item/commandExecution/requestApproval", "id": 2,
     "params": {"command": "rm -rf /", "itemId": "c"}})
say({"method": "turn/completed", "params": {"turn": {"id": "other", "status": "completed"}}})
answered = set()
while answered != {1, 2}:
    msg = read()
    if msg is None:
        sys.exit(5)
    if "method" not in msg:
        answered.add(msg["id"])
say({"method": "item/completed", "params": {"item": {"type": "agentMessage", "id": "m",
     "text": "partial"}}})
say({"method": "turn/completed", "params": {"turn": {"id": "U", "status": "failed",
     "error": {"message": "model exploded"}}}})
while read() is not None:
    pass
'''


def test_a_hostile_server_gets_clear_answers_and_nothing_is_lost(tmp_path: Path) -> None:
    import shlex
    import sys

    script = tmp_path / "hostile.py"
    script.write_text(HOSTILE)
    log = tmp_path / "got.jsonl"
    person = Person(Choice.ALLOW)
    request = RunRequest(prompt="go", cwd=str(tmp_path), session_id="s", execution_id="e",
                         approver=person,
                         base_command=shlex.join([sys.executable, str(script), str(log)]))
    outcome, out = run(request)
    assert outcome == Outcome(1, "T", "model exploded"), stderr_of(out)
    got = {m.get("id"): m for m in map(json.loads, log.read_text().splitlines())
           if "method" not in m}
    assert got[0]["error"]["code"] == -32601  # requestUserInput: not offered
    assert got[1]["error"]["code"] == -32602  # an approval with no params object
    assert got[2] == {"id": 2, "result": {"decision": "accept"}}
    assert person.asked[0].title == "Run `rm -rf /`"
    assert {"kind": "raw", "stream": "stdout", "text": "not json at all"} in out.entries
    assert any("requestUserInput" in e["text"] for e in out.kinds("system"))
    assert [e["text"] for e in out.kinds("assistant_message")] == ["partial"]
    assert out.kinds("error")[-1]["text"] == "model exploded"
