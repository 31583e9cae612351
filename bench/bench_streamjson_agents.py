"""Throughput of the stream-json executors (claude, droid), against a bare JSON loop.

Run by hand: ``python3 bench/bench_streamjson_agents.py [--lines N]``. A recorded run
(tests/fixtures/agents/: claude-write, claude-partial with its partial-message deltas,
droid-write) is repeated, with fresh tool-call ids per copy, into a stream of about N
lines (the ``system/init`` event once, as in one long session). Printed, one JSON line per
figure:

- ``parse``: the parser alone on the stream in memory, lines per second and the ratio to
  ``json.loads`` over the same lines (the baseline, measured in the same run);
- ``run``: ``aura run --executor AGENT --json`` end to end through a fake agent that
  prints the stream (every entry stored in SQLite and printed), against the baseline
  process ``python -c 'for line in pipe: json.loads(line)'`` reading the same stream from
  the same fake agent. Both timed with ``sys.executable``; ratio = baseline time / aura
  time (1.0: as fast as the bare loop).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _replay import compare_parse, replay_run  # noqa: E402

from aura.executors.base import LineParser  # noqa: E402
from aura.executors.droid import DroidParser  # noqa: E402
from aura.executors.streamjson import StreamJsonParser  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "agents"
RUNS: dict[str, tuple[str, Callable[[], LineParser]]] = {
    "claude-write": ("claude", StreamJsonParser),
    "claude-partial": ("claude", StreamJsonParser),
    "droid-write": ("droid", DroidParser),
}


def stream(recording: str, target: int) -> list[str]:
    lines = [line for line in (FIXTURES / f"{recording}.stdout.jsonl").read_text()
             .splitlines() if line.strip()]
    # One session: its init event once, then the turns over and over.
    head, body = lines[:1], lines[1:]
    out: list[str] = list(head)
    copy = 0
    while len(out) < target:
        for line in body:
            out.append(line.replace('"toolu_', f'"toolu_{copy}_')
                       .replace('"call_', f'"call_{copy}_'))
        copy += 1
    return out


def bench_parse(recording: str, lines: list[str]) -> dict[str, object]:
    make = RUNS[recording][1]

    def parse() -> None:
        parser = make()
        feed = parser.feed
        for line in lines:
            feed(line)
        parser.finish()

    return {"figure": "parse", "recording": recording, **compare_parse(lines, parse)}


def bench_run(recording: str, lines: list[str], tmp: Path) -> dict[str, object]:
    return {"recording": recording,
            **replay_run(RUNS[recording][0], recording, lines, tmp)}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for recording in RUNS:
            lines = stream(recording, args.lines)
            print(json.dumps(bench_parse(recording, lines)), flush=True)
            print(json.dumps(bench_run(recording, lines, Path(tmp))), flush=True)


if __name__ == "__main__":
    main()
