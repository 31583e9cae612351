#!/usr/bin/env python3
"""A fake agent that replays one recorded approval exchange
(tests/fixtures/agents/approvals/NAME.exchange.jsonl) exactly, both directions in order.

Configured by the environment (its argv is the agent's own flags, recorded and ignored):

REPLAY_EXCHANGE  the .exchange.jsonl file (NAME.meta.json next to it gives the recorded cwd)
REPLAY_TURN      which prompt to play (1-based, default 1): the handshake is played, then
                 the exchange from that prompt on
REPLAY_RECORD    a file that gets the argv and every line the client sent (JSON lines)

Agent lines are printed as recorded, with the recorded cwd replaced by the real one and the
client's own request ids put into the agent's responses. When the recording has the client
speak next, a line is read from stdin and checked against the recorded one: same message
type and method, and for an answer to an approval request the same id and the same answer
(claude: behavior, updatedPermissions only to the session, a message with a deny; ACP: the
same outcome and optionId). A mismatch prints ``replay: …`` on stderr and exits 3. After an
allowed write or command the fake does it (writes the file, runs the command), as the
agent would. End of stdin where the client should speak ends the process: exit 1 after an
``is_error`` result (as claude does), else 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

exchange_path = Path(os.environ["REPLAY_EXCHANGE"])
turn = int(os.environ.get("REPLAY_TURN", "1"))
record = os.environ.get("REPLAY_RECORD")
meta = json.loads(exchange_path.with_name(
    exchange_path.name.replace(".exchange.jsonl", ".meta.json")).read_text())
recorded_cwd = meta["cwd"]
cwd = os.getcwd()
steps = [json.loads(line) for line in exchange_path.read_text().splitlines() if line.strip()]
claude = "jsonrpc" not in steps[0]["msg"]
ids: dict[Any, Any] = {}  # recorded client request id → the real client's
last_error = False
asks: dict[Any, dict[str, Any]] = {}  # agent request id → its message


def note(obj: Any) -> None:
    if record:
        with open(record, "a") as out:
            out.write(json.dumps(obj) + "\n")


def fail(why: str) -> None:
    sys.stderr.write(f"replay: {why}\n")
    sys.stderr.flush()
    sys.exit(3)


def starts_turn(msg: dict[str, Any]) -> bool:
    if claude:
        return msg.get("type") == "user"
    return msg.get("method") in ("session/prompt", "droid.add_user_message")


def select(all_steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    starts = [i for i, s in enumerate(all_steps)
              if s["dir"] == "client->agent" and starts_turn(s["msg"])]
    if turn <= 1 or turn > len(starts):
        return all_steps
    return all_steps[:starts[0]] + all_steps[starts[turn - 1]:]


def agent_line(step: dict[str, Any]) -> str:
    global last_error
    raw = step["raw"].replace(recorded_cwd, cwd)
    msg = json.loads(raw)
    if claude:
        body = msg.get("response")
        if msg.get("type") == "control_response" and isinstance(body, dict) and \
                body.get("request_id") in ids:
            body["request_id"] = ids[body["request_id"]]
            raw = json.dumps(msg)
        if msg.get("type") == "result":
            last_error = bool(msg.get("is_error"))
        if msg.get("type") == "control_request":
            asks[msg["request_id"]] = msg["request"]
    elif "method" not in msg and msg.get("id") in ids:
        msg["id"] = ids[msg["id"]]
        raw = json.dumps(msg)
    elif msg.get("method") in ("session/request_permission", "droid.request_permission"):
        asks[msg["id"]] = msg["params"]
    return raw


def check_claude(want: dict[str, Any], got: dict[str, Any]) -> bool:
    """Whether the answer allowed a tool call (checked against the recording first)."""
    if got.get("type") != want.get("type"):
        fail(f"expected a {want.get('type')} line, got {got}")
    if want["type"] == "control_request":
        if got.get("request", {}).get("subtype") != want["request"]["subtype"]:
            fail(f"expected control_request {want['request']['subtype']}, got {got}")
        ids[want["request_id"]] = got.get("request_id")
    if want["type"] != "control_response":
        return False
    w, g = want["response"], got.get("response") or {}
    if g.get("request_id") != w["request_id"] or g.get("subtype") != "success":
        fail(f"expected a success answer to {w['request_id']}, got {got}")
    wr, gr = w["response"], g.get("response") or {}
    if gr.get("behavior") != wr["behavior"] or \
            ("updatedPermissions" in gr) != ("updatedPermissions" in wr) or \
            bool(gr.get("interrupt")) != bool(wr.get("interrupt")):
        fail(f"expected answer {wr}, got {gr}")
    if any(p.get("destination") != "session" for p in gr.get("updatedPermissions", [])):
        fail(f"a session-wide allow must stay in the session: {gr}")
    if gr["behavior"] == "deny" and not gr.get("message"):
        fail(f"a deny without a message: {gr}")
    if gr["behavior"] == "allow" and gr.get("updatedInput") != \
            asks.get(w["request_id"], {}).get("input"):
        fail(f"updatedInput is not the tool's input: {gr}")
    return gr["behavior"] == "allow"


def check_rpc(want: dict[str, Any], got: dict[str, Any]) -> bool:
    if "method" in want:
        if got.get("method") != want["method"]:
            fail(f"expected {want['method']}, got {got}")
        if "id" in want:
            ids[want["id"]] = got.get("id")
        return False
    if "error" in want:  # an agent request the client does not know (qwen 0.24's craft/…)
        if got.get("id") != want["id"] or "error" not in got:
            fail(f"expected an error answer to agent request {want['id']}, got {got}")
        return False
    if got.get("id") != want["id"] or "result" not in got:
        fail(f"expected the answer to agent request {want['id']}, got {got}")
    if not isinstance(want["result"], dict):  # e.g. opencode's fs/write_text_file: null
        if got["result"] != want["result"]:
            fail(f"expected result {want['result']}, got {got}")
        return False
    if "selectedOption" in want["result"]:  # droid's own JSON-RPC
        chosen = got["result"].get("selectedOption") if isinstance(got["result"], dict) \
            else None
        if chosen != want["result"]["selectedOption"]:
            fail(f"expected selectedOption {want['result']['selectedOption']}, got {got}")
        return str(chosen).startswith("proceed")
    outcome = got["result"].get("outcome") if isinstance(got["result"], dict) else None
    if outcome != want["result"].get("outcome"):
        fail(f"expected outcome {want['result'].get('outcome')}, got {outcome}")
    chosen = (outcome or {}).get("optionId")
    kinds = {o["optionId"]: o.get("kind", "") for o in
             asks.get(want["id"], {}).get("options", [])}
    return bool(chosen) and str(kinds.get(chosen, "")).startswith("allow")


def do_effect(ask: dict[str, Any]) -> None:
    """What the agent does once allowed: write the file, run the command."""
    if claude:
        tool, data = ask.get("tool_name"), ask.get("input") or {}
        if tool == "Write":
            Path(data["file_path"]).write_text(data.get("content", ""))
        elif tool == "Bash":
            subprocess.run(["sh", "-c", data["command"]], cwd=cwd, check=False)
        return
    for use in ask.get("toolUses") or ():  # droid's own JSON-RPC
        data = use["toolUse"]["input"]
        if "command" in data:
            subprocess.run(["sh", "-c", data["command"]], cwd=cwd, check=False)
        elif "file_path" in data:
            Path(data["file_path"]).write_text(data.get("content", ""))
    call = ask.get("toolCall") or {}
    raw = call.get("rawInput") if isinstance(call.get("rawInput"), dict) else {}
    if call.get("kind") == "execute" and isinstance(raw.get("command"), str):
        subprocess.run(["sh", "-c", raw["command"]], cwd=cwd, check=False)
    elif call.get("kind") == "edit":
        for block in call.get("content") or ():
            if block.get("type") == "diff" and block.get("path"):
                Path(block["path"]).write_text(block.get("newText") or "")
                return
        if isinstance(raw.get("file_path"), str) and isinstance(raw.get("content"), str):
            Path(raw["file_path"]).write_text(raw["content"])


def main() -> None:
    note({"argv": sys.argv[1:]})
    for step in select(steps):
        if step["dir"] == "agent->client":
            sys.stdout.write(agent_line(step) + "\n")
            sys.stdout.flush()
            continue
        line = sys.stdin.readline()
        if not line:
            sys.exit(1 if last_error else 0)
        try:
            got = json.loads(line)
        except ValueError:
            fail(f"not JSON: {line!r}")
        note(got)
        want = json.loads(step["raw"])
        allowed = check_claude(want, got) if claude else check_rpc(want, got)
        if allowed:
            key = want["response"]["request_id"] if claude else want["id"]
            do_effect(asks[key])
    line = sys.stdin.readline()  # the recording is over: wait for the client to close
    sys.exit(1 if last_error else 0)


if __name__ == "__main__":
    main()
