"""Shared by the agent benchmarks: best-of timing, and `aura run --json` of a fake agent
that replays recorded lines, against a bare client that only reads and parses them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def best_of(runs: int, func: Callable[[], object]) -> float:
    """The fastest of ``runs`` calls, in seconds (the least disturbed by other work)."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def compare_parse(lines: list[str], parse: Callable[[], object], runs: int = 3
                  ) -> dict[str, object]:
    """Time ``parse`` (a parser over ``lines``) against json.loads of every line alone."""
    loads = json.loads

    def baseline() -> None:
        for line in lines:
            loads(line)

    base = best_of(runs, baseline)
    ours = best_of(runs, parse)
    return {"lines": len(lines), "lines_per_s": round(len(lines) / ours),
            "ratio_to_json_loads": round(base / ours, 3)}


def compare(aura: Sequence[str], baseline: Sequence[str], env: dict[str, str],
            cwd: Path, runs: int = 3) -> dict[str, object]:
    """Time both commands (best of ``runs``) and report aura against the baseline."""

    def run(argv: Sequence[str]) -> None:
        subprocess.run(list(argv), env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, check=True)

    base = best_of(runs, lambda: run(baseline))
    ours = best_of(runs, lambda: run(aura))
    return {"seconds": round(ours, 3), "baseline_seconds": round(base, 3),
            "ratio_to_bare_loop": round(base / ours, 3)}


def replay_run(agent: str, label: str, lines: list[str], tmp: Path) -> dict[str, object]:
    """`aura run --executor AGENT --json` with a fake AGENT on PATH that prints ``lines``,
    against a loop that runs the same fake and json.loads each line."""
    data = tmp / f"{label}.jsonl"
    data.write_text("\n".join(lines) + "\n")
    bin_dir = tmp / f"bin-{label}"
    bin_dir.mkdir()
    fake = bin_dir / agent
    fake.write_text(f"#!/bin/sh\nexec cat '{data}'\n")
    fake.chmod(0o755)
    home = tmp / f"home-{label}"
    home.mkdir()
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "AURA_HOME": str(home), "NO_COLOR": "1"}
    work = tmp / "work"
    work.mkdir(exist_ok=True)
    aura = [sys.executable, str(ROOT / "aura.py"), "run", "--executor", agent, "--prompt",
            "bench", "--json", "--no-tui"]
    baseline = [sys.executable, "-c",
                "import json, subprocess, sys\n"
                f"p = subprocess.Popen([{agent!r}], stdout=subprocess.PIPE, text=True)\n"
                "for line in p.stdout: json.loads(line)\n"
                "p.wait()\n"]
    return {"figure": "run", "agent": agent, "lines": len(lines),
            **compare(aura, baseline, env, work)}
