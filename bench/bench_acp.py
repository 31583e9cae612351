"""Throughput of the ACP client (gemini, qwen-code), against a bare JSON-RPC loop.

Run by hand: ``python3 bench/bench_acp.py [--lines N]``. The ``session/update``
notifications of each recorded first turn (tests/fixtures/agents/AGENT-acp.exchange.jsonl)
are repeated, with fresh tool call ids, into a stream of about N lines. Printed, one JSON
line per figure:

- ``parse``: ``json.loads`` + ``UpdateTranslator.feed`` per line in memory, as lines per
  second and as a ratio to ``json.loads`` alone over the same lines (the baseline, measured
  in the same run);
- ``run``: ``aura run --executor gemini|qwen-code --json`` end to end against a fake ACP
  agent that answers initialize and session/new and streams the updates as the turn
  (every entry stored in SQLite and printed), against a bare client: a
  ``python -c`` that sends the same three requests to the same fake agent and
  ``json.loads`` every line until the prompt's result. Both are timed with
  ``sys.executable``; the ratio is baseline time / aura time (1.0: as fast as the bare loop).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _replay import compare, compare_parse  # noqa: E402

from aura.executors.acp.entries import UpdateTranslator  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "agents"
AGENTS = {"gemini": "gemini-acp", "qwen-code": "qwen-acp", "copilot-via-qwen-code": "copilot-acp"}

FAKE_AGENT = r'''
import json, sys
data = sys.argv[1]
for line in sys.stdin:
    msg = json.loads(line)
    method = msg.get("method")
    if method == "initialize":
        result = {"protocolVersion": 1, "agentCapabilities": {}}
    elif method == "session/new":
        result = {"sessionId": "bench-session"}
    elif method == "session/prompt":
        with open(data, "rb") as fh:
            sys.stdout.buffer.write(fh.read())
        result = {"stopReason": "end_turn", "usage": {"inputTokens": 1, "outputTokens": 1}}
    else:
        continue
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}) + "\n")
    sys.stdout.flush()
'''

BARE_CLIENT = r'''
import json, subprocess, sys
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
def request(i, method, params):
    p.stdin.write(json.dumps({"jsonrpc": "2.0", "id": i, "method": method,
                              "params": params}) + "\n")
    p.stdin.flush()
    for line in p.stdout:
        msg = json.loads(line)
        if msg.get("id") == i and "method" not in msg:
            return msg["result"]
request(1, "initialize", {"protocolVersion": 1, "clientCapabilities": {}})
sid = request(2, "session/new", {"cwd": ".", "mcpServers": []})["sessionId"]
request(3, "session/prompt", {"sessionId": sid, "prompt": [{"type": "text", "text": "x"}]})
p.stdin.close()
p.wait()
'''


def turn_lines(name: str) -> tuple[list[str], str]:
    """The session/update lines of the first recorded prompt, and the recorded cwd."""
    cwd = ""
    prompt_id = None
    out: list[str] = []
    for raw in (FIXTURES / f"{name}.exchange.jsonl").read_text().splitlines():
        step = json.loads(raw)
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
            out.append(json.dumps(msg))
        elif msg.get("id") == prompt_id:
            break
    return out, cwd


def stream(name: str, target: int) -> tuple[list[str], str]:
    body, cwd = turn_lines(name)
    out: list[str] = []
    copy = 0
    while len(out) < target:
        out.extend(line.replace('"toolCallId": "', f'"toolCallId": "{copy}-') for line in body)
        copy += 1
    return out, cwd


def bench_parse(agent: str, lines: list[str], cwd: str) -> dict[str, object]:
    loads = json.loads

    def parse() -> None:
        translator = UpdateTranslator(cwd)
        feed = translator.feed
        for line in lines:
            feed(loads(line)["params"])
        translator.finish(None)

    return {"figure": "parse", "agent": agent, **compare_parse(lines, parse)}


def bench_run(agent: str, lines: list[str], tmp: Path) -> dict[str, object]:
    data = tmp / f"{agent}.jsonl"
    data.write_text("\n".join(lines) + "\n")
    fake = tmp / "fake_acp.py"
    fake.write_text(FAKE_AGENT)
    home = tmp / f"home-{agent}"
    home.mkdir()
    env = {**os.environ, "AURA_HOME": str(home), "NO_COLOR": "1"}
    work = tmp / "work"
    work.mkdir(exist_ok=True)
    agent_argv = [sys.executable, str(fake), str(data)]
    executor = "qwen-code" if agent.endswith("qwen-code") else agent
    aura = [sys.executable, str(ROOT / "aura.py"), "run", "--executor", executor, "--prompt",
            "bench", "--json", "--no-tui", "--base-command",
            " ".join(map(str, agent_argv))]
    baseline = [sys.executable, "-c", BARE_CLIENT, *agent_argv]

    return {"figure": "run", "agent": agent, "lines": len(lines),
            **compare(aura, baseline, env, work)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for agent, name in AGENTS.items():
            lines, cwd = stream(name, args.lines)
            print(json.dumps(bench_parse(agent, lines, cwd)), flush=True)
            print(json.dumps(bench_run(agent, lines, Path(tmp))), flush=True)


if __name__ == "__main__":
    main()
