#!/usr/bin/env python3
"""Does the TUI keep up with a flooding agent? Two figures, one JSON line each:

1. ``logview``: the Logs pane alone, in this process: entries appended at full speed with
   a frame drawn every 1/25 s of work, as the TUI's ticker does; entries per second.
2. ``end_to_end``: a fake agent printing N lines, run by `aura run` in the TUI on a real
   terminal (tmux, 200x50) until the footer says done, against the same run with
   `--json > /dev/null` (no UI at all) measured in the same session; lines per second.

    python3 bench/tui.py [--lines 200000]
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
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AGENT = """\
import sys
n = int(sys.argv[1])
sys.stdout.write("".join(f"line {i:06d} of a flooding agent, with some text\\n"
                         for i in range(1, n + 1)))
"""


def logview(count: int) -> dict:
    from aura.tui.app import FPS, LogView

    view = LogView()
    entries = [(i, {"kind": "assistant_message", "text": f"line {i:06d} of a flood"})
               for i in range(1, count + 1)]
    frames = 0
    start = last = time.perf_counter()
    for start_at in range(0, count, 200):  # the executor delivers lines in chunks
        for seq, entry in entries[start_at:start_at + 200]:
            view.add(seq, entry)
        now = time.perf_counter()
        if now - last >= 1 / FPS:
            view.rows(140, 45)
            frames += 1
            last = now
    view.rows(140, 45)
    elapsed = time.perf_counter() - start
    return {"figure": "logview", "entries": count, "seconds": round(elapsed, 3),
            "entries_per_s": round(count / elapsed), "frames": frames + 1,
            "live_lines": len(view.lines)}


def end_to_end(lines: int, home: str, agent: Path) -> list[dict]:
    base = [sys.executable, str(ROOT / "aura.py"), "run", "--executor", "custom",
            "--base-command", shlex.join([sys.executable, str(agent), str(lines)]),
            "--prompt", "flood"]
    env = dict(os.environ, AURA_HOME=home)
    start = time.perf_counter()
    # Outside any git checkout (in the checkout a run would prepare a worktree of it).
    subprocess.run([*base, "--json"], env=env, stdout=subprocess.DEVNULL, check=True,
                   cwd=home)
    plain = time.perf_counter() - start

    name = f"aura-bench-{uuid.uuid4().hex[:8]}"
    tmux = ["tmux", "-L", name, "-f", "/dev/null"]
    command = f"cd {shlex.quote(home)} && " + shlex.join(["env", f"AURA_HOME={home}", *base]) \
        + "; sleep 30"
    start = time.perf_counter()
    subprocess.run([*tmux, "new-session", "-d", "-x", "200", "-y", "50", command], check=True)
    try:
        while True:
            screen = subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True,
                                    text=True).stdout
            if "done (exit" in screen or "failed" in screen:
                break
            if time.perf_counter() - start > 600:
                raise SystemExit("the TUI run did not finish in 600 s")
            time.sleep(0.05)
        tui = time.perf_counter() - start
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
    return [{"figure": "end_to_end_json_devnull", "lines": lines, "seconds": round(plain, 2),
             "lines_per_s": round(lines / plain)},
            {"figure": "end_to_end_tui", "lines": lines, "seconds": round(tui, 2),
             "lines_per_s": round(lines / tui), "vs_json": round(plain / tui, 2)}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=200_000)
    args = parser.parse_args()
    print(json.dumps(logview(args.lines)))
    with tempfile.TemporaryDirectory() as home:
        agent = Path(home) / "flood.py"
        agent.write_text(AGENT)
        for figure in end_to_end(args.lines, home, agent):
            print(json.dumps(figure))


if __name__ == "__main__":
    main()
