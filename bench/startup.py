#!/usr/bin/env python3
"""Startup time: median of N runs of `python3 dist/aura.pyz --version` and
`… session latest` (with 10,000 sessions in the DB) against `python3 -c pass` in the same
run. Prints one JSON line per figure. Build the pyz first: python3 build_zipapp.py

    python3 bench/startup.py [--runs 20] [--sessions 10000] [--pyz dist/aura.pyz]
                             [--against OTHER.pyz]

``--against`` times a second pyz (e.g. one built from an earlier commit) in the same run,
its runs alternating with the first's (A B A B …), so both figures see the same machine;
``--against-root`` is the checkout that pyz was built from, whose own code fills its
sessions (a database of a newer schema is refused by an older aura).
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


def fill(home: Path, count: int) -> None:
    """``count`` finished sessions with a few entries each, written straight to the store."""
    from aura.contracts import Execution, Session, Transition
    from aura.store_sqlite import SQLiteStore

    store = SQLiteStore(home / "aura.db")
    for i in range(count):
        sid = f"{i:08x}-0000-4000-8000-000000000000"
        at = f"2026-01-01T00:00:{i % 60:02d}.{i % 1000:03d}Z"
        store.create_session(Session(sid, "custom", "done", "/tmp", at, at, prompt=f"task {i}"))
        store.record_transition(Transition(sid, None, "queued", at, "created"))
        store.create_execution(Execution(f"e{i}", sid, "coding_initial", "done", 0, at, at))
        store.append_entries(sid, [(n, f"e{i}", "assistant_message", json.dumps(
            {"seq": n, "session": sid, "kind": "assistant_message", "text": f"line {n}"}))
            for n in range(1, 6)])
    store.close()


def medians_ms(argvs: list[list[str]], runs: int, env: dict[str, str],
               envs: list[dict[str, str]] | None = None) -> list[float]:
    """The median wall time of each command (``envs``: each its own environment), their
    runs alternating."""
    times: list[list[float]] = [[] for _ in argvs]
    for _ in range(runs):
        for argv, taken, own in zip(argvs, times, envs or [env] * len(argvs), strict=True):
            start = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=own, check=True)
            taken.append(time.perf_counter() - start)
    return [statistics.median(taken) * 1000 for taken in times]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--pyz", type=Path, default=ROOT / "dist" / "aura.pyz")
    parser.add_argument("--against", type=Path, metavar="PYZ",
                        help="a second pyz to time in the same run (alternating)")
    parser.add_argument("--against-root", type=Path, metavar="DIR",
                        help="the checkout --against was built from (fills its database)")
    args = parser.parse_args()
    pyzs = [args.pyz, *([args.against] if args.against else [])]
    for pyz in pyzs:
        if not pyz.exists():
            sys.exit(f"{pyz} not found; run: python3 build_zipapp.py")
    py = sys.executable  # not the `python3` shim on PATH, which adds its own start-up
    with tempfile.TemporaryDirectory(prefix="aura-bench-") as tmp:
        env = dict(os.environ, AURA_HOME=tmp)
        fill(Path(tmp), args.sessions)
        envs = [env]
        if args.against:
            other = Path(tmp) / "against"
            other.mkdir()
            root = str(args.against_root or ROOT)
            subprocess.run([py, "-c", f"import sys; sys.path[:0] = [{root!r}, {root + '/bench'!r}]"
                            f"; from pathlib import Path; import startup; "
                            f"startup.fill(Path({str(other)!r}), {args.sessions})"], check=True)
            envs.append(dict(os.environ, AURA_HOME=str(other)))
        [base] = medians_ms([[py, "-c", "pass"]], args.runs, env)
        print(json.dumps({"figure": "python_c_pass_ms", "value": round(base, 1)}))
        for name, extra in (("version", ["--version"]), ("session_latest",
                                                          ["session", "latest"])):
            found = medians_ms([[py, str(pyz), *extra] for pyz in pyzs], args.runs, env, envs)
            for pyz, ms in zip(pyzs, found, strict=True):
                figure = {"figure": f"pyz_{name}_ms", "pyz": str(pyz), "value": round(ms, 1),
                          "vs_python_c_pass": round(ms / base, 2)}
                if name == "session_latest":
                    figure.update(sessions=args.sessions, target="<= 8x")
                if pyz != args.pyz:
                    figure["vs_pyz"] = round(ms / found[0], 2)
                print(json.dumps(figure), flush=True)


if __name__ == "__main__":
    main()
