"""A fake stream-json agent: claude, droid, cursor-agent or amp, by the name it is run as.

Installed by the tests under the real binary's name in a tmp dir on PATH (a small wrapper
that runs this file), so aura's own program resolution finds it. Every invocation appends
one JSON line to $FAKE_AGENT_LOG: the argv it got, its stdin, the env variables the tests
check, and its cwd. Then it answers:

- claude: (with ``--input-format stream-json``, after the control protocol's initialize
  and the user message) replays the recorded claude-write run (claude-resume with
  ``--resume``) byte for byte, with the recorded session id replaced by the one aura
  assigned (``--session-id``) or resumed — what the real claude does. With
  FAKE_CLAUDE_RESUME=refuse a resume replays claude-resume-refused (claude's answer to
  a session id it does not know).
- droid: replays droid-write; with ``--session-id`` replays droid-resume (droid 0.215
  refused that resume: exit 1, no output) unless FAKE_DROID_RESUME=ok, then droid-write
  with the resumed id.
- cursor-agent and amp: no recordings exist; they print events in the shapes of their
  documented stream-json formats (cursor's docs/cli/reference/output-format, amp's
  "Streaming JSON" announcement): init with the session id, the user echo, a file write
  of hello.txt as a tool call, "Done.", and the result.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "agents"
CHECKED_ENV = ("IS_SANDBOX", "AURA_SESSION_ID", "FAKE_EXTRA")


def record(argv: list[str], stdin: str) -> None:
    log = os.environ.get("FAKE_AGENT_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"name": NAME, "argv": argv, "stdin": stdin,
                                 "env": {k: os.environ.get(k) for k in CHECKED_ENV},
                                 "cwd": os.getcwd()}) + "\n")


def option(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv else None


def replay(name: str, old_id: str | None, new_id: str | None) -> int:
    data = (FIXTURES / f"{name}.stdout.jsonl").read_bytes()
    if old_id and new_id:
        data = data.replace(old_id.encode(), new_id.encode())
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    sys.stderr.buffer.write((FIXTURES / f"{name}.stderr.txt").read_bytes())
    meta = json.loads((FIXTURES / f"{name}.meta.json").read_text())
    code = meta["exit_code"]
    return code if isinstance(code, int) else 0


def emit(*events: dict) -> None:
    for event in events:
        print(json.dumps(event), flush=True)


def claude(argv: list[str]) -> int:
    assigned = option(argv, "--session-id")
    resumed = option(argv, "--resume")
    if resumed and os.environ.get("FAKE_CLAUDE_RESUME") == "refuse":
        return replay("claude-resume-refused", "11111111-2222-3333-4444-555555555555",
                      resumed)
    if resumed:
        return replay("claude-resume", "7a45b3f8-29fb-48d9-82bd-e0165bbf8e6a", resumed)
    return replay("claude-write", "7a45b3f8-29fb-48d9-82bd-e0165bbf8e6a", assigned)


def droid(argv: list[str]) -> int:
    resumed = option(argv, "--session-id")
    recorded = "30776c4c-6810-4a98-9ec1-001ad0c8502f"
    if resumed and os.environ.get("FAKE_DROID_RESUME") != "ok":
        return replay("droid-resume", None, None)
    return replay("droid-write", recorded, resumed or str(uuid.uuid4()))


def cursor(argv: list[str], prompt: str) -> int:
    if "--force" not in argv and "--trust" not in argv:
        print("Workspace Trust Required: pass --trust or --force", file=sys.stderr)
        return 1
    sid = option(argv, "--resume") or str(uuid.uuid4())
    cwd = os.getcwd()
    args = {"path": os.path.join(cwd, "hello.txt"), "fileText": "hi"}
    emit({"type": "system", "subtype": "init", "apiKeySource": "login", "cwd": cwd,
          "session_id": sid, "model": "Fake 1", "permissionMode": "default"},
         {"type": "user", "message": {"role": "user", "content": [
             {"type": "text", "text": prompt}]}, "session_id": sid},
         {"type": "thinking", "subtype": "delta", "text": "Writing the file.",
          "session_id": sid},
         {"type": "thinking", "subtype": "completed", "session_id": sid},
         {"type": "tool_call", "subtype": "started", "call_id": "call_1",
          "tool_call": {"writeToolCall": {"args": args}}, "session_id": sid},
         {"type": "tool_call", "subtype": "completed", "call_id": "call_1",
          "tool_call": {"writeToolCall": {"args": args, "result": {"success": {
              "path": args["path"], "linesCreated": 1, "fileSize": 2}}}},
          "session_id": sid},
         {"type": "assistant", "message": {"role": "assistant", "content": [
             {"type": "text", "text": "Done."}]}, "session_id": sid},
         {"type": "result", "subtype": "success", "duration_ms": 10,
          "duration_api_ms": 10, "is_error": False, "result": "Done.",
          "session_id": sid, "request_id": "req-1"})
    return 0


def amp(argv: list[str], prompt: str) -> int:
    tid = argv[2] if argv[:2] == ["threads", "continue"] else f"T-{uuid.uuid4()}"
    cwd = os.getcwd()
    usage = {"input_tokens": 100, "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": 0, "output_tokens": 20, "max_tokens": 224000,
             "service_tier": "standard"}
    emit({"type": "system", "subtype": "init", "cwd": cwd, "session_id": tid,
          "tools": ["Bash", "create_file", "edit_file", "Read"], "mcp_servers": []},
         {"type": "user", "message": {"role": "user", "content": [
             {"type": "text", "text": prompt}]}, "parent_tool_use_id": None,
          "session_id": tid},
         {"type": "assistant", "message": {
             "type": "message", "role": "assistant", "content": [
                 {"type": "tool_use", "id": "toolu_1", "name": "create_file",
                  "input": {"path": os.path.join(cwd, "hello.txt"), "content": "hi"}}],
             "stop_reason": "tool_use", "usage": usage},
          "parent_tool_use_id": None, "session_id": tid},
         {"type": "user", "message": {"role": "user", "content": [
             {"type": "tool_result", "tool_use_id": "toolu_1",
              "content": "Successfully created file", "is_error": False}]},
          "parent_tool_use_id": None, "session_id": tid},
         {"type": "assistant", "message": {
             "type": "message", "role": "assistant", "content": [
                 {"type": "text", "text": "Done."}],
             "stop_reason": "end_turn", "usage": usage},
          "parent_tool_use_id": None, "session_id": tid},
         {"type": "result", "subtype": "success", "duration_ms": 2906, "is_error": False,
          "num_turns": 2, "result": "Done.", "session_id": tid})
    return 0


def claude_control(argv: list[str]) -> int:
    """claude with ``--input-format stream-json`` (the control protocol aura uses when a
    person answers approvals): answer initialize, take the user message, replay as usual,
    then wait for stdin to close — what the real claude does."""
    code = 0
    prompt = ""
    for line in sys.stdin:
        message = json.loads(line)
        if message.get("type") == "control_request":
            request = message.get("request") or {}
            print(json.dumps({"type": "control_response", "response": {
                "subtype": "success", "request_id": message.get("request_id"),
                "response": {"commands": []} if request.get("subtype") == "initialize"
                else {}}}), flush=True)
        elif message.get("type") == "user" and not prompt:
            prompt = str((message.get("message") or {}).get("content", ""))
            record(argv, prompt)
            code = claude(argv)
    return code


def main() -> int:
    argv = sys.argv[1:]
    if NAME == "claude" and option(argv, "--input-format") == "stream-json":
        return claude_control(argv)
    stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    record(argv, stdin)
    if "--version" in argv:
        print(f"{NAME} 9.9.9 (fake)")
        return 0
    if NAME == "claude":
        return claude(argv)
    if NAME == "droid":
        return droid(argv)
    if NAME == "cursor-agent":
        return cursor(argv, stdin or (argv[-1] if argv else ""))
    if NAME == "amp":
        prompt = option(argv, "-x") or stdin
        return amp(argv, prompt)
    print(f"fake agent: unknown name {NAME}", file=sys.stderr)
    return 2


NAME = os.environ.get("FAKE_AGENT_NAME") or Path(sys.argv[0]).name

if __name__ == "__main__":
    sys.exit(main())
