#!/usr/bin/env python3
"""Fleet: N simulated workers (one process, one WebSocket each) say worker.hello and
heartbeat to one real `aura serve` at its default intervals (5 s heartbeat, offline after
15 s). Reports the coordinator's CPU (cores) and memory while they heartbeat, then makes
M of them go silent (connection open, nothing sent: a hung worker) and reports how long
the coordinator takes to declare all M offline, and that no other worker was.
Prints one JSON line per figure.

    python3 bench/fleet.py [--workers 500] [--silent 50] [--window 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aura import __version__  # noqa: E402
from aura.rpc import PROTOCOL_VERSION, request  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024  # type: ignore[union-attr]


async def simulated_worker(url: str, token: str, name: str, silent: asyncio.Event,
                           connected: list[str]) -> None:
    from websockets.asyncio.client import connect

    ws = await connect(url, additional_headers={"Authorization": f"Bearer {token}"},
                       proxy=None, compression=None, open_timeout=60)
    await ws.send(request("worker.hello", {
        "protocol": PROTOCOL_VERSION, "version": __version__, "name": name,
        "labels": ["sim"], "capacity": 1, "executors": {"custom": "sim"}}, 1))
    hello = json.loads(await ws.recv())["result"]
    interval = hello["heartbeat_interval"]
    connected.append(name)

    async def drain() -> None:
        async for _message in ws:
            pass

    reader = asyncio.create_task(drain())
    await asyncio.sleep(random.uniform(0, interval))  # real workers start at random times
    n = 2
    while not silent.is_set():
        await ws.send(request("worker.heartbeat", {"running": []}, n))
        n += 1
        try:
            await asyncio.wait_for(silent.wait(), interval)
        except TimeoutError:
            pass
    await reader  # silent from now on; the coordinator closes the line when it gives up


async def fleet(url: str, token: str, pid: int, count: int, quiet: int, window: float
                ) -> list[dict[str, Any]]:
    from websockets.asyncio.client import connect

    figures: list[dict[str, Any]] = []
    rss_before = rss_mb(pid)
    names = [f"sim{i:04d}" for i in range(count)]
    silent = {name: asyncio.Event() for name in names}
    connected: list[str] = []
    start = time.monotonic()
    tasks = []
    for name in names:
        tasks.append(asyncio.create_task(simulated_worker(url, token, name, silent[name],
                                                          connected)))
        await asyncio.sleep(0.002)
    while len(connected) < count:
        await asyncio.sleep(0.1)
        failed = [t for t in tasks if t.done() and t.exception()]
        if failed:
            raise SystemExit(f"a simulated worker failed: {failed[0].exception()!r}")
    figures.append({"figure": "fleet_connect_seconds", "workers": count,
                    "value": round(time.monotonic() - start, 1)})

    await asyncio.sleep(6)  # every worker has heartbeated at least once
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(window)
    cores = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
    figures.append({"figure": "coordinator_cpu_cores_while_heartbeating", "workers": count,
                    "value": round(cores, 3), "target": "< 1"})
    figures.append({"figure": "coordinator_rss_mb", "workers": count,
                    "value": round(rss_mb(pid), 1), "before_workers": round(rss_before, 1)})

    client = await connect(url, additional_headers={"Authorization": f"Bearer {token}"},
                           proxy=None, compression=None, max_size=None)
    await client.send(request("client.hello", {"protocol": PROTOCOL_VERSION}, 1))
    await client.recv()
    quiet_names = set(random.sample(names, quiet))
    went_silent = time.monotonic()
    for name in quiet_names:
        silent[name].set()
    n = 2
    detected: float | None = None
    false_offline: set[str] = set()
    while time.monotonic() - went_silent < 60:
        await client.send(request("workers.list", {}, n))
        n += 1
        workers = json.loads(await client.recv())["result"]
        offline = {w["name"] for w in workers if w["state"] == "offline"}
        false_offline |= offline - quiet_names
        if quiet_names <= offline:
            detected = time.monotonic() - went_silent
            break
        await asyncio.sleep(0.1)
    await client.close()
    figures.append({"figure": "time_to_detect_all_silent_s", "workers": count,
                    "silent": quiet, "value": round(detected, 2) if detected else None,
                    "target": "<= 16", "wrongly_offline": len(false_offline)})
    for task in tasks:
        task.cancel()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=500)
    parser.add_argument("--silent", type=int, default=50)
    parser.add_argument("--window", type=float, default=20.0,
                        help="seconds over which the coordinator's CPU is measured")
    args = parser.parse_args()
    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="aura-fleet-") as tmp:
        log_path = Path(tmp) / "coord.log"
        env = dict(os.environ, AURA_HOME=tmp, AURA_TOKEN=token)
        with log_path.open("w") as log:
            coord = subprocess.Popen([sys.executable, str(ROOT / "aura.py"), "serve",
                                      "--listen", "127.0.0.1:0"], env=env, stdout=log,
                                     stderr=log)
        try:
            deadline = time.monotonic() + 30
            while not (found := re.search(r"listening on (ws://[\d.]+:\d+)",
                                          log_path.read_text())):
                if time.monotonic() > deadline:
                    raise SystemExit("the coordinator did not start")
                time.sleep(0.05)
            figures = asyncio.run(fleet(found.group(1), token, coord.pid, args.workers,
                                        args.silent, args.window))
        finally:
            coord.terminate()
            coord.wait(15)
    for figure in figures:
        print(json.dumps(figure), flush=True)


if __name__ == "__main__":
    main()
