#!/usr/bin/env python3
"""Stalled followers: one remote run of N aura-native JSON lines on a real worker, with
--followers clients following it through a real `aura serve` that stop reading (SIGSTOP)
for the whole run and read again once it ended. Prints the coordinator's peak RSS
(VmHWM from /proc) and, per follower, how many entries it got against how many the
coordinator stored. One JSON line per figure.

    python3 bench/stalled_followers.py [--lines 1500000] [--followers 3]

A follower is this script run with --follow: it finds the run's session and follows it
with aura.remote.client.RemoteRun.attach, so it catches up the way `aura run --on` does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable
AURA = [PY, str(ROOT / "aura.py")]

from _cluster import start_cluster, stored, wait_log  # noqa: E402
from ingest import make_lines  # noqa: E402


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return round(int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024, 1)


async def follow(url: str, report: Path) -> None:
    """Follower mode: wait for the run, say "attached" once entries come, count them."""
    from aura.remote.client import RemoteRun, connect_client

    token = os.environ["AURA_TOKEN"]
    peer = await connect_client(url, token, None)
    while True:
        sessions = await peer.request("session.list", {"limit": 1})
        if sessions:
            data = await peer.request("session.get", {"session": sessions[0]["id"]})
            if data["executions"]:
                break
        await asyncio.sleep(0.05)
    await peer.close()
    seqs: list[int] = []

    def on_records(records: list) -> None:
        if not seqs:
            print("attached", flush=True)  # following: now it may be stopped
        seqs.extend(q for q, _e, _t in records)

    remote = RemoteRun(url, token, None, on_records=on_records,
                       on_notice=lambda _line: None, decode=False)
    summary = await remote.attach(data["id"], data["executions"][-1]["id"])
    report.write_text(json.dumps({"entries": len(seqs), "distinct": len(set(seqs)),
                                  "in_order": seqs == sorted(seqs),
                                  "last": seqs[-1] if seqs else 0, "state": summary.state}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_500_000)
    parser.add_argument("--followers", type=int, default=3)
    parser.add_argument("--follow", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.follow:
        asyncio.run(follow(args.follow, args.report))
        return
    with tempfile.TemporaryDirectory(prefix="aura-stalled-") as tmp_name:
        tmp = Path(tmp_name)
        figures = measure(tmp, args.lines, args.followers)
    for figure in figures:
        print(json.dumps(figure), flush=True)


def measure(tmp: Path, count: int, followers: int) -> list[dict]:
    data = tmp / "lines.jsonl"
    make_lines(data, count)
    base = dict(os.environ, AURA_TOKEN=secrets.token_hex(16), NO_COLOR="1")
    procs: list[subprocess.Popen] = []
    try:
        coord, _worker, url = start_cluster(tmp, base, procs)
        start = time.monotonic()
        with (tmp / "run.out").open("w") as out, (tmp / "run.err").open("w") as err:
            run = subprocess.Popen(
                [*AURA, "run", "--on", "b1", "--coordinator", url, "--executor", "custom",
                 "--base-command", f"cat {shlex.quote(str(data))}", "--prompt", "bench",
                 "--json"], env=dict(base, AURA_HOME=str(tmp / "client")), stdout=out,
                stderr=err)
        procs.append(run)
        stalled = []
        for i in range(followers):
            with (tmp / f"follower-{i}.log").open("w") as log:
                stalled.append(subprocess.Popen(
                    [PY, __file__, "--follow", url, "--report", str(tmp / f"follower-{i}.json")],
                    env=dict(base, AURA_HOME=str(tmp / "client")), stdout=log, stderr=log))
        procs.extend(stalled)
        for i, proc in enumerate(stalled):
            wait_log(tmp / f"follower-{i}.log", "attached")
            proc.send_signal(signal.SIGSTOP)
        if run.wait(1800) != 0:
            raise SystemExit(f"the run failed: {(tmp / 'run.err').read_text()[-800:]}")
        run_s = time.monotonic() - start
        rss = peak_rss_mb(coord.pid)
        total = stored(tmp / "coord" / "aura.db")
        for proc in stalled:
            proc.send_signal(signal.SIGCONT)
        reports = []
        for i, proc in enumerate(stalled):
            if proc.wait(600) != 0:
                raise SystemExit(f"follower {i} failed: "
                                 f"{(tmp / f'follower-{i}.log').read_text()[-800:]}")
            reports.append(json.loads((tmp / f"follower-{i}.json").read_text()))
        caught_up_s = time.monotonic() - start - run_s
        # every entry, then the summary line
        printed = sum(1 for line in (tmp / "run.out").open() if line.startswith("{")) - 1
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
                proc.wait(15)
    return [
        {"figure": "coordinator_peak_rss_mb", "lines": count, "followers": followers,
         "value": rss, "target": "< 100"},
        {"figure": "entries", "stored": total, "printed_by_run_client": printed,
         "followers": reports},
        {"figure": "seconds", "run": round(run_s, 1), "followers_caught_up": round(caught_up_s, 1)},
    ]


if __name__ == "__main__":
    main()
