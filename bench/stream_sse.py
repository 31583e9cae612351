#!/usr/bin/env python3
"""Benchmark: aura streaming a chat completion of N small SSE chunks from a local
OpenAI-compatible server, against a baseline client loop in the same run.

The fake server (tests/openai_server.py, in its own process so it shares no interpreter
lock with either client) sends N one-token events as a chunked HTTP/1.1 body. Measured:

- baseline: a minimal client (a raw socket read in 64 KiB pieces, split lines, json.loads
  each ``data:`` line, collect the content): parsing only, nothing stored or printed;
- aura: ``aura run --executor custom --openai-endpoint … --model m --json`` as a real
  process (startup included), every delta stored in SQLite and printed as JSON lines to
  /dev/null.

Prints one JSON line per figure: tokens/s of each (by wall and by CPU time: on a shared
machine the CPU figures are the steadier ones), and aura's ratio to the baseline.

    python3 bench/stream_sse.py [--chunks 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def baseline(port: int) -> tuple[float, float, int]:
    """Wall and CPU seconds to receive and parse the whole stream; number of content
    pieces. The
    leanest loop there is: a raw socket, 64 KiB reads, split lines, json.loads each
    ``data:`` line (chunk-size lines never start with "data:", so framing costs nothing)."""
    started = time.perf_counter()
    cpu = time.process_time()
    body = json.dumps({"model": "m", "stream": True,
                       "messages": [{"role": "user", "content": "go"}]}).encode()
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/json\r\nConnection: close\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    pieces: list[str] = []
    rest = b""
    loads = json.loads
    recv = sock.recv
    while True:
        data = recv(1 << 16)
        if not data:
            break
        lines = (rest + data).split(b"\n")
        rest = lines.pop()
        for line in lines:
            if line[:6] == b"data: " and line != b"data: [DONE]":
                choices = loads(line[6:])["choices"]
                if choices and choices[0]["delta"].get("content"):
                    pieces.append(choices[0]["delta"]["content"])
    sock.close()
    return time.perf_counter() - started, time.process_time() - cpu, len(pieces)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def aura(url: str, home: str) -> tuple[float, float, int]:
    """Wall and CPU seconds of the aura process (startup included); pieces stored."""
    env = dict(os.environ, AURA_HOME=home, NO_COLOR="1")
    cpu = children_cpu()
    started = time.perf_counter()
    with open(os.devnull, "w") as devnull:
        proc = subprocess.run([sys.executable, str(ROOT / "aura.py"), "run", "--executor",
                               "custom", "--openai-endpoint", url, "--model", "m",
                               "--prompt", "go", "--json"],
                              stdout=devnull, stderr=subprocess.PIPE, env=env, check=False)
    elapsed = time.perf_counter() - started
    cpu = children_cpu() - cpu
    if proc.returncode != 0:
        raise SystemExit(f"aura failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    # What was stored: the whole reply must be there.
    check = subprocess.run([sys.executable, str(ROOT / "aura.py"), "session", "latest",
                            "--json"], capture_output=True, env=env, check=True)
    entries = json.loads(check.stdout)["entries"]
    final = [e for e in entries if e["kind"] == "assistant_message" and e.get("streamed")]
    return elapsed, cpu, len(final[-1]["text"]) // 3 if final else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, str(ROOT / "tests" / "openai_server.py"),
                               "bulk", str(args.chunks)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        runs: dict[str, list[tuple[float, float]]] = {"baseline_parse_only": [],
                                                      "aura_run": []}
        with tempfile.TemporaryDirectory() as home:
            for _ in range(args.repeat):
                wall, cpu, count = baseline(port)
                assert count == args.chunks, count
                runs["baseline_parse_only"].append((wall, cpu))
                wall, cpu, count = aura(f"http://127.0.0.1:{port}/v1", home)
                assert count == args.chunks, count
                runs["aura_run"].append((wall, cpu))
    finally:
        server.kill()
        server.wait()
    # The machine may be shared: the best run of each is the least disturbed one, and CPU
    # time (which other processes do not inflate) is reported beside wall time.
    best = {name: (min(w for w, _ in r), min(c for _, c in r)) for name, r in runs.items()}
    for name, (wall, cpu) in best.items():
        print(json.dumps({"bench": "stream_sse", "figure": f"{name}_tokens_per_s",
                          "value": round(args.chunks / wall),
                          "cpu_tokens_per_s": round(args.chunks / cpu),
                          "seconds": round(wall, 3), "cpu_seconds": round(cpu, 3),
                          "chunks": args.chunks, "python": sys.version.split()[0]}))
    base, ours = best["baseline_parse_only"], best["aura_run"]
    print(json.dumps({"bench": "stream_sse", "figure": "aura_vs_baseline",
                      "value": round(base[0] / ours[0], 3),
                      "cpu_value": round(base[1] / ours[1], 3), "target": 0.5}))


if __name__ == "__main__":
    main()
