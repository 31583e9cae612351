"""The JSON-RPC 2.0 codec (sans-I/O) and the Peer over a real WebSocket on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from aura import rpc
from aura.errors import UsageError


def test_invalid_json_is_a_parse_error_with_a_null_id() -> None:
    items, batch = rpc.parse('{"jsonrpc": "2.0", "method"')
    assert not batch
    assert items[0]["error"]["code"] == rpc.PARSE_ERROR and items[0]["id"] is None


def test_requests_notifications_and_responses_are_told_apart() -> None:
    (req,), _ = rpc.parse(rpc.request("a.b", {"x": 1}, 7))
    (note,), _ = rpc.parse(rpc.notification("a.c", [1]))
    (res,), _ = rpc.parse(json.dumps(rpc.result(7, {"ok": True})))
    (err,), _ = rpc.parse(json.dumps(rpc.error(8, rpc.NOT_FOUND, "gone", {"k": 1})))
    assert (req.kind, req.method, req.params, req.id) == ("request", "a.b", {"x": 1}, 7)
    assert (note.kind, note.method) == ("notification", "a.c")
    assert (res.kind, res.id, res.result) == ("response", 7, {"ok": True})
    assert err.error == {"code": rpc.NOT_FOUND, "message": "gone", "data": {"k": 1}}


@pytest.mark.parametrize("obj", [
    {"method": "x", "id": 1},  # no jsonrpc member
    {"jsonrpc": "1.0", "method": "x", "id": 1},
    {"jsonrpc": "2.0", "method": 5, "id": 1},
    {"jsonrpc": "2.0", "method": "rpc.internal", "id": 1},
    {"jsonrpc": "2.0", "method": "x", "params": "text", "id": 1},
    {"jsonrpc": "2.0", "method": "x", "id": {"a": 1}},
    {"jsonrpc": "2.0", "id": 1},
    {"jsonrpc": "2.0", "result": 1, "error": {"code": 1, "message": ""}, "id": 1},
    1,
])
def test_invalid_requests_get_invalid_request(obj: Any) -> None:
    (item,), _ = rpc.parse(json.dumps(obj))
    assert isinstance(item, dict) and item["error"]["code"] == rpc.INVALID_REQUEST


def test_batches_classify_each_element_and_an_empty_batch_is_invalid() -> None:
    items, batch = rpc.parse(json.dumps([
        {"jsonrpc": "2.0", "method": "a", "id": 1}, 1,
        {"jsonrpc": "2.0", "method": "b"}]))
    assert batch and [getattr(i, "kind", "error") for i in items] == \
        ["request", "error", "notification"]
    (empty,), batch = rpc.parse("[]")
    assert not batch and empty["error"]["code"] == rpc.INVALID_REQUEST


def test_need_and_params_object_raise_invalid_params() -> None:
    with pytest.raises(rpc.RpcError) as info:
        rpc.params_object([1, 2])
    assert info.value.code == rpc.INVALID_PARAMS
    with pytest.raises(rpc.RpcError):
        rpc.need({"n": True}, "n", int)
    assert rpc.need({"n": 3}, "n", int) == 3


def test_notification_raw_splices_params_text() -> None:
    text = rpc.notification_raw("execution.log", '{"entries":[{"seq":1}]}')
    assert json.loads(text) == {"jsonrpc": "2.0", "method": "execution.log",
                                "params": {"entries": [{"seq": 1}]}}


def test_aura_codes_are_in_the_implementation_range() -> None:
    assert all(-32099 <= code <= -32000 for code in rpc.AURA_CODES)


async def _pair(handlers: dict[str, Any]) -> tuple[rpc.Peer, rpc.Peer, Any, list[Any]]:
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    server_peers: list[rpc.Peer] = []
    ready = asyncio.Event()

    async def handle(ws: Any) -> None:
        peer = rpc.Peer(ws, handlers.get, name="server")
        server_peers.append(peer)
        ready.set()
        await peer.run()

    server = await serve(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ws = await connect(f"ws://127.0.0.1:{port}", proxy=None)
    client = rpc.Peer(ws, lambda _m: None, name="client", request_timeout=0.5)
    tasks = [asyncio.create_task(client.run())]
    await ready.wait()
    return client, server_peers[0], server, tasks


def test_peer_round_trips_errors_timeouts_and_batches() -> None:
    seen: list[Any] = []

    async def slow(params: dict[str, Any]) -> Any:
        await asyncio.sleep(params.get("delay", 0))
        return params.get("value")

    def boom(_params: Any) -> Any:
        raise UsageError("bad flag")

    def crash(_params: Any) -> Any:
        raise RuntimeError("oops")

    handlers = {"echo": lambda p: p, "slow": slow, "boom": boom, "crash": crash,
                "note": seen.append}

    async def main() -> None:
        client, _server_peer, server, tasks = await _pair(handlers)
        try:
            assert await client.request("echo", {"a": 1}) == {"a": 1}
            # A slow handler does not hold up a quick one behind it.
            slow_call = asyncio.ensure_future(client.request("slow", {"delay": 0.3,
                                                                      "value": 2}))
            assert await client.request("echo", [3]) == [3]
            assert await slow_call == 2
            with pytest.raises(rpc.RpcError) as info:
                await client.request("nope", {})
            assert info.value.code == rpc.METHOD_NOT_FOUND
            with pytest.raises(rpc.RpcError) as info:
                await client.request("boom", {})
            assert info.value.code == rpc.AURA_ERROR and info.value.exit_code == 2
            with pytest.raises(rpc.RpcError) as info:
                await client.request("crash", {})
            assert info.value.code == rpc.INTERNAL_ERROR
            with pytest.raises(TimeoutError):
                await client.request("slow", {"delay": 2}, timeout=0.1)
            client.notify("note", {"n": 1})
            assert await client.request("echo", {}) == {}
            assert seen == [{"n": 1}]
            # A batch over a raw socket: one array answering the requests only.
            from websockets.asyncio.client import connect

            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}", proxy=None) as raw:
                await raw.send(json.dumps([
                    {"jsonrpc": "2.0", "method": "echo", "params": {"x": 1}, "id": 101},
                    {"jsonrpc": "2.0", "method": "note", "params": {"n": 2}},
                    {"jsonrpc": "2.0", "method": "slow", "params": {"value": 5}, "id": 102},
                    {"jsonrpc": "2.0", "method": "nope", "id": 103}]))
                answer = json.loads(await asyncio.wait_for(raw.recv(), 5))
                assert sorted((a["id"], a.get("result"), a.get("error", {}).get("code"))
                              for a in answer) == [(101, {"x": 1}, None), (102, 5, None),
                                                   (103, None, rpc.METHOD_NOT_FOUND)]
                # Notifications only: no answer at all (the next answer is the echo's).
                await raw.send(json.dumps([{"jsonrpc": "2.0", "method": "note",
                                            "params": {"n": 3}}]))
                await raw.send(rpc.request("echo", [9], 104))
                assert json.loads(await asyncio.wait_for(raw.recv(), 5))["id"] == 104
            assert seen[-2:] == [{"n": 2}, {"n": 3}]
            await client.close()
            with pytest.raises(rpc.ConnectionLost):
                await client.request("echo", {})
        finally:
            server.close()
            for task in tasks:
                task.cancel()

    asyncio.run(main())


def test_entries_messages_are_plain_json_and_split_back_without_decoding() -> None:
    texts = ['{"seq":1,"kind":"raw","text":"a,\\nb"}', '{"seq":2,"kind":"raw","text":"]}}"}']
    message = rpc.entries_message("execution.log", {"session": "s", "execution": "e"}, texts)
    assert json.loads(message) == {"jsonrpc": "2.0", "method": "execution.log", "params": {
        "session": "s", "execution": "e", "entries": [json.loads(t) for t in texts]}}
    assert rpc.split_entries(message, "execution.log") == (
        {"session": "s", "execution": "e"}, texts)
    assert rpc.split_entries(message, "session.entries") is None
    assert rpc.split_entries(rpc.notification("execution.log", {"entries": []}),
                             "execution.log") is None
    assert rpc.seq_of(texts[1]) == 2
    with pytest.raises(rpc.RpcError):
        rpc.seq_of('{"kind":"raw","seq":3}')


HOSTILE: list[str | bytes] = [
    '{"jsonrpc": "2.0", "method"', b"\xff\xfe", "[" * 100_000, '{"a":' * 100_000, "1",
    "null", '"text"', "[]", '{"jsonrpc":"2.0","method":"echo","id":{"a":1}}',
    '{"jsonrpc":"2.0","method":"echo","id":true}',
    '{"jsonrpc":"2.0","method":"execution.log","params":{"x":' + "[" * 100_000
    + ',"entries":[\n{"seq":1}]}}']


@pytest.mark.parametrize("text", HOSTILE, ids=[str(i) for i in range(len(HOSTILE))])
def test_adversarial_messages_get_an_error_answer_and_the_connection_stays_open(
        text: str | bytes) -> None:
    logged: list[Any] = []

    async def handle(ws: Any) -> None:
        await rpc.Peer(ws, {"echo": lambda p: p}.get, name="server", batches={
            "execution.log": lambda header, texts: logged.append((header, texts))}).run()

    async def main() -> None:
        from websockets.asyncio.client import connect
        from websockets.asyncio.server import serve

        server = await serve(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with connect(f"ws://127.0.0.1:{port}", proxy=None) as raw:
                await raw.send(text)
                reply = json.loads(await asyncio.wait_for(raw.recv(), 5))
                assert reply["id"] is None
                assert reply["error"]["code"] in (rpc.PARSE_ERROR, rpc.INVALID_REQUEST)
                await raw.send(rpc.request("echo", {"still": "open"}, 1))
                assert json.loads(await asyncio.wait_for(raw.recv(), 5)) == \
                    rpc.result(1, {"still": "open"})
                await raw.send(rpc.entries_message("execution.log", {"s": 1}, ['{"seq":1}']))
                await raw.send(rpc.request("echo", [], 2))
                assert json.loads(await asyncio.wait_for(raw.recv(), 5))["id"] == 2
                assert logged == [({"s": 1}, ['{"seq":1}'])]
        finally:
            server.close()

    asyncio.run(main())


# The other end of a LineChannel: a program that talks JSON-RPC on its stdio and also
# prints things that are not for aura.
LINE_PEER = r"""
import json, sys
def send(obj):
    print(obj if isinstance(obj, str) else json.dumps(obj), flush=True)
first = json.loads(sys.stdin.readline())
send("starting up")
send("[" * 100000)
send({"level": "info", "msg": "a JSON log line"})
send({"jsonrpc": "2.0", "id": 99, "result": "an answer to nothing"})
send({"jsonrpc": "2.0", "id": "q1", "method": "ask", "params": {"n": 2}})
send({"jsonrpc": "2.0", "id": 7, "method": "rpc.reserved"})
send({"jsonrpc": "2.0", "method": "tell", "params": {"n": 3}})
send({"jsonrpc": "2.0", "id": "q2", "method": "unknown"})
got = [json.loads(sys.stdin.readline()) for _ in range(3)]
send({"jsonrpc": "2.0", "id": first["id"], "result": {"first": first, "got": got}})
second = json.loads(sys.stdin.readline())
send({"jsonrpc": "2.0", "id": second["id"], "error": {"code": -32000, "message": "no key"}})
sys.stdin.readline()
"""


def test_line_channel_talks_to_a_real_child_and_sets_its_junk_aside() -> None:
    import sys

    from aura.process import Child

    junk: list[str] = []
    told: list[Any] = []

    def requests(method: str) -> rpc.Handler | None:
        return (lambda p: {"twice": p["n"] * 2}) if method == "ask" else None

    channel = rpc.LineChannel(requests, lambda m: lambda p: told.append((m, p)), junk.append)

    def on_lines(stream: str, lines: list[str]) -> None:
        for line in lines if stream == "stdout" else []:
            channel.feed(line)

    async def main() -> None:
        child = await Child.spawn([sys.executable, "-c", LINE_PEER], on_lines=on_lines,
                                  keep_stdin_open=True)
        channel.attach(child.write)
        try:
            first = await asyncio.wait_for(channel.request("hello", {"x": 1}), 20)
            assert (first["first"]["method"], first["first"]["id"]) == ("hello", 1)
            answers = {a["id"]: a for a in first["got"]}
            assert answers["q1"]["result"] == {"twice": 4}
            assert answers[7]["error"]["code"] == rpc.INVALID_REQUEST
            assert answers["q2"]["error"]["code"] == rpc.METHOD_NOT_FOUND
            assert told == [("tell", {"n": 3})]
            assert junk[:2] == ["starting up", "[" * 100_000]
            assert [json.loads(j) for j in junk[2:]] == [
                {"level": "info", "msg": "a JSON log line"},
                {"jsonrpc": "2.0", "id": 99, "result": "an answer to nothing"}]
            with pytest.raises(rpc.RpcError) as info:
                await asyncio.wait_for(channel.request("second", {}), 20)
            assert (info.value.code, info.value.message) == (-32000, "no key")
            third = asyncio.ensure_future(channel.request("third", {}))
            await channel.flush()
        finally:
            await child.stop(grace=2)
        channel.close("the program exited")
        with pytest.raises(rpc.ConnectionLost, match="the program exited"):
            await third
        with pytest.raises(rpc.ConnectionLost):
            await channel.request("fourth", {})
        await channel.aclose()

    asyncio.run(main())


def test_a_peer_that_stops_reading_is_disconnected_and_its_queue_freed() -> None:
    import socket

    from websockets.asyncio.server import serve

    async def main() -> None:
        peers: list[rpc.Peer] = []
        ready = asyncio.Event()

        async def handle(ws: Any) -> None:
            peer = rpc.Peer(ws, lambda _m: None, name="server", max_outbox=1 << 20)
            peers.append(peer)
            ready.set()
            await peer.run()

        server = await serve(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        # A client that completes the handshake and then never reads again.
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     b"Sec-WebSocket-Version: 13\r\n\r\n")
        try:
            await asyncio.wait_for(ready.wait(), 10)
            peer = peers[0]
            peak = 0
            for i in range(4000):  # 40 MB if nothing were ever dropped
                peer.notify("big", {"i": i, "pad": "x" * 10_000})
                peak = max(peak, peer.backlog)
                await asyncio.sleep(0)
            assert peak <= 1 << 20
            assert peer.closed.is_set() and peer.backlog == 0
            peer.notify("after", {})  # sending to a closed peer is a no-op
            assert peer.backlog == 0
        finally:
            sock.close()
            server.close()

    asyncio.run(main())
