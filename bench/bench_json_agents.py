"""Throughput of the codex, opencode and copilot executors, against a bare JSON loop.

Run by hand: ``python3 bench/bench_json_agents.py [--lines N]``. Each agent's recorded run
(tests/fixtures/agents/AGENT-write.stdout.jsonl) is repeated, with fresh item ids, into a
stream of about N lines. Printed, one JSON line per figure:

- ``parse``: the agent's parser alone on the stream in memory, as lines per second and as a
  ratio to ``json.loads`` over the same lines (the baseline, measured in the same run);
- ``run``: ``aura run --executor AGENT --json`` end to end through a fake agent that prints
  the stream (every entry stored in SQLite and printed), against the baseline process
  ``python -c 'for line in sys.stdin: json.loads(line)'`` reading the same stream from the
  same kind of fake agent. Both are timed with ``sys.executable``; the ratio is
  baseline time / aura time (1.0: as fast as the bare loop).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _replay import compare_parse, replay_run  # noqa: E402

from aura.executors.codex import CodexParser  # noqa: E402
from aura.executors.copilot import CopilotParser  # noqa: E402
from aura.executors.opencode import OpencodeParser  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "agents"
PARSERS = {"codex": CodexParser, "opencode": OpencodeParser, "copilot": CopilotParser}


def stream(agent: str, target: int) -> list[str]:
    """The recorded run repeated to about ``target`` lines, ids made unique per copy."""
    lines = [line for line in (FIXTURES / f"{agent}-write.stdout.jsonl").read_text()
             .splitlines() if line.strip()]
    head, body = (lines[:1], lines[1:]) if agent == "codex" else ([], lines)
    out = list(head)
    copy = 0
    while len(out) < target:
        for line in body:
            out.append(line.replace('"item_', f'"item_{copy}_')
                       .replace('"call_', f'"call_{copy}_')
                       .replace('"custom_call_', f'"custom_call_{copy}_')
                       .replace('"messageId":"', f'"messageId":"{copy}-'))
        copy += 1
    return out


def bench_parse(agent: str, lines: list[str]) -> dict[str, object]:
    def parse() -> None:
        parser = PARSERS[agent]("/tmp/agentlab/work")
        feed = parser.feed
        for line in lines:
            feed(line)
        parser.finish()

    return {"figure": "parse", "agent": agent, **compare_parse(lines, parse)}


def bench_run(agent: str, lines: list[str], tmp: Path) -> dict[str, object]:
    return replay_run(agent, agent, lines, tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for agent in PARSERS:
            lines = stream(agent, args.lines)
            print(json.dumps(bench_parse(agent, lines)), flush=True)
            print(json.dumps(bench_run(agent, lines, Path(tmp))), flush=True)


if __name__ == "__main__":
    main()
