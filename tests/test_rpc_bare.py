"""The bare JSON-RPC dialect of codex app-server (no "jsonrpc" member either way) on the one
engine, and that the strict dialect stays strict."""

from __future__ import annotations

import json

from aura import rpc
from aura.rpc import Endpoint


def test_bare_requests_and_notifications_carry_no_version() -> None:
    endpoint: Endpoint[str] = Endpoint("codex", bare=True)
    id_, text = endpoint.request("initialize", {"clientInfo": {"name": "aura"}}, "w")
    assert json.loads(text) == {"method": "initialize", "id": id_,
                                "params": {"clientInfo": {"name": "aura"}}}
    assert rpc.notification("initialized", None, bare=True) == '{"method":"initialized"}'


def test_server_request_ids_overlap_ours_and_are_routed_by_method() -> None:
    endpoint: Endpoint[str] = Endpoint("codex", bare=True)
    id_, _ = endpoint.request("thread/start", {}, "waiter")
    # codex's own request with the same id as ours is a call, not our answer
    got = endpoint.receive(json.dumps({"method": "item/fileChange/requestApproval",
                                       "id": id_, "params": {"itemId": "x"}}))
    assert [(c.kind, c.id) for c in got.calls] == [("request", id_)] and not got.settled
    got = endpoint.receive(json.dumps({"id": id_, "result": {"thread": {"id": "t"}}}))
    assert [(s.waiter, s.result) for s in got.settled] == [("waiter", {"thread": {"id": "t"}})]


def test_bare_answers_drop_the_version_member() -> None:
    endpoint: Endpoint[str] = Endpoint("codex", bare=True)
    (call,) = endpoint.receive('{"method":"nope","id":0,"params":{}}').calls
    reply = endpoint.dispatch(call, None)
    assert isinstance(reply, dict)
    text = endpoint.reply_text([reply], False)
    assert text is not None and "jsonrpc" not in json.loads(text)
    assert json.loads(text)["error"]["code"] == rpc.METHOD_NOT_FOUND


def test_a_wrong_version_is_still_refused_and_the_strict_dialect_stays_strict() -> None:
    bare: Endpoint[str] = Endpoint("codex", bare=True)
    got = bare.receive('{"jsonrpc":"1.0","method":"x","id":3}')
    assert got.replies[0]["error"]["code"] == rpc.INVALID_REQUEST and not got.calls
    strict: Endpoint[str] = Endpoint("peer")
    got = strict.receive('{"method":"x","id":3}')
    assert got.replies[0]["error"]["code"] == rpc.INVALID_REQUEST and not got.calls
    _, text = strict.request("m", {}, "w")
    assert json.loads(text)["jsonrpc"] == "2.0"
