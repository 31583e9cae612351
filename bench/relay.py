#!/usr/bin/env python3
"""Relay throughput: the same fake agent (N aura-native JSON lines, ~200 bytes each) run
locally with `aura run --json > /dev/null`, then on a remote worker through a coordinator
with `aura run --on W --json > /dev/null`, in the same run. Both store every entry; the
remote run ends when the coordinator has stored the last entry and the client printed it.
Coordinator and worker are real processes on 127.0.0.1. Local and remote runs alternate
(--rounds of each; the best of each is compared, which is what a busy machine distorts
least). Prints one JSON line per figure.

    python3 bench/relay.py [--lines 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
AURA = [PY, str(ROOT / "aura.py")]

from _cluster import start_cluster, stored  # noqa: E402
from ingest import make_lines  # noqa: E402  (the same lines as the local ingest bench)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(argv: list[str], env: dict[str, str], cpu: list[float] | None = None,
          cwd: Path | None = None) -> float:
    """Wall seconds of the command; its CPU seconds (user + system) go into ``cpu``."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {shlex.join(argv)}: {proc.stderr.read().decode()[-800:]}")
    if cpu is not None:
        cpu.append(usage.ru_utime + usage.ru_stime)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    count = args.lines
    with tempfile.TemporaryDirectory(prefix="aura-relay-") as tmp_name:
        tmp = Path(tmp_name)
        data = tmp / "lines.jsonl"
        make_lines(data, count)
        token = secrets.token_hex(16)
        base = dict(os.environ, AURA_TOKEN=token, NO_COLOR="1")
        agent = ["--executor", "custom", "--base-command", f"cat {shlex.quote(str(data))}",
                 "--prompt", "bench", "--json"]

        procs = []
        local_times: list[float] = []
        remote_times: list[float] = []
        cpu = {"coordinator": 0.0, "worker": 0.0}
        local_cpu: list[float] = []
        client_cpu: list[float] = []
        try:
            coord, worker, url = start_cluster(tmp, base, procs)
            for round_ in range(args.rounds):
                local_home = tmp / f"local-{round_}"
                local_times.append(timed([*AURA, "run", *agent],
                                         dict(base, AURA_HOME=str(local_home)), local_cpu,
                                         cwd=tmp))  # as the worker: not in a git repo
                local_stored = stored(local_home / "aura.db")
                before = {"coordinator": cpu_seconds(coord.pid),
                          "worker": cpu_seconds(worker.pid)}
                remote_times.append(timed([*AURA, "run", "--on", "b1", "--coordinator", url,
                                           *agent], dict(base, AURA_HOME=str(tmp / "client")),
                                          client_cpu))
                cpu = {"coordinator": round(cpu_seconds(coord.pid) - before["coordinator"], 2),
                       "worker": round(cpu_seconds(worker.pid) - before["worker"], 2)}
            remote_stored = stored(tmp / "coord" / "aura.db") // args.rounds
        finally:
            for proc in reversed(procs):
                proc.terminate()
                proc.wait(15)
        local_s, remote_s = min(local_times), min(remote_times)
        if remote_stored != local_stored:
            raise SystemExit(f"remote stored {remote_stored} entries, local {local_stored}")
        figures = [
            {"figure": "local_entries_per_s", "lines": count, "value": round(count / local_s),
             "stored": local_stored},
            {"figure": "remote_entries_per_s", "lines": count,
             "value": round(count / remote_s), "stored": remote_stored},
            {"figure": "remote_vs_local", "lines": count, "value": round(local_s / remote_s, 3),
             "target": ">= 0.5", "local_s": [round(t, 2) for t in local_times],
             "remote_s": [round(t, 2) for t in remote_times]},
            {"figure": "cpu_seconds_last_round", "lines": count,
             "local_run": round(local_cpu[-1], 2), "remote_client": round(client_cpu[-1], 2),
             **cpu},
        ]
        for figure in figures:
            print(json.dumps(figure), flush=True)


if __name__ == "__main__":
    main()
