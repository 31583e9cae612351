"""Each agent's approval channel, against tests/agents/replay_approvals.py replaying the
exchanges recorded from the real CLIs (tests/fixtures/agents/approvals/): claude's control
protocol and the ACP agents (gemini, qwen, copilot, opencode, droid) through a small
Approver that answers as told and notes what it was asked."""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

from aura.approvals import ApprovalKind, ApprovalRequest, Choice, Decision, OptionKind
from aura.contracts import Entry
from aura.executors.acp.agents import DroidAcpExecutor, model_option
from aura.executors.base import Approvals, RunRequest
from aura.executors.claude import ClaudeExecutor
from aura.executors.copilot import CopilotExecutor
from aura.executors.droid import DroidExecutor
from aura.executors.gemini import GeminiExecutor
from aura.executors.opencode import OpencodeExecutor
from aura.executors.qwen import QwenExecutor

HERE = Path(__file__).parent
REPLAY = HERE / "agents" / "replay_approvals.py"
FIXTURES = HERE / "fixtures" / "agents" / "approvals"


class Collect:
    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.native: list[str] = []

    def emit(self, entries: list[Entry]) -> None:
        self.entries.extend(entries)

    def emit_json(self, items: list[tuple[Entry, str]]) -> None:
        self.entries.extend(entry for entry, _ in items)

    def set_native_session_id(self, native_id: str) -> None:
        self.native.append(native_id)


class Approver:
    """Answers every request with ``choice`` (None: never answers), noting the requests,
    withdrawals and cancellations."""

    def __init__(self, choice: Choice | None, message: str | None = None) -> None:
        self.choice = choice
        self.message = message
        self.asked: list[ApprovalRequest] = []
        self.withdrawn: list[str] = []
        self.cancelled = 0
        self.waiting = asyncio.Event()

    async def ask(self, request: ApprovalRequest) -> Decision:
        self.asked.append(request)
        self.waiting.set()
        if self.choice is None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        assert self.choice is not None
        return Decision(self.choice, self.message, by="test")

    def withdraw(self, native_id: str) -> None:
        self.withdrawn.append(native_id)


def request_for(tmp_path: Path, name: str, approver: Approver | None, turn: int = 1,
                **extra: Any) -> RunRequest:
    record = tmp_path / "record.jsonl"
    return RunRequest(
        prompt="Create a file hello.txt containing the text hi, then say Done.",
        cwd=str(tmp_path), session_id="s1", execution_id="e1",
        base_command=f"{shlex.quote(sys.executable)} {shlex.quote(str(REPLAY))}",
        env={"REPLAY_EXCHANGE": str(FIXTURES / f"{name}.exchange.jsonl"),
             "REPLAY_TURN": str(turn), "REPLAY_RECORD": str(record)},
        approver=approver,
        # droid's approval protocols are chosen in the config ([executors.droid] protocol).
        settings={"protocol": "acp"} if name.startswith("droid-acp") else {}, **extra)


def sent(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "record.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def run(executor: Any, request: RunRequest) -> tuple[Any, Collect]:
    out = Collect()
    outcome = asyncio.run(asyncio.wait_for(executor.run(request, out), 60))
    return outcome, out


# claude ---------------------------------------------------------------------------------

def test_claude_allow_writes_the_file_after_the_answer(tmp_path: Path) -> None:
    approver = Approver(Choice.ALLOW)
    outcome, out = run(ClaudeExecutor(), request_for(tmp_path, "claude-approve-allow",
                                                     approver))
    assert outcome.exit_code == 0, (outcome, out.entries)
    assert (tmp_path / "hello.txt").read_text() == "hi"
    [asked] = approver.asked
    assert asked.kind is ApprovalKind.FILE_CHANGE
    assert asked.title == f"Write {tmp_path}/hello.txt"
    assert [o.kind for o in asked.options] == [
        OptionKind.ALLOW_ONCE, OptionKind.ALLOW_SESSION, OptionKind.DENY]
    assert outcome.native_session_id == "b8912add-a084-48ae-b5e2-d569efc277c9"
    assert any(e["kind"] == "assistant_message" and e["text"] == "Done."
               for e in out.entries)
    argv = sent(tmp_path)[0]["argv"]
    assert "--permission-prompt-tool" in argv and "stdio" in argv
    assert "--dangerously-skip-permissions" not in argv


def test_claude_session_wide_allow_sends_the_suggestions_for_the_session(
        tmp_path: Path) -> None:
    approver = Approver(Choice.ALLOW_SESSION)
    outcome, _ = run(ClaudeExecutor(), request_for(tmp_path, "claude-approve-allow",
                                                   approver, turn=2))
    assert outcome.exit_code == 0
    answer = next(m for m in sent(tmp_path) if m.get("type") == "control_response")
    perms = answer["response"]["response"]["updatedPermissions"]
    assert perms == [{"type": "setMode", "mode": "acceptEdits", "destination": "session"}]
    assert (tmp_path / "bye.txt").read_text() == "bye"


def test_claude_deny_tells_the_model_the_message_and_writes_nothing(tmp_path: Path) -> None:
    approver = Approver(Choice.DENY, "The user denied this action in the lab client.")
    outcome, out = run(ClaudeExecutor(), request_for(tmp_path, "claude-approve-deny",
                                                     approver))
    assert outcome.exit_code == 0
    assert not (tmp_path / "hello.txt").exists()
    refused = [e for e in out.entries if e["kind"] == "tool_call" and e.get("status") == "error"]
    assert refused and refused[0]["output"] == "The user denied this action in the lab client."


def test_claude_shell_request_is_a_command(tmp_path: Path) -> None:
    approver = Approver(Choice.DENY, "no shell")
    outcome, _ = run(ClaudeExecutor(), request_for(tmp_path, "claude-approve-shell",
                                                   approver, turn=2))
    assert outcome.exit_code == 0
    [asked] = approver.asked
    assert asked.kind is ApprovalKind.COMMAND
    assert asked.detail["command"] == "printf sh > shell.txt"
    # The Bash suggestions would write a rule to .claude/settings.local.json: kept to the
    # session.
    assert all(rule["destination"] == "session" for rule in asked.detail["session_rules"])
    assert not (tmp_path / "shell.txt").exists()


def test_claude_interrupt_withdraws_the_pending_request(tmp_path: Path) -> None:
    approver = Approver(None)

    async def scenario() -> None:
        task = asyncio.create_task(ClaudeExecutor().run(
            request_for(tmp_path, "claude-interrupt", approver, turn=2), Collect()))
        await asyncio.wait_for(approver.waiting.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    [asked] = approver.asked
    assert approver.withdrawn == [asked.native_id]
    assert [m["request"]["subtype"] for m in sent(tmp_path)
            if m.get("type") == "control_request"] == ["initialize", "interrupt"]
    assert not (tmp_path / "bye.txt").exists()


def test_claude_without_approver_runs_the_plain_mode(tmp_path: Path) -> None:
    argv = ClaudeExecutor().build_command(request_for(tmp_path, "claude-approve-allow",
                                                      None)).argv
    assert "--input-format" not in argv and "-p" in argv
    yolo = request_for(tmp_path, "x", Approver(Choice.ALLOW), approvals=Approvals(yolo=True))
    assert not ClaudeExecutor.asks(yolo)


# ACP agents -----------------------------------------------------------------------------

@pytest.mark.parametrize(("executor", "name"), [
    (GeminiExecutor(), "gemini-acp-allow"), (QwenExecutor(), "qwen-acp-allow"),
    (CopilotExecutor(), "copilot-acp-allow"), (DroidExecutor(), "droid-acp-allow")])
def test_acp_allow_once(tmp_path: Path, executor: Any, name: str) -> None:
    approver = Approver(Choice.ALLOW)
    model = {"droid-acp-allow": "custom:mock-model"}.get(name)
    outcome, out = run(executor, request_for(tmp_path, name, approver, model=model))
    assert outcome.exit_code == 0, (outcome, out.entries[-5:])
    [asked] = approver.asked
    assert asked.kind is ApprovalKind.FILE_CHANGE
    assert "hello.txt" in asked.title
    if name != "copilot-acp-allow":  # copilot's write carries a unified diff only
        assert (tmp_path / "hello.txt").read_text() == "hi"
    argv = sent(tmp_path)[0]["argv"]
    assert "--yolo" not in argv and "--allow-all-tools" not in argv
    if name == "qwen-acp-allow":
        assert argv[-2:] == ["--approval-mode", "default"]
    if name == "droid-acp-allow":
        assert argv[:3] == ["exec", "--output-format", "acp"]
        config = [m for m in sent(tmp_path) if m.get("method") == "session/set_config_option"]
        assert config[0]["params"]["value"] == "custom:Mock-0"


@pytest.mark.parametrize(("executor", "name"), [
    (GeminiExecutor(), "gemini-acp-deny"), (CopilotExecutor(), "copilot-acp-deny"),
    (OpencodeExecutor(), "opencode-acp-deny")])
def test_acp_deny_picks_the_reject_option(tmp_path: Path, executor: Any, name: str) -> None:
    approver = Approver(Choice.DENY, "not now")
    outcome, out = run(executor, request_for(tmp_path, name, approver))
    assert outcome.exit_code == 0, (outcome, out.entries[-5:])
    assert not (tmp_path / "hello.txt").exists()
    assert any(e["kind"] == "tool_call" and e.get("status") == "error" and
               "not now" in e.get("output", "") for e in out.entries)
    if name == "opencode-acp-deny":
        assert sent(tmp_path)[0]["argv"] == ["acp"]
        config = json.loads(OpencodeExecutor().acp_env(
            request_for(tmp_path, name, approver))["OPENCODE_CONFIG_CONTENT"])
        assert config["permission"]["edit"] == config["permission"]["bash"] == "ask"


def test_opencode_allow_writes_and_its_echoed_write_is_answered(tmp_path: Path) -> None:
    """opencode 1.18 sends fs/write_text_file for an allowed write although aura offers no
    fs: aura writes that file and answers null (as recorded), not with an error that makes
    opencode print a stack trace."""
    approver = Approver(Choice.ALLOW)
    outcome, out = run(OpencodeExecutor(), request_for(tmp_path, "opencode-acp-allow",
                                                       approver))
    assert outcome.exit_code == 0, (outcome, out.entries[-5:])
    assert (tmp_path / "hello.txt").read_text() == "hi"
    answers = [m for m in sent(tmp_path) if "method" not in m and "argv" not in m]
    assert {"jsonrpc": "2.0", "id": 1, "result": None} in answers
    assert not any("fs/write_text_file" in e.get("text", "") for e in out.entries)


def test_opencode_shell_call_is_named_by_its_command(tmp_path: Path) -> None:
    """opencode's first update of a shell call carries only its cwd (also as location) and
    the tool's name as title: the entries still name the command, start and end alike."""
    approver = Approver(Choice.ALLOW)
    outcome, out = run(OpencodeExecutor(), request_for(tmp_path, "opencode-acp-allow",
                                                       approver, turn=2))
    assert outcome.exit_code == 0, (outcome, out.entries[-5:])
    assert (tmp_path / "shell.txt").read_text() == "sh"
    calls = [e for e in out.entries if e["kind"] == "tool_call"]
    assert [(e["action"], e["target"], e["status"]) for e in calls] == [
        ("command", "printf sh > shell.txt", "running"),
        ("command", "printf sh > shell.txt", "ok")]


def test_acp_write_request_is_carried_out_only_for_an_allowed_file(tmp_path: Path) -> None:
    """(Checked by hand on opencode 1.18.33: its fs/write_text_file comes before the file
    exists.) Only a path a person allowed, inside the agent's directory, is written."""
    from aura.executors.acp.client import write_allowed

    work = tmp_path / "w"
    work.mkdir()
    allowed = {str(work / "a.txt"), str(tmp_path / "outside.txt")}
    assert write_allowed({"path": str(work / "a.txt"), "content": "hi\n"}, str(work), allowed)
    assert (work / "a.txt").read_text() == "hi\n"
    assert not write_allowed({"path": str(work / "b.txt"), "content": "x"}, str(work), allowed)
    assert not (work / "b.txt").exists()
    assert not write_allowed({"path": str(tmp_path / "outside.txt"), "content": "x"},
                             str(work), allowed)
    assert not (tmp_path / "outside.txt").exists()
    assert not write_allowed({"path": "a.txt", "content": "x"}, str(work), allowed)
    assert not write_allowed({"path": str(work / "a.txt"), "content": 3}, str(work), allowed)
    assert not write_allowed(["nope"], str(work), allowed)
    assert not write_allowed({"path": str(work / "a.txt"), "content": "x"}, str(work), set())
    assert (work / "a.txt").read_text() == "hi\n"


def test_acp_session_wide_allow_picks_the_session_option(tmp_path: Path) -> None:
    """In a folder gemini trusts (recorded with --skip-trust: aura's --trust) its
    "Allow for this session" is picked (the replay expects the recorded proceed_always)."""
    approver = Approver(Choice.ALLOW_SESSION)
    outcome, _ = run(GeminiExecutor(), request_for(tmp_path, "gemini-acp-cancel", approver,
                                                   turn=2, approvals=Approvals(trust=True)))
    assert outcome.exit_code == 0
    assert (tmp_path / "bye.txt").read_text() == "bye"


def test_gemini_session_wide_edit_in_an_untrusted_folder_is_allowed_once(
        tmp_path: Path) -> None:
    """gemini 0.61 fails an edit allowed with proceed_always in a folder it does not trust
    ("Cannot enable privileged approval modes in an untrusted folder."): without --trust
    aura answers proceed_once (the replay expects the recorded proceed_once) and says that
    it remembers the session-wide answer itself."""
    approver = Approver(Choice.ALLOW_SESSION)
    outcome, out = run(GeminiExecutor(), request_for(tmp_path, "gemini-acp-allow", approver))
    assert outcome.exit_code == 0, (outcome, out.entries[-5:])
    assert (tmp_path / "hello.txt").read_text() == "hi"
    answers = [m for m in sent(tmp_path) if "result" in m]
    assert answers[0]["result"]["outcome"]["optionId"] == "proceed_once"
    assert any("allowed once" in e.get("text", "") for e in out.entries)
    assert GeminiExecutor().session_option_works(
        request_for(tmp_path, "x", approver), "execute")  # shell: an allowlist, works
    assert QwenExecutor().session_option_works(request_for(tmp_path, "x", approver), "edit")


def test_acp_session_wide_allow_never_picks_always_by_kind(tmp_path: Path) -> None:
    """opencode's "Always allow" is beyond the session: aura allows once instead and
    says so (the replay expects the recorded ``always``: here a mismatch is exit 3)."""
    approver = Approver(Choice.ALLOW_SESSION)
    _, out = run(OpencodeExecutor(), request_for(tmp_path, "opencode-acp-cancel",
                                                 approver, turn=2))
    answers = [m for m in sent(tmp_path) if "result" in m]
    assert answers[0]["result"]["outcome"]["optionId"] == "once"
    assert any("allowed once" in e.get("text", "") for e in out.entries)


@pytest.mark.parametrize("name", ["gemini-acp-cancel", "opencode-acp-cancel"])
def test_acp_cancel_during_a_pending_request(tmp_path: Path, name: str) -> None:
    approver = Approver(None)
    executor = GeminiExecutor() if name.startswith("gemini") else OpencodeExecutor()

    async def scenario() -> None:
        task = asyncio.create_task(executor.run(request_for(tmp_path, name, approver),
                                                Collect()))
        await asyncio.wait_for(approver.waiting.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert approver.cancelled == 1
    lines = sent(tmp_path)
    cancel = next(i for i, m in enumerate(lines) if m.get("method") == "session/cancel")
    assert lines[cancel + 1]["result"] == {"outcome": {"outcome": "cancelled"}}
    assert not (tmp_path / "hello.txt").exists()


def test_without_approver_the_json_modes_stay(tmp_path: Path) -> None:
    for executor in (CopilotExecutor(), OpencodeExecutor(), DroidExecutor()):
        argv = executor.build_command(request_for(tmp_path, "x", None)).argv
        assert "acp" not in argv and "--acp" not in argv


def test_droid_model_option_for_byok_models() -> None:
    session = {"configOptions": [{"id": "model", "options": [
        {"value": "gpt-5", "name": "GPT"}, {"value": "custom:Mock-0", "name": "Mock"}]}]}
    assert model_option(session, "custom:mock-model") == "custom:Mock-0"
    assert model_option(session, "gpt-5") == "gpt-5"
    assert model_option(session, "claude-x") is None
    assert model_option({}, "custom:x") is None
    assert DroidAcpExecutor.acp_args == ("exec", "--output-format", "acp")


# hostile and broken input ---------------------------------------------------------------

def test_acp_request_of_garbage_params_is_still_a_request() -> None:
    from aura.executors.acp.approval import CANCELLED, chosen, outcome, to_request

    ask = to_request({"toolCall": "nope", "options": [1, {"name": "x"}, None]}, "/w", "p-1")
    assert ask.native_id == "p-1" and ask.kind is ApprovalKind.TOOL and ask.options == ()
    option, why = chosen(ask, Decision(Choice.ALLOW))
    assert option is None and "no option" in why
    assert outcome(option) == CANCELLED


def test_acp_allow_never_takes_an_always_option() -> None:
    from aura.executors.acp.approval import chosen, to_request

    ask = to_request({"toolCall": {"kind": "execute", "rawInput": {"command": ["rm", "-rf"]}},
                      "options": [{"optionId": "always", "name": "Always allow",
                                   "kind": "allow_always"},
                                  {"optionId": "no", "name": "Reject", "kind": "reject_once"}]},
                     "/w", "p-1")
    assert ask.kind is ApprovalKind.COMMAND and ask.title == "Run `rm -rf`"
    assert chosen(ask, Decision(Choice.ALLOW))[0] is None
    assert chosen(ask, Decision(Choice.ALLOW_SESSION))[0] is None
    assert chosen(ask, Decision(Choice.DENY))[0].id == "no"  # type: ignore[union-attr]


def test_claude_request_of_odd_shapes() -> None:
    from aura.executors.claude_control import approval_request, permission_answer

    ask = {"tool_name": "mcp__x", "input": ["not", "a", "dict"], "permission_suggestions": 7}
    request = approval_request("r1", ask, "/w")
    assert request.kind is ApprovalKind.TOOL and request.detail["input"] == {}
    assert [o.kind for o in request.options] == [OptionKind.ALLOW_ONCE, OptionKind.DENY]
    answer = permission_answer(ask, Decision(Choice.ALLOW_SESSION))
    assert "updatedPermissions" not in answer  # nothing suggested: allowed once
    assert permission_answer(ask, Decision(Choice.DENY))["message"]


def test_claude_that_exits_before_initialize_is_a_clear_failure(tmp_path: Path) -> None:
    request = request_for(tmp_path, "claude-approve-allow", Approver(Choice.ALLOW))
    script = tmp_path / "dies.py"
    script.write_text("import sys\nsys.stderr.write('no key\\n')\nsys.exit(5)\n")
    import dataclasses

    request = dataclasses.replace(request, base_command=f"{sys.executable} {script}")
    outcome, out = run(ClaudeExecutor(), request)
    assert outcome.exit_code == 5
    assert "exit code 5" in (outcome.error or "")
    assert any(e.get("text") == "no key" for e in out.entries)


def test_claude_unknown_control_request_is_answered_with_an_error(tmp_path: Path) -> None:
    script = tmp_path / "asks.py"
    script.write_text(
        "import json, sys\n"
        "init = json.loads(sys.stdin.readline())\n"
        "print(json.dumps({'type': 'control_response', 'response': {'subtype': 'success',"
        " 'request_id': init['request_id'], 'response': {}}}), flush=True)\n"
        "sys.stdin.readline()\n"
        "print(json.dumps({'type': 'control_request', 'request_id': 'h1',"
        " 'request': {'subtype': 'hook_callback'}}), flush=True)\n"
        "answer = json.loads(sys.stdin.readline())\n"
        "print(json.dumps({'type': 'result', 'subtype': 'success', 'is_error': False,"
        " 'result': answer['response']['subtype'], 'session_id': 'n1'}), flush=True)\n"
        "sys.stdin.readline()\n")
    import dataclasses

    request = dataclasses.replace(
        request_for(tmp_path, "claude-approve-allow", Approver(Choice.ALLOW)),
        base_command=f"{sys.executable} {script}")
    outcome, out = run(ClaudeExecutor(), request)
    assert outcome.exit_code == 0 and outcome.native_session_id == "n1"
    assert any(e["kind"] == "assistant_message" and e["text"] == "error" for e in out.entries)
    assert any("hook_callback" in e.get("text", "") for e in out.entries)


def test_aura_executors_says_which_agents_ask() -> None:
    from aura.service.inventory import describe_all

    asks = {row["name"]: row["supports"]["asks"] for row in describe_all({})
            if "supports" in row}
    assert asks["amp"] is False  # no approval channel at all
    assert all(asks[name] for name in ("claude", "gemini", "qwen-code", "copilot",
                                       "opencode", "droid", "cursor-agent"))


# droid's own JSON-RPC ---------------------------------------------------------------------

def jsonrpc_request(tmp_path: Path, name: str, approver: Approver, turn: int = 1
                    ) -> RunRequest:
    import dataclasses

    return dataclasses.replace(request_for(tmp_path, name, approver, turn=turn),
                               model="custom:mock-model",
                               settings={"protocol": "stream-jsonrpc"})


def test_droid_jsonrpc_allow(tmp_path: Path) -> None:
    approver = Approver(Choice.ALLOW)
    outcome, out = run(DroidExecutor(), jsonrpc_request(tmp_path, "droid-jsonrpc-allow",
                                                        approver))
    assert outcome.exit_code == 0 and outcome.error is None, outcome
    assert outcome.native_session_id == "4e187254-6526-4d6c-b461-e8cda5fc2356"
    [asked] = approver.asked
    assert asked.kind is ApprovalKind.FILE_CHANGE and "hello.txt" in asked.title
    assert (tmp_path / "hello.txt").read_text() == "hi"
    assert [e["status"] for e in out.entries if e["kind"] == "tool_call"] == ["running", "ok"]
    assert any(e["kind"] == "assistant_message" and e["text"] == "Done." for e in out.entries)
    assert any(e["kind"] == "usage" for e in out.entries)
    assert sent(tmp_path)[0]["argv"][:5] == ["exec", "--input-format", "stream-jsonrpc",
                                             "--output-format", "stream-jsonrpc"]


def test_droid_jsonrpc_deny_and_shell(tmp_path: Path) -> None:
    approver = Approver(Choice.DENY, "no")
    outcome, out = run(DroidExecutor(), jsonrpc_request(tmp_path, "droid-jsonrpc-deny",
                                                        approver, turn=2))
    assert outcome.exit_code == 0, outcome
    [asked] = approver.asked
    assert asked.kind is ApprovalKind.COMMAND
    assert [o.kind for o in asked.options] == [
        OptionKind.ALLOW_ONCE, OptionKind.ALLOW_ALWAYS, OptionKind.DENY]
    assert not (tmp_path / "shell.txt").exists()
    assert any(e["kind"] == "tool_call" and e.get("status") == "error" for e in out.entries)


def test_droid_jsonrpc_interrupt_during_a_pending_request(tmp_path: Path) -> None:
    approver = Approver(None)

    async def scenario() -> None:
        task = asyncio.create_task(DroidExecutor().run(
            jsonrpc_request(tmp_path, "droid-jsonrpc-interrupt", approver), Collect()))
        await asyncio.wait_for(approver.waiting.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    [asked] = approver.asked
    assert approver.withdrawn == [asked.native_id]  # droid resolved it itself
    assert [m.get("method") for m in sent(tmp_path)[1:]] == [
        "droid.initialize_session", "droid.add_user_message", "droid.interrupt_session"]
    assert not (tmp_path / "hello.txt").exists()


def test_droid_protocol_setting_is_checked(tmp_path: Path) -> None:
    import dataclasses

    from aura.errors import ConfigError
    bad = dataclasses.replace(request_for(tmp_path, "x", None), settings={"protocol": "x"})
    with pytest.raises(ConfigError, match="protocol"):
        DroidExecutor().validate(bad)


def test_a_seeded_transcript_tells_the_agent_what_was_denied_and_why() -> None:
    """A follow-up that starts a fresh agent session (droid's stream-jsonrpc mode, gemini
    0.61, whose session/load fails) carries the person's deny message: droid itself only
    ever told the model "Tool execution cancelled by user" (entries as recorded)."""
    from aura.executors.base import transcript_prompt

    history: list[Entry] = [
        {"kind": "user_message", "text": "create hello.txt"},
        {"kind": "tool_call", "id": "c1", "tool": "Create", "action": "file_write",
         "status": "running", "target": "hello.txt"},
        {"kind": "approval", "id": "a1", "status": "pending", "text": "Create /w/hello.txt",
         "data": {"state": "pending", "title": "Create /w/hello.txt"}},
        {"kind": "approval", "id": "a1", "status": "denied", "text": "Create /w/hello.txt",
         "data": {"state": "denied", "title": "Create /w/hello.txt",
                  "by": "alice@box (aura deny)", "message": "no", "choice": "deny"}},
        {"kind": "tool_call", "id": "c1", "tool": "Create", "action": "file_write",
         "status": "error", "target": "hello.txt",
         "output": "Error: Tool execution cancelled by user"},
        {"kind": "approval", "id": "a2", "status": "denied", "text": "Run `ls`", "data": "?"},
    ]
    prompt = transcript_prompt(history, "now run the shell command")
    assert "(the user denied: Create /w/hello.txt; their message: no)" in prompt
    assert prompt.count("the user denied") == 2 and "(the user denied: Run `ls`)" in prompt
    assert prompt.endswith("New request:\nnow run the shell command")


def test_qwen_024_allow_write_and_shell_in_one_turn(tmp_path: Path) -> None:
    """Recorded from qwen 0.24.4 driven by aura (`--approval-mode default`): its shell
    call starts as ``rawInput: {}`` titled "Shell" and sends craft/drainMidTurnQueue, which
    aura answers with an error; the entries still name the command."""
    approver = Approver(Choice.ALLOW)
    outcome, out = run(QwenExecutor(), request_for(tmp_path, "qwen24-acp-allow", approver))
    assert outcome.exit_code == 0, (outcome, out.entries[-5:])
    assert (tmp_path / "hello.txt").read_text() == "hi\n"
    assert (tmp_path / "ran.txt").exists()
    assert [a.kind for a in approver.asked] == [ApprovalKind.FILE_CHANGE, ApprovalKind.COMMAND]
    assert approver.asked[1].title == "Run `touch ran.txt`"
    calls = [(e["action"], e["target"], e["status"]) for e in out.entries
             if e["kind"] == "tool_call"]
    assert calls == [("file_write", "hello.txt", "running"), ("file_write", "hello.txt", "ok"),
                     ("command", "touch ran.txt", "running"), ("command", "touch ran.txt", "ok")]
    assert sent(tmp_path)[0]["argv"][-2:] == ["--approval-mode", "default"]
