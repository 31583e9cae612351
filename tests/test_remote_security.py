"""The coordinator at its edge: tokens, malformed and oversized messages, unknown methods,
protocol versions. Each bad peer gets the right JSON-RPC error or refusal, the refusal is
logged without the token, and the coordinator goes on serving everyone else."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from aura import rpc

from .conftest import agent_command, aura_argv
from .remote_cluster import Cluster, Proc, json_lines


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    c.start_coordinator("--max-message", "65536")
    try:
        yield c
    finally:
        c.close()


def _open(cluster: Cluster, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token or cluster.token}"}
    return connect(cluster.url, additional_headers=headers, proxy=None, open_timeout=10)


def _call(ws: Any, method: str, params: Any = None, id: int = 1) -> dict[str, Any]:
    ws.send(rpc.request(method, params if params is not None else {}, id))
    return json.loads(ws.recv(timeout=10))


def _hello(ws: Any, **extra: Any) -> dict[str, Any]:
    return _call(ws, "client.hello", {"protocol": rpc.PROTOCOL_VERSION, **extra})


def _still_serving(cluster: Cluster) -> None:
    with _open(cluster) as ws:
        assert "result" in _hello(ws)
        assert _call(ws, "workers.list", {}, 2)["result"] is not None


def test_missing_or_wrong_token_is_refused_and_logged_without_the_token(
        cluster: Cluster) -> None:
    with pytest.raises(InvalidStatus) as info:
        connect(cluster.url, proxy=None, open_timeout=10)
    assert info.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as info:
        _open(cluster, token="not-the-token")
    assert info.value.response.status_code == 401
    with pytest.raises(InvalidStatus):
        connect(cluster.url, additional_headers={"Authorization": "Basic abc"}, proxy=None)
    assert cluster.coordinator is not None
    log = cluster.coordinator.wait_log(r"refused connection from [\d.:]+: bad token").string
    assert "refused connection from" in log and ": no token" in log
    assert cluster.token not in log and "not-the-token" not in log
    _still_serving(cluster)

    refused = cluster.aura("workers", "--coordinator", cluster.url, AURA_TOKEN="wrong")
    assert refused.returncode == 1 and "refused the token" in refused.stderr
    bad = Proc("bad-worker", aura_argv("worker", "--connect", cluster.url, "--name", "bad"),
               cluster.env(cluster.root / "bad-home", AURA_TOKEN="wrong"),
               cluster.root / "bad.log", cluster.root)
    cluster.procs.append(bad)
    assert bad.popen.wait(20) == 1
    assert "refused the token" in bad.log()


def test_malformed_unknown_and_early_calls_get_json_rpc_errors(cluster: Cluster) -> None:
    with _open(cluster) as ws:
        ws.send("{this is not json")
        answer = json.loads(ws.recv(timeout=10))
        assert answer["error"]["code"] == rpc.PARSE_ERROR and answer["id"] is None
        ws.send(b"\xff\xfe binary garbage")
        assert json.loads(ws.recv(timeout=10))["error"]["code"] == rpc.PARSE_ERROR
        ws.send(json.dumps({"jsonrpc": "2.0", "method": 42, "id": 3}))
        assert json.loads(ws.recv(timeout=10))["error"]["code"] == rpc.INVALID_REQUEST
        # Known methods before hello are refused; unknown ones are simply not found.
        assert _call(ws, "workers.list")["error"]["code"] == rpc.HELLO_REQUIRED
        assert _call(ws, "no.such.method")["error"]["code"] == rpc.METHOD_NOT_FOUND
        assert "result" in _hello(ws)
        assert _call(ws, "no.such.method")["error"]["code"] == rpc.METHOD_NOT_FOUND
        # A client may not speak for a worker.
        assert _call(ws, "execution.log", {"session": "s", "execution": "e",
                                           "entries": []})["error"]["code"] == \
            rpc.METHOD_NOT_FOUND
        assert _call(ws, "run.start", {"options": {}})["error"]["code"] == rpc.INVALID_PARAMS
        assert _call(ws, "session.get", {"session": "nope"})["error"]["code"] == \
            rpc.AURA_ERROR
        # The connection still works after all that.
        assert _call(ws, "workers.list", {}, 9)["id"] == 9
    _still_serving(cluster)


def test_an_oversized_message_closes_that_connection_only(cluster: Cluster) -> None:
    with _open(cluster) as ws:
        assert "result" in _hello(ws)
        ws.send(rpc.notification("workers.list", {"pad": "x" * 100_000}))
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    assert cluster.coordinator is not None
    cluster.coordinator.wait_log(r"closed \(message too big\)")
    _still_serving(cluster)


def test_a_wrong_protocol_version_is_refused_clearly(cluster: Cluster) -> None:
    with _open(cluster) as ws:
        answer = _call(ws, "worker.hello", {"protocol": 999, "version": "9.9", "name": "odd"})
        assert answer["error"]["code"] == rpc.VERSION_MISMATCH
        assert "protocol version mismatch" in answer["error"]["message"]
        assert answer["error"]["data"]["protocol"] == rpc.PROTOCOL_VERSION
        answer = _hello(ws, protocol=0)
        assert answer["error"]["code"] == rpc.VERSION_MISMATCH
    assert cluster.coordinator is not None
    cluster.coordinator.wait_log(r"refused worker from .*protocol version mismatch")
    _still_serving(cluster)
    # And a real worker and run go on as usual.
    cluster.start_worker("fine")
    done = cluster.run_on("fine", agent_command("lines_agent.py", "3"))
    assert done.returncode == 0, done.stderr
    assert json_lines(done.stdout)[-1]["state"] == "done"


def test_the_worker_says_so_when_the_coordinator_refuses_its_version(tmp_path: Path) -> None:
    from websockets.sync.server import serve

    def handler(ws: Any) -> None:
        for message in ws:
            request = json.loads(message)
            ws.send(json.dumps(rpc.error(request["id"], rpc.VERSION_MISMATCH,
                                         "protocol version mismatch: this coordinator "
                                         "speaks aura protocol 2")))

    with serve(handler, "127.0.0.1", 0) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.socket.getsockname()[1]
        c = Cluster(tmp_path)
        worker = c.start_worker("old", url=f"ws://127.0.0.1:{port}", wait=False)
        try:
            assert worker.popen.wait(20) == 1
            assert "protocol version mismatch: this coordinator speaks aura protocol 2" in \
                worker.log()
        finally:
            c.close()
            server.shutdown()


def test_the_token_is_never_on_a_command_line_or_in_a_log(cluster: Cluster) -> None:
    worker = cluster.start_worker("quiet")
    done = cluster.run_on("quiet", agent_command("lines_agent.py", "2"))
    assert done.returncode == 0, done.stderr
    assert "token in env: no" in [e.get("text") for e in json_lines(done.stdout)]
    assert cluster.coordinator is not None
    for proc in (cluster.coordinator, worker):
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode(errors="replace")
        assert cluster.token not in cmdline
        assert cluster.token not in proc.log()
