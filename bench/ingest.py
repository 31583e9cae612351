#!/usr/bin/env python3
"""Ingest throughput: a fake agent prints N JSON lines (~200 bytes each) through
`aura run --executor custom --json > /dev/null`, storing every entry, against a baseline
measured in the same run: a plain Python loop that reads the same lines from a pipe and
json.loads them without storing. Prints one JSON line per figure.

    python3 bench/ingest.py [--lines 1000000] [--also 100000]
    python3 bench/ingest.py --index 300000

--index N stores N entries straight into a SQLiteStore (batches of 256, as the recorder
sends them) four ways, each in its own process of this interpreter: without a search
index (the baseline); as aura does (nothing at ingest: the first search indexes the
batches, timed apart as first_search_s); with a trigger on entries indexing each batch as
it is stored; with the writer adding one row per entry, its words extracted in Python. It
prints the wall and CPU seconds (the CPU of the whole process: reading the input, storing,
and for aura the first search), the ratios to the baseline, and the database sizes.
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
    seconds it used (user + system: steadier than wall time on a busy machine). Run in
    the temporary directory: inside a git checkout a run would prepare a worktree of it."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            cwd=tempfile.gettempdir())
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {shlex.join(argv)}: {proc.stderr.read().decode()[-500:]}")
    return elapsed, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def measure(count: int, tmp: Path, root: Path = ROOT) -> list[dict]:
    data = tmp / f"lines-{count}.jsonl"
    make_lines(data, count)
    baseline_code = ("import sys, json\nloads = json.loads\n"
                     "for line in sys.stdin.buffer:\n    loads(line)\n")
    # cat | python: the same pipe the agent's output takes into aura.
    baseline_argv = ["sh", "-c", f"cat {shlex.quote(str(data))} | "
                     f"{shlex.quote(PY)} -c {shlex.quote(baseline_code)}"]
    home = tmp / f"home-{count}"
    env = dict(os.environ, AURA_HOME=str(home))
    aura_argv = [PY, str(root / "aura.py"), "run", "--executor", "custom", "--base-command",
                 f"cat {shlex.quote(str(data))}", "--prompt", "bench", "--json"]
    base_s, _base_rss, base_cpu = timed(baseline_argv)
    aura_s, aura_rss, aura_cpu = timed(aura_argv, env)
    db = home / "aura.db"
    stored = subprocess.run(
        [PY, "-c", "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("
         "'select sum(last_seq - first_seq + 1) from entries'"
         ").fetchone()[0])", str(db)], capture_output=True, text=True).stdout.strip()
    # aura adds a few entries of its own: the prompt and the state changes.
    if not count <= int(stored) <= count + 10:
        raise SystemExit(f"stored {stored} entries, expected {count} and aura's own")
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


INDEX_CODE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from aura.contracts import Session
from aura.store_history import entry_words
from aura.store_sqlite import SQLiteStore
variant, db, data = sys.argv[2], sys.argv[3], sys.argv[4]
store = SQLiteStore(db)
if variant in ("none", "writer"):
    store._db.execute("DROP TABLE entry_search")
    store._db.execute("DROP TABLE entry_docs")
if variant == "trigger":  # the alternative kept in step at ingest by SQLite
    store._db.execute(
        "CREATE TRIGGER entry_search_add AFTER INSERT ON entries BEGIN INSERT INTO "
        "entry_docs (session, first_seq) VALUES (new.session, new.first_seq); INSERT INTO "
        "entry_search (rowid, bodies) VALUES (last_insert_rowid(), replace(replace("
        "replace(new.bodies, '\\n', ' '), '\\t', ' '), '\\r', ' ')); END")
if variant == "writer":  # the alternative: one row per entry, its words found in Python
    store._db.execute("CREATE VIRTUAL TABLE entry_words USING fts5(words)")
at = "2026-01-01T00:00:00.000Z"
store.create_session(Session(id="bench", executor="custom", state="done", cwd="/",
                             created_at=at, updated_at=at))
rows = []
with open(data) as fh:
    for seq, line in enumerate(fh, start=1):
        entry = json.loads(line)
        entry.update(seq=seq, ts=at, session="bench", execution="e1", stage="coding_initial")
        rows.append((seq, "e1", entry["kind"], json.dumps(entry)))
start = time.perf_counter()
for i in range(0, len(rows), 256):
    batch = rows[i:i + 256]
    if variant != "writer":
        store.append_entries("bench", batch)
        continue
    with store._write():
        cursor = store._db.execute(
            "INSERT INTO entries (session, first_seq, last_seq, bodies) VALUES (?, ?, ?, ?)",
            ("bench", batch[0][0], batch[-1][0], "\n".join(r[3] for r in batch)))
        base = cursor.lastrowid << 20
        store._db.executemany("INSERT INTO entry_words (rowid, words) VALUES (?, ?)",
                              [(base + n, entry_words(r[3])) for n, r in enumerate(batch)])
took = time.perf_counter() - start
start = time.perf_counter()
if variant == "deferred":  # what aura does: the first search indexes the batches
    store.search_entries("lorem")
print(took, time.perf_counter() - start)
"""


def index_cost(count: int, tmp: Path) -> list[dict]:
    """Storing ``count`` entries without an index, with aura's, and with a trigger."""
    data = tmp / f"index-lines-{count}.jsonl"
    make_lines(data, count)
    out: dict[str, tuple[float, float, int]] = {}
    for variant in ("none", "deferred", "trigger", "writer"):
        db = tmp / f"index-{variant}.db"
        argv = [PY, "-c", INDEX_CODE, str(ROOT), variant, str(db), str(data)]
        proc = subprocess.run(argv, capture_output=True, text=True, check=True)
        _wall, _rss, cpu = timed([*argv[:3], str(ROOT), variant,
                                  str(tmp / f"cpu-{variant}.db"), str(data)])
        size = sum(p.stat().st_size for p in tmp.glob(f"index-{variant}.db*"))
        took, later = (float(x) for x in proc.stdout.split())
        out[variant] = (took, cpu, size, later)
    base_s, base_cpu, base_size, _ = out["none"]
    return [{"figure": f"store_{variant}", "entries": count,
             "append_s": round(s, 3), "entries_per_s": round(count / s),
             "first_search_s": round(later, 3),
             "process_cpu_s": round(cpu, 2), "db_mb": round(size / 2**20, 1),
             "append_vs_no_index": round(s / base_s, 3),
             "cpu_vs_no_index": round(cpu / base_cpu, 3),
             "db_vs_no_index": round(size / base_size, 2)}
            for variant, (s, cpu, size, later) in out.items()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--also", type=int, default=100_000,
                        help="a smaller run, to show RSS stays flat (0: skip)")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="the aura checkout to run (another one, to compare in one run)")
    parser.add_argument("--index", type=int, default=0, metavar="N",
                        help="only compare storing N entries with and without the search "
                             "index (see above)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aura-bench-") as tmp:
        if args.index:
            for figure in index_cost(args.index, Path(tmp)):
                print(json.dumps(figure), flush=True)
            return
        for count in [c for c in (args.also, args.lines) if c]:
            for figure in measure(count, Path(tmp), args.root):
                print(json.dumps(figure), flush=True)


if __name__ == "__main__":
    main()
