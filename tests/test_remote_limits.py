"""The coordinator's limits, against a real `aura serve` on 127.0.0.1: connections that never
say hello are closed, a connection cap refuses the surplus with HTTP 503, running out of
file descriptors leaves a short log and the coordinator serving, JSON nested too deeply
gets −32700 on a connection that stays usable, and followers that stop reading cost a
bounded amount of memory and lose nothing."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from aura import rpc

from .conftest import aura_argv
from .remote_cluster import Cluster, Proc, wait_for

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.close()


def _open(cluster: Cluster) -> Any:
    return connect(cluster.url, additional_headers={"Authorization": f"Bearer {cluster.token}"},
                   proxy=None, open_timeout=10)


def _call(ws: Any, method: str, params: Any = None, id: int = 1) -> dict[str, Any]:
    ws.send(rpc.request(method, params if params is not None else {}, id))
    return json.loads(ws.recv(timeout=10))


def _still_serving(cluster: Cluster) -> None:
    with _open(cluster) as ws:
        assert "result" in _call(ws, "client.hello", {"protocol": rpc.PROTOCOL_VERSION})
        assert _call(ws, "workers.list", {}, 2)["result"] == []


def test_json_nested_too_deeply_gets_a_parse_error_and_the_connection_stays_usable(
        cluster: Cluster) -> None:
    cluster.start_coordinator()
    with _open(cluster) as ws:
        ws.send("[" * 100_000)
        answer = json.loads(ws.recv(timeout=10))
        assert answer["error"]["code"] == rpc.PARSE_ERROR and answer["id"] is None
        ws.send('{"jsonrpc": "2.0", "method": "client.hello", "params": ' + "[" * 50_000)
        assert json.loads(ws.recv(timeout=10))["error"]["code"] == rpc.PARSE_ERROR
        assert "result" in _call(ws, "client.hello", {"protocol": rpc.PROTOCOL_VERSION}, 7)
        assert _call(ws, "workers.list", {}, 8)["id"] == 8


def test_a_connection_that_never_says_hello_is_closed(cluster: Cluster) -> None:
    cluster.start_coordinator("--hello-timeout", "1")
    with _open(cluster) as ws:
        start = time.monotonic()
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10)
        assert time.monotonic() - start < 5
        assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    assert cluster.coordinator is not None
    cluster.coordinator.wait_log(r"no hello within 1 s")
    # One that said hello stays past the timeout.
    with _open(cluster) as ws:
        assert "result" in _call(ws, "client.hello", {"protocol": rpc.PROTOCOL_VERSION})
        time.sleep(1.5)
        assert _call(ws, "workers.list", {}, 2)["result"] == []


@pytest.mark.slow
def test_300_silent_authenticated_connections_are_closed_within_seconds(
        cluster: Cluster) -> None:
    cluster.start_coordinator("--hello-timeout", "2")
    with contextlib.ExitStack() as stack:
        opened = [stack.enter_context(_open(cluster)) for _ in range(300)]
        start = time.monotonic()
        for ws in opened:
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=max(0.1, 8 - (time.monotonic() - start)))
        closed_after = time.monotonic() - start
    assert closed_after < 8, closed_after
    _still_serving(cluster)


def test_the_connection_cap_refuses_the_surplus_with_503(cluster: Cluster) -> None:
    cluster.start_coordinator("--max-connections", "3", "--hello-timeout", "30")
    with contextlib.ExitStack() as stack:
        for _ in range(3):
            stack.enter_context(_open(cluster))
        for _ in range(20):
            with pytest.raises(InvalidStatus) as info:
                _open(cluster)
            assert info.value.response.status_code == 503
    assert cluster.coordinator is not None
    log = cluster.coordinator.wait_log(r"limit is 3 \(--max-connections\)").string
    assert log.count("--max-connections") == 1  # one line for the burst, not twenty
    wait_for(lambda: _try_serving(cluster), 10, "serving again below the cap")


def _try_serving(cluster: Cluster) -> bool:
    try:
        _still_serving(cluster)
    except InvalidStatus:
        return False
    return True


@pytest.mark.slow
def test_a_burst_past_the_fd_limit_leaves_a_short_log_and_the_coordinator_serving(
        cluster: Cluster) -> None:
    home = cluster.root / "coord-home"
    home.mkdir()
    argv = ["prlimit", "--nofile=64:64", *aura_argv(
        "serve", "--listen", "127.0.0.1:0", "--hello-timeout", "3")]
    proc = Proc("coordinator", argv, cluster.env(home), cluster.root / "coord.log", cluster.root)
    cluster.procs.append(proc)
    cluster.coordinator = proc
    cluster.url = proc.wait_log(r"listening on (ws://[\d.]+:\d+)").group(1)
    host, port = cluster.url.removeprefix("ws://").rsplit(":", 1)
    burst = []
    for _ in range(300):  # plain TCP connections, far more than 64 descriptors
        try:
            burst.append(socket.create_connection((host, int(port)), timeout=2))
        except OSError:  # the listen backlog is full meanwhile: that is the point
            pass
    assert len(burst) > 64
    time.sleep(3)
    for sock in burst:
        sock.close()
    wait_for(lambda: _try_serving(cluster), 20, "serving after the burst")
    log = proc.log()
    assert "cannot accept connections" in log
    assert "Traceback" not in log
    assert len(log.splitlines()) < 40, log[-3000:]
    assert proc.popen.poll() is None


@pytest.mark.slow
def test_three_stalled_followers_of_a_big_run_cost_little_memory_and_lose_nothing(
        tmp_path: Path) -> None:
    lines = 1_500_000
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "stalled_followers.py"),
                           "--lines", str(lines), "--followers", "3"],
                          capture_output=True, text=True, timeout=1800, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = {f["figure"]: f for f in map(json.loads, done.stdout.splitlines())}
    assert figures["coordinator_peak_rss_mb"]["value"] < 100, figures
    entries = figures["entries"]
    assert entries["stored"] == entries["printed_by_run_client"] >= lines
    for follower in entries["followers"]:
        assert follower["entries"] == follower["distinct"] == entries["stored"], figures
        assert follower["in_order"] and follower["state"] == "done"
