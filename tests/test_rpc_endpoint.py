"""aura.rpc.Endpoint without any I/O: ids, the pending table, dispatch and error answers,
notifications, batches, the entries fast path, and adversarial input."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import Any

import pytest

from aura import rpc
from aura.errors import UsageError

Endpoint = rpc.Endpoint[str]


def answer(reply: Any) -> Any:
    """Drive an awaitable answer that never suspends to its value (no event loop)."""
    if not isinstance(reply, Awaitable):
        return reply
    step = reply.__await__()
    with pytest.raises(StopIteration) as done:
        next(step)
    return done.value.value


def respond(id_: Any, value: Any) -> str:
    return json.dumps(rpc.result(id_, value))


def test_request_ids_count_up_and_the_text_is_the_request() -> None:
    endpoint: Endpoint = Endpoint("t")
    sent = [endpoint.request("m.a", {"n": n}, f"waiter{n}") for n in range(3)]
    assert [id_ for id_, _ in sent] == [1, 2, 3]
    (message,), batch = rpc.parse(sent[1][1])
    assert not batch and isinstance(message, rpc.Message)
    assert (message.kind, message.method, message.params, message.id) == \
        ("request", "m.a", {"n": 1}, 2)
    assert endpoint.pending == 3


def test_a_result_settles_its_request_once() -> None:
    endpoint: Endpoint = Endpoint()
    id_, _ = endpoint.request("m.a", {}, "w1")
    got = endpoint.receive(respond(id_, {"ok": True}))
    (settled,) = got.settled
    assert (settled.id, settled.method, settled.waiter, settled.result, settled.error) == \
        (id_, "m.a", "w1", {"ok": True}, None)
    assert endpoint.pending == 0 and not got.calls and not got.replies
    # The same answer again settles nothing: it answers no pending request now.
    again = endpoint.receive(respond(id_, {"ok": True}))
    assert not again.settled and [m.id for m in again.unknown] == [id_]


def test_an_error_response_settles_with_an_rpc_error() -> None:
    endpoint: Endpoint = Endpoint()
    id_, _ = endpoint.request("m.b", {}, "w")
    got = endpoint.receive(json.dumps(rpc.error(id_, rpc.NOT_FOUND, "gone", {"k": 1})))
    error = got.settled[0].error
    assert isinstance(error, rpc.RpcError)
    assert (error.code, error.message, error.data) == (rpc.NOT_FOUND, "gone", {"k": 1})


@pytest.mark.parametrize("id_", [99, "1", True, 1.0, None])
def test_a_response_for_an_id_not_issued_is_unknown(id_: Any) -> None:
    endpoint: Endpoint = Endpoint()
    endpoint.request("m", {}, "w")
    got = endpoint.receive(respond(id_, 1))
    assert not got.settled and len(got.unknown) == 1 and not got.replies
    assert endpoint.pending == 1  # still waiting for the real answer


def test_forget_and_drain_empty_the_pending_table() -> None:
    endpoint: Endpoint = Endpoint()
    first, _ = endpoint.request("a", {}, "w1")
    endpoint.request("b", {}, "w2")
    endpoint.forget(first)
    assert endpoint.receive(respond(first, 1)).unknown
    assert endpoint.drain() == [("b", "w2")] and endpoint.pending == 0


def test_requests_are_dispatched_and_answered() -> None:
    endpoint: Endpoint = Endpoint()
    (call,) = endpoint.receive(rpc.request("echo", {"a": 1}, "r1")).calls
    assert endpoint.dispatch(call, lambda p: p) == rpc.result("r1", {"a": 1})
    reply = endpoint.dispatch(call, None)
    assert reply is not None and reply["error"]["code"] == rpc.METHOD_NOT_FOUND
    assert reply["id"] == "r1"


def boom_rpc(_params: Any) -> Any:
    raise rpc.RpcError(rpc.REFUSED, "no", {"why": "policy"})


def boom_usage(_params: Any) -> Any:
    raise UsageError("bad flag")


def boom_bug(_params: Any) -> Any:
    raise KeyError("x")


@pytest.mark.parametrize(("handler", "code"), [
    (boom_rpc, rpc.REFUSED), (boom_usage, rpc.AURA_ERROR), (boom_bug, rpc.INTERNAL_ERROR)])
def test_a_handler_that_raises_gets_an_error_answer(handler: Any, code: int) -> None:
    endpoint: Endpoint = Endpoint()
    (call,) = endpoint.receive(rpc.request("m", {}, 5)).calls
    reply = endpoint.dispatch(call, handler)
    assert reply is not None and reply["id"] == 5 and reply["error"]["code"] == code
    if code == rpc.AURA_ERROR:
        assert reply["error"]["data"] == {"exit_code": 2}


def test_an_async_handler_answers_through_an_awaitable() -> None:
    async def handler(params: Any) -> Any:
        return params["n"] + 1

    async def failing(_params: Any) -> Any:
        raise rpc.RpcError(rpc.UNAVAILABLE, "busy")

    endpoint: Endpoint = Endpoint()
    (call,) = endpoint.receive(rpc.request("m", {"n": 1}, 3)).calls
    assert answer(endpoint.dispatch(call, handler)) == rpc.result(3, 2)
    assert answer(endpoint.dispatch(call, failing))["error"]["code"] == rpc.UNAVAILABLE


def test_notifications_are_dispatched_and_never_answered() -> None:
    seen: list[Any] = []
    endpoint: Endpoint = Endpoint()
    (call,) = endpoint.receive(rpc.notification("note", [1])).calls
    assert call.kind == "notification"
    assert endpoint.dispatch(call, seen.append) is None and seen == [[1]]
    assert endpoint.dispatch(call, None) is None  # unknown: ignored
    assert endpoint.dispatch(call, boom_bug) is None  # failed: logged, not answered


def test_a_batch_is_split_and_answered_with_one_array() -> None:
    endpoint: Endpoint = Endpoint()
    id_, _ = endpoint.request("ours", {}, "w")
    got = endpoint.receive(json.dumps([
        {"jsonrpc": "2.0", "method": "echo", "params": [1], "id": 10},
        {"jsonrpc": "2.0", "method": "note"},
        {"jsonrpc": "2.0", "result": "yes", "id": id_},
        7]))
    assert got.batch
    assert [(c.kind, c.method) for c in got.calls] == [("request", "echo"),
                                                       ("notification", "note")]
    assert [(s.waiter, s.result) for s in got.settled] == [("w", "yes")]
    assert [r["error"]["code"] for r in got.replies] == [rpc.INVALID_REQUEST]
    replies = [*got.replies, endpoint.dispatch(got.calls[0], lambda p: p)]
    text = endpoint.reply_text([r for r in replies if r is not None], got.batch)
    assert text is not None
    assert sorted(str(a["id"]) for a in json.loads(text)) == ["10", "None"]
    assert endpoint.reply_text([], True) is None  # a batch of notifications: no answer


def test_entries_messages_take_the_fast_path_only_when_asked() -> None:
    endpoint: Endpoint = Endpoint()
    texts = ['{"seq":1,"kind":"raw","text":"a"}', '{"seq":2,"kind":"raw","text":"b"}']
    message = rpc.entries_message("execution.log", {"session": "s"}, texts)
    got = endpoint.receive(message, ["execution.log"])
    assert got.entries == ("execution.log", {"session": "s"}, texts) and not got.calls
    (call,) = endpoint.receive(message).calls
    assert call.params == {"session": "s", "entries": [json.loads(t) for t in texts]}


DEEP = "[" * 100_000
ADVERSARIAL = [
    ('{"jsonrpc": "2.0", "method"', rpc.PARSE_ERROR),
    ("\x00garbage", rpc.PARSE_ERROR),
    (b"\xff\xfe", rpc.PARSE_ERROR),
    (DEEP, rpc.PARSE_ERROR),
    (DEEP + "]" * 100_000, rpc.PARSE_ERROR),
    ('{"a":' * 100_000, rpc.PARSE_ERROR),
    ('{"jsonrpc":"2.0","method":"m","id":1,"params":' + DEEP, rpc.PARSE_ERROR),
    ('{"jsonrpc":"2.0","method":"execution.log","params":{"x":' + DEEP
     + ',"entries":[\n{"seq":1}]}}', rpc.PARSE_ERROR),
    ("1", rpc.INVALID_REQUEST),
    ('"text"', rpc.INVALID_REQUEST),
    ("null", rpc.INVALID_REQUEST),
    ("[]", rpc.INVALID_REQUEST),
    ('{"method": "m", "id": 1}', rpc.INVALID_REQUEST),
    ('{"jsonrpc":"2.0","method":"m","id":{"a":1}}', rpc.INVALID_REQUEST),
    ('{"jsonrpc":"2.0","method":"m","id":[1]}', rpc.INVALID_REQUEST),
    ('{"jsonrpc":"2.0","method":"m","id":true}', rpc.INVALID_REQUEST),
]


@pytest.mark.parametrize(("text", "code"), ADVERSARIAL,
                         ids=[f"{i}:{str(t)[:24]}" for i, (t, _c) in enumerate(ADVERSARIAL)])
def test_adversarial_input_gets_an_error_answer_and_the_endpoint_stays_usable(
        text: str | bytes, code: int) -> None:
    endpoint: Endpoint = Endpoint()
    id_, _ = endpoint.request("m", {}, "w")
    got = endpoint.receive(text, ["execution.log"])
    assert not got.calls and not got.settled and got.entries is None
    (reply,) = got.replies
    assert reply["error"]["code"] == code and reply["id"] is None
    assert json.loads(endpoint.reply_text(got.replies, got.batch) or "")["id"] is None
    # Still usable: the pending request settles, new requests and calls work.
    assert [s.waiter for s in endpoint.receive(respond(id_, 1)).settled] == ["w"]
    assert endpoint.request("n", {}, "w2")[0] == id_ + 1
    assert [c.method for c in endpoint.receive(rpc.request("x", {}, 1)).calls] == ["x"]
