#!/usr/bin/env python3
"""Ingest throughput: a fake agent prints N JSON lines (~200 bytes each) through
`aura run --executor custom --json > /dev/null`, storing every entry, against a baseline
measured in the same run: a plain Python loop that reads the same lines from a pipe and
json.loads them without storing. Prints one JSON line per figure.

    python3 bench/ingest.py [--lines 1000000] [--also 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def make_lines(path: Path, count: int) -> None:
    filler = "lorem ipsum dolor sit amet " * 4
    with path.open("w") as fh:
        for i in range(count):
            if i % 10 == 9:
                line = {"kind": "tool_call", "tool": "Bash", "action": "command",
                        "target": f"pytest -k case_{i}", "status": "ok", "output": filler[:70]}
            else:
                line = {"kind": "assistant_message", "text": f"{i:08d} {filler}"[:150]}
            fh.write(json.dumps(line) + "\n")


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int, float]:
    """Wall seconds, peak RSS (KiB) of the biggest process of the tree, and the CPU
    seconds it used (user + system: steadier than wall time on a busy machine)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {shlex.join(argv)}: {proc.stderr.read().decode()[-500:]}")
    return elapsed, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def measure(count: int, tmp: Path) -> list[dict]:
    data = tmp / f"lines-{count}.jsonl"
    make_lines(data, count)
    baseline_code = ("import sys, json\nloads = json.loads\n"
                     "for line in sys.stdin.buffer:\n    loads(line)\n")
    # cat | python: the same pipe the agent's output takes into aura.
    baseline_argv = ["sh", "-c", f"cat {shlex.quote(str(data))} | "
                     f"{shlex.quote(PY)} -c {shlex.quote(baseline_code)}"]
    home = tmp / f"home-{count}"
    env = dict(os.environ, AURA_HOME=str(home))
    aura_argv = [PY, str(ROOT / "aura.py"), "run", "--executor", "custom", "--base-command",
                 f"cat {shlex.quote(str(data))}", "--prompt", "bench", "--json"]
    base_s, _base_rss, base_cpu = timed(baseline_argv)
    aura_s, aura_rss, aura_cpu = timed(aura_argv, env)
    db = home / "aura.db"
    stored = subprocess.run(
        [PY, "-c", "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("
         "'select sum(last_seq - first_seq + 1) - 3 from entries'"
         ").fetchone()[0])", str(db)], capture_output=True, text=True).stdout.strip()
    if int(stored) != count:
        raise SystemExit(f"stored {stored} entries, expected {count}")
    return [
        {"figure": "baseline_lines_per_s", "lines": count, "value": round(count / base_s)},
        {"figure": "aura_lines_per_s", "lines": count, "value": round(count / aura_s),
         "stored": int(stored)},
        {"figure": "aura_vs_baseline", "lines": count, "value": round(base_s / aura_s, 3),
         "target": ">= 0.5"},
        {"figure": "cpu_seconds", "lines": count, "baseline": round(base_cpu, 2),
         "aura": round(aura_cpu, 2), "baseline_vs_aura": round(base_cpu / aura_cpu, 3)},
        {"figure": "aura_peak_rss_mb", "lines": count, "value": round(aura_rss / 1024, 1),
         "target": "< 150"},
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--also", type=int, default=100_000,
                        help="a smaller run, to show RSS stays flat (0: skip)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aura-bench-") as tmp:
        for count in [c for c in (args.also, args.lines) if c]:
            for figure in measure(count, Path(tmp)):
                print(json.dumps(figure), flush=True)


if __name__ == "__main__":
    main()
