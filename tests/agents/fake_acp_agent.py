#!/usr/bin/env python3
"""A fake ACP agent that replays recorded exchanges (tests/fixtures/agents/*.exchange.jsonl).

usage: fake_acp_agent.py --record FILE [--hang | --honor-cancel] [--permission] EXCHANGE...
       [agent flags]

Each request the client sends is matched by method to the next recorded request of that
method (across the given exchanges, in order); the agent messages recorded after it are
sent back with the response id rewritten to the client's id and the recorded working
directory replaced by the client's. Agent→client requests in the recording (fs/…) are sent
as recorded and the client's answer is awaited. A request with no recording left gets a
JSON-RPC error. Everything the client sent, the argv and the pid go to the record file.

--hang        never answer session/prompt (after the recorded updates); on session/cancel
              record it, and on end of stdin keep running until a signal ends the process.
--honor-cancel  like --hang, but session/cancel makes the prompt return stopReason
              "cancelled", and end of stdin ends the process (what a well-behaved agent does).
--permission  before the first tool call of a prompt, ask session/request_permission
              (options allow_once, allow_always, reject_once); when the client rejects it,
              the tool call is reported failed instead of replayed. (The recordings ran
              with --yolo, so this request is synthesized in the shape ACP defines.)
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import defaultdict, deque

args = sys.argv[1:]
record_path = None
hang = permission = honor_cancel = False
exchanges: list[str] = []
agent_flags: list[str] = []
while args:
    arg = args.pop(0)
    if arg == "--record":
        record_path = args.pop(0)
    elif arg == "--hang":
        hang = True
    elif arg == "--honor-cancel":
        hang = honor_cancel = True
    elif arg == "--permission":
        permission = True
    elif arg.endswith(".jsonl") and not agent_flags:
        exchanges.append(arg)
    else:
        agent_flags.append(arg)

record = open(record_path, "a", encoding="utf-8") if record_path else None  # noqa: SIM115


def note(item: dict) -> None:
    if record is not None:
        record.write(json.dumps(item) + "\n")
        record.flush()


note({"argv": agent_flags, "pid": os.getpid(), "cwd": os.getcwd()})

# method -> queue of (recorded request, recorded cwd, messages the agent sent after it)
script: dict[str, deque] = defaultdict(deque)
for path in exchanges:
    with open(path, encoding="utf-8") as fh:
        steps = [json.loads(line) for line in fh if line.strip()]
    recorded_cwd = None
    current = None
    for step in steps:
        msg = step["msg"]
        if step["dir"] == "client->agent":
            params = msg.get("params") or {}
            if isinstance(params, dict) and params.get("cwd"):
                recorded_cwd = params["cwd"]
            if "method" in msg and "id" in msg:
                current = (msg, [])
                script[msg["method"]].append((msg, recorded_cwd, current[1]))
            # (the client's answers to agent requests are awaited live, not replayed)
        elif current is not None:
            current[1].append(msg)

stdin = sys.stdin
pending_lines: deque = deque()
actual_cwd = None


def send(msg: dict, recorded_cwd: str | None = None) -> None:
    text = json.dumps(msg)
    if recorded_cwd and actual_cwd and recorded_cwd != actual_cwd:
        text = text.replace(recorded_cwd, actual_cwd)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def read_message() -> dict | None:
    if pending_lines:
        return pending_lines.popleft()
    while True:
        line = stdin.readline()
        if not line:
            return None
        if line.strip():
            msg = json.loads(line)
            note({"recv": msg})
            return msg


def await_answer(request_id) -> dict | None:
    """Read until the client answers our request; keep other messages for later."""
    while True:
        line = stdin.readline()
        if not line:
            return None
        if not line.strip():
            continue
        msg = json.loads(line)
        note({"recv": msg})
        if "method" not in msg and msg.get("id") == request_id:
            return msg
        pending_lines.append(msg)


def ask_permission(session_id: str, update: dict, seq: int, recorded_cwd: str | None) -> bool:
    request_id = 9000 + seq
    send({"jsonrpc": "2.0", "id": request_id, "method": "session/request_permission",
          "params": {"sessionId": session_id,
                     "toolCall": {"toolCallId": update.get("toolCallId"),
                                  "title": update.get("title"), "kind": update.get("kind"),
                                  "locations": update.get("locations", []),
                                  "status": "pending"},
                     "options": [
                         {"optionId": "proceed_always", "name": "Always allow",
                          "kind": "allow_always"},
                         {"optionId": "proceed_once", "name": "Allow", "kind": "allow_once"},
                         {"optionId": "cancel", "name": "Reject", "kind": "reject_once"}]}},
         recorded_cwd)
    answer = await_answer(request_id) or {}
    outcome = (answer.get("result") or {}).get("outcome") or {}
    return outcome.get("optionId") in ("proceed_always", "proceed_once")


def replay(request: dict, recorded: dict, recorded_cwd: str | None, messages: list) -> None:
    asked = 0
    refused: set[str] = set()
    for msg in messages:
        update = (msg.get("params") or {}).get("update") or {}
        call_id = update.get("toolCallId")
        if call_id in refused:
            continue
        if "method" not in msg and msg.get("id") == recorded.get("id"):
            if hang and request["method"] == "session/prompt":
                hang_forever(request["id"])
            answer = dict(msg, id=request["id"])
            send(answer, recorded_cwd)
            continue
        if permission and update.get("sessionUpdate") == "tool_call":
            asked += 1
            if not ask_permission(msg["params"]["sessionId"], update, asked, recorded_cwd):
                refused.add(call_id)
                send({"jsonrpc": "2.0", "method": "session/update", "params": {
                    "sessionId": msg["params"]["sessionId"], "update": {
                        "sessionUpdate": "tool_call_update", "toolCallId": call_id,
                        "status": "failed", "content": [{"type": "content", "content": {
                            "type": "text", "text": "permission denied"}}]}}})
                continue
        if "method" in msg and "id" in msg:
            send(msg, recorded_cwd)
            await_answer(msg["id"])
            continue
        send(msg, recorded_cwd)


def hang_forever(prompt_id) -> None:
    while True:
        msg = read_message()
        if msg is None:
            break  # stdin closed
        if honor_cancel and msg.get("method") == "session/cancel":
            send({"jsonrpc": "2.0", "id": prompt_id, "result": {"stopReason": "cancelled"}})
    if honor_cancel:
        note({"exit": "end of stdin"})
        sys.exit(0)
    while True:  # keep running until a signal ends the process
        time.sleep(1)


while True:
    request = read_message()
    if request is None:
        break
    method = request.get("method")
    if "id" not in request or method is None:
        continue  # a notification (session/cancel) or a stray answer: recorded above
    params = request.get("params") or {}
    if isinstance(params, dict) and params.get("cwd"):
        actual_cwd = params["cwd"]
    if not script.get(method):
        send({"jsonrpc": "2.0", "id": request["id"],
              "error": {"code": -32601, "message": f"no recording left for {method}"}})
        continue
    recorded, recorded_cwd, messages = script[method].popleft()
    replay(request, recorded, recorded_cwd, messages)
