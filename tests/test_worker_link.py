"""The worker's link against a fake coordinator: the hello, heartbeats at the interval the
coordinator asks for, refusals that are fatal, and reconnecting only when the coordinator
cannot be reached (a bug is raised, not retried as "cannot reach")."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aura.errors import WorkerRefused
from aura.remote.worker.link import Link
from aura.rpc import PROTOCOL_VERSION, VERSION_MISMATCH, RpcError, Unauthorized

from .fake_peer import FakePeer

HELLO = {"protocol": PROTOCOL_VERSION, "version": "x", "heartbeat_interval": 0.02,
         "offline_after": 1.0}


def _link(up: list[Any], connect: Any = None) -> Link:
    async def on_up(peer: Any, answer: dict[str, Any]) -> None:
        up.append(answer)
        await peer.closed.wait()

    return Link("ws://127.0.0.1:9", "w1", "tok", route=lambda _m: None,
                hello=lambda: {"name": "w1"}, running=lambda: ["e1"], on_up=on_up,
                connect=connect, backoff=(0.01, 0.02))


def test_a_connection_greets_beats_and_ends_when_the_line_drops() -> None:
    up: list[Any] = []
    link = _link(up)
    peer = FakePeer({"worker.hello": HELLO, "worker.heartbeat": {}})

    async def go() -> bool:
        serving = asyncio.create_task(link.serve(peer))
        await asyncio.sleep(0.15)
        assert link.peer is peer
        await peer.close()
        return await asyncio.wait_for(serving, 5)

    assert asyncio.run(go()) is True
    assert up == [HELLO] and link.peer is None
    methods = [m for m, _p in peer.requests]
    assert methods[0] == "worker.hello" and peer.requests[0][1] == {"name": "w1"}
    assert methods.count("worker.heartbeat") >= 3
    assert peer.requests[1][1] == {"running": ["e1"]}


def test_an_unanswered_heartbeat_closes_the_line() -> None:
    link = _link([])
    peer = FakePeer({"worker.hello": HELLO, "worker.heartbeat": TimeoutError()})
    assert asyncio.run(asyncio.wait_for(link.serve(peer), 5)) is True
    assert peer.close_codes[0] == 4002  # "heartbeat unanswered"


@pytest.mark.parametrize(("answer", "message"), [
    ({**HELLO, "protocol": PROTOCOL_VERSION + 1}, "protocol version mismatch"),
    (RpcError(VERSION_MISMATCH, "too old"), "the coordinator refused this worker: too old"),
])
def test_a_refused_hello_is_fatal(answer: Any, message: str) -> None:
    link = _link([])
    with pytest.raises(WorkerRefused, match=message):
        asyncio.run(link.serve(FakePeer({"worker.hello": answer})))


def test_unreachable_is_retried_a_refused_token_is_fatal_a_bug_is_raised() -> None:
    calls: list[str] = []

    def connecting(*failures: BaseException) -> Any:
        async def connect(url: str, token: str, *, cafile: str | None) -> Any:
            calls.append(url)
            raise failures[min(len(calls), len(failures)) - 1]
        return connect

    calls.clear()
    with pytest.raises(WorkerRefused, match="refused the token"):
        asyncio.run(_link([], connecting(OSError("refused"), TimeoutError(),
                                         Unauthorized("refused the token"))).run())
    assert len(calls) == 3  # two retries, then the fatal refusal
    calls.clear()
    with pytest.raises(ValueError, match="a bug"):
        asyncio.run(_link([], connecting(OSError("refused"), ValueError("a bug"))).run())
    assert len(calls) == 2


def test_an_unreachable_coordinator_on_a_real_socket_is_retried() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nobody listens there
    link = _link([])
    link.url = f"ws://127.0.0.1:{port}"

    async def go() -> None:
        task = asyncio.create_task(link.run())
        await asyncio.sleep(0.3)
        assert not task.done()  # still retrying
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
