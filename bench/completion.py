#!/usr/bin/env python3
"""How long one TAB takes: the process a shell starts per completion request, against
`python3 -c pass` (the floor: starting the interpreter) measured in the same run.

    python3 bench/completion.py [--runs 30] [--sessions 500]

Prints one JSON line per figure: median and best wall time in milliseconds, and the
difference to the baseline (what aura itself costs per TAB). A temporary AURA_HOME holds
``--sessions`` sessions so session-id completion reads a realistic database.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def seed(home: Path, count: int) -> None:
    from aura.contracts import Session, State, Transition
    from aura.store_sqlite import SQLiteStore

    store = SQLiteStore(home / "aura.db")
    for i in range(count):
        at = f"2026-11-{1 + i // 1440:02d}T{i // 60 % 24:02d}:{i % 60:02d}:00.000Z"
        sid = f"{i:08x}-0000-4000-8000-000000000000"
        store.create_session(Session(id=sid, executor="custom", state=State.QUEUED.value,
                                     cwd=str(home), created_at=at, updated_at=at,
                                     prompt=f"task number {i}"))
        store.record_transition(Transition(sid, None, State.QUEUED.value, at, "created"))
    store.close()


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--sessions", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        seed(Path(home), args.sessions)
        base_env = dict(os.environ, AURA_HOME=home)
        aura = [sys.executable, str(ROOT / "aura.py")]
        cases = {
            "python -c pass": ([sys.executable, "-c", "pass"], base_env),
            "complete `aura `": (aura, dict(base_env, _AURA_COMPLETE="bash_complete",
                                            COMP_WORDS="aura ", COMP_CWORD="1")),
            "complete `aura run --executor `": (
                aura, dict(base_env, _AURA_COMPLETE="bash_complete",
                           COMP_WORDS="aura run --executor ", COMP_CWORD="3")),
            "complete `aura run --session `": (
                aura, dict(base_env, _AURA_COMPLETE="bash_complete",
                           COMP_WORDS="aura run --session ", COMP_CWORD="3")),
            "complete `aura board move ID ` (columns)": (
                aura, dict(base_env, _AURA_COMPLETE="bash_complete",
                           COMP_WORDS="aura board move 00000001 ", COMP_CWORD="4")),
            "complete elvish `aura run --session `": (
                aura, dict(base_env, _AURA_COMPLETE="elvish_complete",
                           _AURA_ELVISH_WORDS='["run", "--session", ""]')),
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for argv, env in cases.values():
            timed(argv, env)  # warm the page cache and the bytecode cache
        for _ in range(args.runs):  # interleaved, so load changes hit every case alike
            for name, (argv, env) in cases.items():
                times[name].append(timed(argv, env))
    baseline = statistics.median(times["python -c pass"])
    for name, samples in times.items():
        median = statistics.median(samples)
        print(json.dumps({"figure": name, "median_ms": round(median, 1),
                          "best_ms": round(min(samples), 1),
                          "over_baseline_ms": round(median - baseline, 1),
                          "runs": args.runs, "sessions": args.sessions}))


if __name__ == "__main__":
    main()
