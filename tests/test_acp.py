"""The ACP client, gemini and qwen-code, on the real recorded exchanges.

Parser tests feed the recorded ``session/update`` notifications to the translator. The
end-to-end tests run `aura run` against tests/agents/fake_acp_agent.py, which replays a
recorded exchange over stdio and writes down everything aura sent. The copilot and
opencode recordings run through the same client (with -e qwen-code): what is tested
there is the shared client, not those executors.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from aura.contracts import ENTRY_KINDS, ToolAction
from aura.executors.acp.entries import KIND_ACTIONS, UpdateTranslator
from tests.conftest import (
    AGENTS,
    FIXTURES,
    TIMEOUT_FACTOR,
    agent_command,
    aura_argv,
    run_aura,
    write_agent,
)

AGENT_FIXTURES = FIXTURES / "agents"
PROMPT = "Create a file hello.txt containing the text hi, then say Done."
FOLLOW_UP = "Finally create third.txt containing 3."


def meta(name: str) -> dict[str, Any]:
    return json.loads((AGENT_FIXTURES / f"{name}.meta.json").read_text())


def exchange(name: str) -> list[dict[str, Any]]:
    path = AGENT_FIXTURES / f"{name}.exchange.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def first_turn(name: str) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
    """The updates of the first session/prompt, its result, and the recorded cwd."""
    steps = exchange(name)
    cwd = ""
    prompt_id = None
    updates: list[dict[str, Any]] = []
    for step in steps:
        msg = step["msg"]
        if step["dir"] == "client->agent":
            params = msg.get("params") or {}
            cwd = params.get("cwd", cwd) if isinstance(params, dict) else cwd
            if msg.get("method") == "session/prompt" and prompt_id is None:
                prompt_id = msg["id"]
            continue
        if prompt_id is None:
            continue
        if msg.get("method") == "session/update":
            updates.append(msg["params"])
        elif "method" not in msg and msg.get("id") == prompt_id:
            return updates, msg["result"], cwd
    raise AssertionError(f"{name}: no prompt result")


def translate(name: str) -> list[dict[str, Any]]:
    updates, result, cwd = first_turn(name)
    translator = UpdateTranslator(cwd, PROMPT)
    entries: list[dict[str, Any]] = []
    for params in updates:
        entries.extend(translator.feed(params))
    entries.extend(translator.finish(result))
    return entries


def assert_valid(entries: list[dict[str, Any]]) -> None:
    """Kinds and actions (spelled as plain strings in the translator) are the contract's."""
    actions = {a.value for a in ToolAction}
    assert all(e["kind"] in ENTRY_KINDS for e in entries)
    assert all(e["action"] in actions for e in entries if e["kind"] == "tool_call")
    assert set(KIND_ACTIONS.values()) <= actions


def assert_hello_turn(entries: list[dict[str, Any]]) -> None:
    """The write of hello.txt as a start/end pair, the reply, and usage."""
    assert_valid(entries)
    calls = [e for e in entries if e["kind"] == "tool_call"]
    hello = [e for e in calls if e.get("target") == "hello.txt"]
    assert [e["status"] for e in hello] == ["running", "ok"], calls
    assert hello[0]["id"] == hello[1]["id"]
    assert hello[0]["action"] == hello[1]["action"] == "file_write"
    assert hello[0]["tool"] == hello[1]["tool"]
    texts = [e["text"] for e in entries if e["kind"] == "assistant_message"]
    assert texts[-1] == "Done."
    usage = [e["usage"] for e in entries if e["kind"] == "usage"]
    assert len(usage) == 1 and usage[0]["input_tokens"] > 0 and usage[0]["output_tokens"] > 0


# parser -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["gemini-acp", "qwen-acp", "copilot-acp", "opencode-acp"])
def test_recorded_first_turn_translates(name: str) -> None:
    entries = translate(name)
    assert_hello_turn(entries)
    # No UI-only update (available commands, config options) leaks in as raw noise.
    assert not [e for e in entries if e["kind"] == "raw"]


def test_chunks_are_coalesced_into_one_message() -> None:
    updates, result, cwd = first_turn("copilot-acp")
    translator = UpdateTranslator(cwd)
    entries = [e for p in updates for e in translator.feed(p)] + translator.finish(result)
    texts = [e["text"] for e in entries if e["kind"] == "assistant_message"]
    # "I'll ", "do th", "at no", "w." arrive as four chunks before the tool call.
    assert texts == ["I'll do that now.", "Done."]


def test_qwen_usage_sums_per_call_figures_and_gemini_uses_quota() -> None:
    qwen = [e["usage"] for e in translate("qwen-acp") if e["kind"] == "usage"]
    assert qwen == [{"input_tokens": 200, "output_tokens": 40}]  # 2 model calls × 100/20
    gemini = [e["usage"] for e in translate("gemini-acp") if e["kind"] == "usage"]
    assert gemini == [{"input_tokens": 200, "output_tokens": 40}]


def test_thoughts_plans_commands_and_unknown_updates() -> None:
    t = UpdateTranslator("/w")
    out = []
    for update in [
        {"sessionUpdate": "agent_thought_chunk", "content": {"type": "text", "text": "hm"}},
        {"sessionUpdate": "agent_thought_chunk", "content": {"type": "text", "text": "m."}},
        {"sessionUpdate": "tool_call", "toolCallId": "c1", "title": "ls -la",
         "kind": "execute", "status": "pending", "rawInput": {"command": "ls -la"}},
        {"sessionUpdate": "tool_call_update", "toolCallId": "c1", "status": "failed",
         "content": [{"type": "content", "content": {"type": "text", "text": "nope"}}]},
        {"sessionUpdate": "plan", "entries": [
            {"content": "write", "status": "completed", "priority": "high"},
            {"content": "test", "status": "pending", "priority": "low"}]},
        {"sessionUpdate": "tool_call", "toolCallId": "c2", "title": "Reading a.py",
         "kind": "read", "status": "in_progress", "locations": [{"path": "/w/src/a.py"}]},
        {"sessionUpdate": "something_new", "x": 1},
        {"sessionUpdate": "tool_call", "toolCallId": "c3", "kind": "other",
         "title": "search_issues (github MCP Server)", "status": "completed",
         "rawInput": {"query": "acp"}},
    ]:
        out.extend(t.feed({"sessionId": "s", "update": update}))
    out.extend(t.finish({"stopReason": "cancelled"}, interrupted=True))
    assert_valid(out)
    assert out[0] == {"kind": "thinking", "text": "hmm."}
    assert out[1]["action"] == "command" and out[1]["target"] == "ls -la"
    assert out[2]["status"] == "error" and out[2]["output"] == "nope"
    assert out[3]["action"] == "todo" and out[3]["output"] == "[x] write\n[ ] test"
    assert out[4]["action"] == "file_read" and out[4]["target"] == "src/a.py"
    assert out[5]["kind"] == "raw" and "something_new" in out[5]["text"]
    assert out[6]["action"] == "mcp" and out[6]["target"] == "acp"
    assert [e["status"] for e in out[6:8]] == ["running", "ok"]
    assert out[8]["id"] == "c2" and out[8]["status"] == "error"  # unfinished at the end


# end to end ------------------------------------------------------------------------------

def fake(record: Path, *exchanges: str, flags: tuple[str, ...] = ()) -> str:
    return agent_command("fake_acp_agent.py", "--record", str(record), *flags,
                         *[str(AGENT_FIXTURES / f"{name}.exchange.jsonl") for name in exchanges])


def recorded(record: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the fake's start notes, the messages aura sent), over every process it started."""
    starts, received = [], []
    for line in record.read_text().splitlines():
        item = json.loads(line)
        if "recv" in item:
            received.append(item["recv"])
        else:
            starts.append(item)
    return starts, received


def sent(received: list[dict[str, Any]], method: str) -> list[dict[str, Any]]:
    return [m for m in received if m.get("method") == method]


def run_json(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess, list[dict], dict]:
    proc = run_aura("run", "--json", "--cwd", str(cwd), *args, cwd=cwd)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert lines, proc.stderr
    return proc, lines[:-1], lines[-1]


EXECUTOR_FOR = {"gemini-acp": "gemini", "qwen-acp": "qwen", "copilot-acp": "qwen-code",
          "opencode-acp": "qwen-code"}


@pytest.mark.parametrize("name", sorted(EXECUTOR_FOR))
def test_run_over_acp_with_yolo(tmp_path: Path, name: str) -> None:
    record = tmp_path / "record.jsonl"
    work = tmp_path / "work"
    work.mkdir()
    proc, entries, summary = run_json("-e", EXECUTOR_FOR[name], "--prompt", PROMPT, "--yolo",
                                      "--base-command", fake(record, name), cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert summary["state"] == "done"
    assert summary["native_session_id"] == meta(name)["session_id"]
    assert_hello_turn(entries)
    starts, received = recorded(record)
    assert starts[0]["argv"][:1] == ["--acp"] and "--yolo" in starts[0]["argv"]
    init = sent(received, "initialize")[0]["params"]
    assert init["protocolVersion"] == 1
    assert not any(init["clientCapabilities"]["fs"].values())  # never advertise fs
    assert sent(received, "session/new")[0]["params"] == {"cwd": str(work), "mcpServers": []}
    prompt = sent(received, "session/prompt")[0]["params"]
    assert prompt == {"sessionId": meta(name)["session_id"],
                      "prompt": [{"type": "text", "text": PROMPT}]}
    assert not sent(received, "session/load")


def test_unknown_agent_request_gets_a_jsonrpc_error(tmp_path: Path) -> None:
    # qwen, told about client fs in the recording, asks fs/write_text_file: aura offers
    # no fs, so it must answer with "method not found" (and say so in the session).
    record = tmp_path / "record.jsonl"
    proc, entries, _ = run_json("-e", "qwen", "--prompt", PROMPT, "--yolo",
                                "--base-command", fake(record, "qwen-acp"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    _, received = recorded(record)
    answers = [m for m in received if "method" not in m]
    assert answers and answers[0]["id"] == 0 and answers[0]["error"]["code"] == -32601
    assert any("fs/write_text_file" in e.get("text", "") for e in entries
               if e["kind"] == "system")


@pytest.mark.parametrize("name", ["qwen-acp", "copilot-acp", "opencode-acp"])
def test_follow_up_resumes_with_session_load(tmp_path: Path, name: str) -> None:
    record = tmp_path / "record.jsonl"
    executor = EXECUTOR_FOR[name]
    proc, _, first = run_json("-e", executor, "--prompt", PROMPT, "--yolo",
                              "--base-command", fake(record, name), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    record.write_text("")
    proc, entries, summary = run_json(
        "--session", first["session"], "--prompt", FOLLOW_UP, "--yolo",
        "--base-command", fake(record, f"{name}-load"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    native = meta(f"{name}-load")["resumed_session_id"]
    assert native == first["native_session_id"] == summary["native_session_id"]
    _, received = recorded(record)
    assert sent(received, "session/load")[0]["params"] == {
        "sessionId": native, "cwd": str(tmp_path), "mcpServers": []}
    assert not sent(received, "session/new")
    assert sent(received, "session/prompt")[0]["params"]["prompt"][0]["text"] == FOLLOW_UP
    # The agent's replay of the old conversation is not recorded a second time.
    targets = [e["target"] for e in entries if e["kind"] == "tool_call"]
    assert targets == ["third.txt", "third.txt"]
    assert [e["text"] for e in entries if e["kind"] == "assistant_message"][-1] == \
        "Done a third time."
    assert any("resumed" in e.get("text", "") for e in entries if e["kind"] == "system")


def test_gemini_resume_falls_back_to_a_transcript(tmp_path: Path) -> None:
    # gemini 0.61 advertises loadSession but answers "No previous sessions found".
    record = tmp_path / "record.jsonl"
    proc, _, first = run_json("-e", "gemini", "--prompt", PROMPT, "--yolo",
                              "--base-command", fake(record, "gemini-acp"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    record.write_text("")
    proc, entries, summary = run_json(
        "--session", first["session"][:8], "--prompt", "Now also create bye.txt.",
        "--base-command", fake(record, "gemini-acp-load", "gemini-acp"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    _, received = recorded(record)
    assert sent(received, "session/load")[0]["params"]["sessionId"] == \
        meta("gemini-acp")["session_id"]
    assert len(sent(received, "session/new")) == 1
    text = sent(received, "session/prompt")[0]["params"]["prompt"][0]["text"]
    assert PROMPT in text and "hello.txt" in text and text.endswith("Now also create bye.txt.")
    notes = [e["text"] for e in entries if e["kind"] == "system"]
    assert any("could not resume gemini session" in n and "No previous sessions" in n
               for n in notes)
    assert summary["state"] == "done"


@pytest.mark.parametrize(("flags", "option"), [
    # --no-ask: the flags answer (without it a person is asked: test_approvals_cli).
    (("--no-ask",), "cancel"), (("--yolo",), "proceed_once"),
    (("--auto-approve", "true"), "proceed_once")])
def test_permission_requests_follow_the_approval_flags(tmp_path: Path, flags: tuple[str, ...],
                                                       option: str) -> None:
    record = tmp_path / "record.jsonl"
    proc, entries, summary = run_json(
        "-e", "gemini", "--prompt", PROMPT, *flags,
        "--base-command", fake(record, "gemini-acp", flags=("--permission",)), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    starts, received = recorded(record)
    answers = [m for m in received if "method" not in m and m.get("id") == 9001]
    assert answers[0]["result"] == {"outcome": {"outcome": "selected", "optionId": option}}
    hello = [e for e in entries if e["kind"] == "tool_call" and e["target"] == "hello.txt"]
    refusals = [e["text"] for e in entries if e["kind"] == "system" and "refused" in e["text"]]
    if option == "cancel":
        # Recorded as a failed call at once; the agent's own "failed" update for the same
        # call (sent by the fake after the refusal) is not recorded a second time.
        assert [e["status"] for e in hello] == ["running", "error"]
        assert "permission refused by aura" in hello[1]["output"]
        assert refusals and "--yolo" in refusals[0] and "Writing to hello.txt" in refusals[0]
        assert "--yolo" not in starts[0]["argv"]
    else:
        assert [e["status"] for e in hello] == ["running", "ok"]
        assert not refusals
    if flags[:1] == ("--auto-approve",):
        assert starts[0]["argv"][-2:] == ["--approval-mode", "auto_edit"]
    assert summary["state"] == "done"


@pytest.mark.parametrize("behaviour", ["--hang", "--honor-cancel"])
def test_ctrl_c_sends_session_cancel_and_leaves_no_process(tmp_path: Path,
                                                           behaviour: str) -> None:
    # --hang: the agent ignores session/cancel and end of stdin (SIGTERM ends it);
    # --honor-cancel: it answers the prompt "cancelled" and exits when stdin closes.
    record = tmp_path / "record.jsonl"
    proc = subprocess.Popen(
        aura_argv("run", "--no-tui", "-e", "qwen", "--prompt", PROMPT, "--yolo",
                  "--base-command", fake(record, "qwen-acp", flags=(behaviour,))),
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ))
    deadline = time.monotonic() + 30 * TIMEOUT_FACTOR
    while time.monotonic() < deadline:
        if record.exists() and sent(recorded(record)[1], "session/prompt"):
            break
        time.sleep(0.05)
    else:
        proc.kill()
        raise AssertionError("the fake agent never got the prompt")
    time.sleep(0.3)  # let the replayed updates reach aura
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30 * TIMEOUT_FACTOR)
    assert proc.returncode == 130, err
    starts, received = recorded(record)
    cancels = sent(received, "session/cancel")
    assert cancels and cancels[0]["params"] == {"sessionId": meta("qwen-acp")["session_id"]}
    pid = starts[0]["pid"]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    exited = [json.loads(line) for line in record.read_text().splitlines()
              if '"exit"' in line]
    assert bool(exited) == (behaviour == "--honor-cancel")
    show = run_aura("session", "latest", "--json")
    data = json.loads(show.stdout)
    assert data["state"] == "cancelled"
    assert data["native_session_id"] == meta("qwen-acp")["session_id"]
    kinds = [e["kind"] for e in data["entries"]]
    assert "tool_call" in kinds  # what the agent did before Ctrl-C is kept


def test_agent_dying_mid_turn_fails_with_its_exit_code(tmp_path: Path) -> None:
    script = write_agent(tmp_path / "dies.py", [
        "import json, sys",
        "for line in sys.stdin:",
        "    msg = json.loads(line)",
        "    if msg['method'] == 'initialize':",
        "        result = {'protocolVersion': 1, 'agentCapabilities': {}}",
        "    elif msg['method'] == 'session/new':",
        "        result = {'sessionId': 'sess-1'}",
        "    else:",
        "        print('model backend unreachable', file=sys.stderr, flush=True)",
        "        sys.exit(3)",
        "    print(json.dumps({'jsonrpc': '2.0', 'id': msg['id'], 'result': result}),",
        "          flush=True)",
    ])
    proc, _, summary = run_json("-e", "qwen", "--prompt", "hi", "--base-command",
                                agent_command_for(script), cwd=tmp_path)
    assert proc.returncode == 3
    assert summary["state"] == "failed" and summary["native_session_id"] == "sess-1"
    assert "exited with code 3" in summary["error"]
    assert "model backend unreachable" in summary["error"]


def test_refusal_is_a_failed_turn(tmp_path: Path) -> None:
    script = write_agent(tmp_path / "refuses.py", [
        "import json, sys",
        "answers = {'initialize': {'protocolVersion': 1}, 'session/new': {'sessionId': 's'},",
        "           'session/prompt': {'stopReason': 'refusal'}}",
        "for line in sys.stdin:",
        "    msg = json.loads(line)",
        "    print(json.dumps({'jsonrpc': '2.0', 'id': msg['id'],",
        "                      'result': answers[msg['method']]}), flush=True)",
    ])
    proc, _, summary = run_json("-e", "gemini", "--prompt", "hi", "--base-command",
                                agent_command_for(script), cwd=tmp_path)
    assert proc.returncode == 1
    assert summary["state"] == "failed" and "refusal" in summary["error"]


def test_gemini_retries_with_the_legacy_acp_flag(tmp_path: Path) -> None:
    record = tmp_path / "record.jsonl"
    wrapper = write_agent(tmp_path / "old_gemini.py", [
        "import os, sys",
        "if '--acp' in sys.argv:",
        "    sys.exit(print('Unknown arguments: acp', file=sys.stderr) or 1)",
        f"os.execv(sys.executable, [sys.executable, {str(AGENTS / 'fake_acp_agent.py')!r},",
        f"         '--record', {str(record)!r},",
        f"         {str(AGENT_FIXTURES / 'gemini-acp.exchange.jsonl')!r}, *sys.argv[1:]])",
    ])
    proc, entries, _ = run_json("-e", "gemini", "--prompt", PROMPT, "--yolo",
                                      "--base-command", agent_command_for(wrapper),
                                      cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    starts, _ = recorded(record)
    assert starts[0]["argv"][0] == "--experimental-acp"
    assert_hello_turn(entries)


@pytest.mark.parametrize(("executor", "flag"), [("gemini", "--force"), ("qwen", "--trust"),
                                                ("qwen", "--allow-all-tools")])
def test_flags_without_meaning_are_usage_errors(tmp_path: Path, executor: str,
                                                flag: str) -> None:
    proc = run_aura("run", "-e", executor, "--prompt", "x", flag, "--base-command", "true",
                    cwd=tmp_path)
    assert proc.returncode == 2
    assert flag in proc.stderr and executor.split("-")[0] in proc.stderr


def test_missing_binary_names_what_was_looked_for(tmp_path: Path) -> None:
    proc = run_aura("run", "-e", "qwen", "--prompt", "x", "--no-tui", cwd=tmp_path,
                    env={"PATH": str(tmp_path)})
    assert proc.returncode == 1
    assert "qwen not found" in proc.stderr and "--executor-path qwen-code=" in proc.stderr


def agent_command_for(script: Path) -> str:
    return shlex.join([sys.executable, str(script)])


def test_missing_credentials_say_how_to_log_in(tmp_path: Path) -> None:
    # What gemini 0.61 answers on session/new when no API key is configured.
    script = write_agent(tmp_path / "no_key.py", [
        "import json, sys",
        "for line in sys.stdin:",
        "    msg = json.loads(line)",
        "    if msg['method'] == 'initialize':",
        "        reply = {'result': {'protocolVersion': 1, 'agentCapabilities': {}}}",
        "    else:",
        "        reply = {'error': {'code': -32000,",
        "                           'message': 'Gemini API key is missing or not configured.'}}",
        "    print(json.dumps({'jsonrpc': '2.0', 'id': msg['id'], **reply}), flush=True)",
    ])
    proc, _, summary = run_json("-e", "gemini", "--prompt", "hi", "--base-command",
                                agent_command_for(script), cwd=tmp_path)
    assert proc.returncode == 1
    assert summary["state"] == "failed"
    assert "session/new failed: Gemini API key is missing" in summary["error"]
    assert "GEMINI_API_KEY" in summary["error"]


def test_a_program_that_never_answers_initialize_times_out(tmp_path: Path,
                                                            aura_home: Path) -> None:
    (aura_home / "config.toml").write_text("[executors.gemini]\nstartup_timeout = 1\n")
    script = write_agent(tmp_path / "silent.py", ["import time", "time.sleep(60)"])
    proc, _, summary = run_json("-e", "gemini", "--prompt", "hi", "--base-command",
                                agent_command_for(script), cwd=tmp_path)
    assert proc.returncode == 1
    assert summary["state"] == "failed"
    assert "initialize failed: no answer within 1 s" in summary["error"]
    (aura_home / "config.toml").write_text("[executors.gemini]\nstartup_timeout = \"x\"\n")
    proc = run_aura("run", "-e", "gemini", "--prompt", "hi", "--base-command", "true",
                    cwd=tmp_path)
    assert proc.returncode == 2 and "startup_timeout" in proc.stderr


@pytest.mark.parametrize("new", ["hi", "a\nb\n", "x\n\ny", ""])
def test_new_file_diff_matches_difflib(new: str) -> None:
    import difflib

    ours = UpdateTranslator("/w")._diff({"path": "/w/f.txt", "oldText": "", "newText": new})
    expected = "\n".join(difflib.unified_diff([], new.splitlines(), "/dev/null", "b/f.txt",
                                              lineterm=""))
    assert ours == expected


ERRORS_AGENT = r"""
import json, sys
first = json.loads(sys.stdin.readline())
print("npm notice: not a message", flush=True)
print(json.dumps({"jsonrpc": "2.0", "id": 5, "method": "fs/read_text_file",
                  "params": {"path": "x"}}), flush=True)
answer = json.loads(sys.stdin.readline())
print(json.dumps({"jsonrpc": "2.0", "id": first["id"], "error": {
    "code": -32000, "message": "denied", "data": {"details": json.dumps(answer)}}}),
    flush=True)
sys.stdin.readline()
sys.exit(4)
"""


def test_connection_speaks_acp_errors_over_the_stdio_transport() -> None:
    import asyncio

    from aura.executors.acp.client import AcpError, AgentExited, Connection
    from aura.process import Child
    from aura.rpc import METHOD_NOT_FOUND

    asked: list[tuple[str, Any]] = []
    junk: list[str] = []

    def on_request(method: str, params: Any) -> Any:
        asked.append((method, params))
        raise AcpError(method, "not offered", METHOD_NOT_FOUND)

    conn = Connection(on_request, lambda _m, _p: None, junk.append)

    async def main() -> None:
        child = await Child.spawn(
            [sys.executable, "-c", ERRORS_AGENT], keep_stdin_open=True,
            on_lines=lambda stream, lines: [conn.feed(line) for line in lines
                                            if stream == "stdout"])
        conn.attach(child.write)
        with pytest.raises(AcpError) as info:
            await asyncio.wait_for(conn.request("initialize", {}), 20 * TIMEOUT_FACTOR)
        assert info.value.method == "initialize" and info.value.code == -32000
        assert str(info.value).startswith("initialize failed: denied: ")
        answer = json.loads(info.value.data["details"])
        assert answer["id"] == 5 and answer["error"] == {
            "code": METHOD_NOT_FOUND, "message": "fs/read_text_file failed: not offered"}
        assert asked == [("fs/read_text_file", {"path": "x"})]
        assert junk == ["npm notice: not a message"]
        waiting = asyncio.ensure_future(conn.request("session/new", {}))
        code = await asyncio.wait_for(child.wait(), 20 * TIMEOUT_FACTOR)
        conn.close(f"agent exited with code {code}")
        with pytest.raises(AgentExited, match="session/new failed: agent exited with code 4"):
            await waiting
        with pytest.raises(AgentExited):
            await conn.request("session/prompt", {})
        await conn.aclose()

    asyncio.run(main())
