"""JSON-RPC 2.0 messages, sans-I/O: error codes, encoding, decoding and validation.

Turns text into validated messages and back, following the JSON-RPC 2.0 specification
exactly (ids, notifications, batches, the standard error codes −32700…−32603). aura's own
error codes live in the −32000…−32099 range reserved for implementations and are listed in
``AURA_CODES`` (docs/protocol.md documents them). The fast path for relayed entries
(``entries_message``, ``split_entries``, ``seq_of``) splices stored JSON texts in and out
without decoding them. ``aura.rpc`` builds its endpoint and transports on this module and
re-exports all of it.
"""

from __future__ import annotations

import json
from typing import Any

from aura.errors import RpcError

PROTOCOL_VERSION = 1
"""Bumped whenever a method, a parameter or a meaning changes incompatibly."""

# Standard JSON-RPC 2.0 codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
# aura's own codes (the implementation-defined server error range).
VERSION_MISMATCH = -32001
HELLO_REQUIRED = -32002
NOT_FOUND = -32003
UNAVAILABLE = -32004
REFUSED = -32005
NOT_OWNER = -32006
BAD_ENTRY = -32007
IDENTITY_REFUSED = -32008
AURA_ERROR = -32010

AURA_CODES = {
    VERSION_MISMATCH: "protocol version mismatch",
    HELLO_REQUIRED: "say worker.hello or client.hello first",
    NOT_FOUND: "no such session, execution or worker",
    UNAVAILABLE: "no worker can take the run now (offline, busy, or lacks the executor)",
    REFUSED: "the worker's policy refuses this run",
    NOT_OWNER: "this connection's worker was not given that run or session",
    BAD_ENTRY: "an entry is not one JSON object, is too big, or its seq does not continue",
    IDENTITY_REFUSED: "the worker's key is missing, wrong or revoked, or its name is held",
    AURA_ERROR: "the run failed to start (data.exit_code says how)",
}


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


# encoding ------------------------------------------------------------------------------------

def request(method: str, params: Any, id: int | str, *, bare: bool = False) -> str:
    """``bare``: without the "jsonrpc" member (codex app-server's dialect)."""
    if bare:
        return _encode({"method": method, "params": params, "id": id})
    return _encode({"jsonrpc": "2.0", "method": method, "params": params, "id": id})


def notification(method: str, params: Any, *, bare: bool = False) -> str:
    if bare:
        return _encode({"method": method} if params is None else
                       {"method": method, "params": params})
    return _encode({"jsonrpc": "2.0", "method": method, "params": params})


def result(id: int | str | None, value: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "result": value, "id": id}


def error(id: int | str | None, code: int, message: str, data: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": RpcError(code, message, data).to_json(), "id": id}


def notification_raw(method: str, params_json: str) -> str:
    """A notification whose params are already JSON text (the relay's batches: entries are
    spliced in as the recorder encoded them, never decoded and encoded again)."""
    return f'{{"jsonrpc":"2.0","method":{_encode(method)},"params":{params_json}}}'


def encode(message: Any) -> str:
    return _encode(message)


_ENTRIES_KEY = ',"entries":[\n'


def entries_message(method: str, header: dict[str, Any], texts: list[str]) -> str:
    """A notification carrying a batch of entries: ``params`` is ``header`` plus
    ``"entries": [...]``, the entries' stored JSON texts spliced in as they are and
    separated by ``,\n`` (an entry's JSON never holds a raw newline). It is ordinary
    JSON, and a receiver that recognises this layout (``split_entries``) takes the texts
    back without decoding and re-encoding every entry."""
    head = _encode(header)[:-1]
    return (f'{{"jsonrpc":"2.0","method":{_encode(method)},"params":{head}{_ENTRIES_KEY}'
            + ",\n".join(texts) + "]}}")


def split_entries(text: str, method: str) -> tuple[dict[str, Any], list[str]] | None:
    """(header, entry texts) of a message laid out by ``entries_message``, else None
    (the message then goes through the ordinary parser)."""
    prefix = f'{{"jsonrpc":"2.0","method":{_encode(method)},"params":'
    if not text.startswith(prefix) or not text.endswith("]}}"):
        return None
    cut = text.find(_ENTRIES_KEY, len(prefix))
    if cut < 0:
        return None
    try:
        header = json.loads(text[len(prefix):cut] + "}")
    except (ValueError, RecursionError):
        return None
    if not isinstance(header, dict):
        return None
    body = text[cut + len(_ENTRIES_KEY):-3]
    return header, body.split(",\n") if body else []


def seq_of(text: str) -> int:
    """The seq of an entry text. The recorder writes it first: ``{"seq":12,…``."""
    if text.startswith('{"seq":'):
        end = text.find(",", 7)
        if end > 7 and text[7:end].isdigit():
            return int(text[7:end])
    raise RpcError(INVALID_PARAMS, "invalid params: an entry line must start with its seq")


# decoding ------------------------------------------------------------------------------------

class Message:
    """One valid incoming message: a request, a notification or a response."""

    __slots__ = ("error", "id", "kind", "method", "params", "result")

    def __init__(self, kind: str, *, method: str = "", params: Any = None, id: Any = None,
                 result: Any = None, error: dict[str, Any] | None = None) -> None:
        self.kind = kind  # "request" | "notification" | "response"
        self.method = method
        self.params = params
        self.id = id
        self.result = result
        self.error = error


def _valid_id(value: Any) -> bool:
    return value is None or (isinstance(value, (str, int, float)) and not isinstance(value, bool))


def classify(obj: Any, *, bare: bool = False) -> Message | dict[str, Any]:
    """A Message, or the error response (a dict) the spec requires for an invalid one.
    ``bare`` also takes messages without the "jsonrpc" member (codex app-server)."""
    if not isinstance(obj, dict) or (obj.get("jsonrpc") != "2.0" and
                                     not (bare and "jsonrpc" not in obj)):
        return error(None, INVALID_REQUEST, "invalid request: not a JSON-RPC 2.0 object")
    if "method" in obj:
        method = obj["method"]
        params = obj.get("params")
        if not isinstance(method, str) or method.startswith("rpc."):
            return error(obj.get("id") if _valid_id(obj.get("id")) else None, INVALID_REQUEST,
                         "invalid request: method must be a string not starting with 'rpc.'")
        if "params" in obj and not isinstance(params, (dict, list)):
            return error(obj.get("id") if _valid_id(obj.get("id")) else None, INVALID_REQUEST,
                         "invalid request: params must be an object or an array")
        if "id" not in obj:
            return Message("notification", method=method, params=params)
        if not _valid_id(obj["id"]):
            return error(None, INVALID_REQUEST, "invalid request: bad id")
        return Message("request", method=method, params=params, id=obj["id"])
    if "id" in obj and ("result" in obj) != ("error" in obj):
        err = obj.get("error")
        if err is not None and not (isinstance(err, dict) and isinstance(err.get("code"), int)):
            return error(None, INVALID_REQUEST, "invalid response: bad error object")
        return Message("response", id=obj["id"], result=obj.get("result"), error=err)
    return error(obj.get("id") if _valid_id(obj.get("id")) else None, INVALID_REQUEST,
                 "invalid request: neither a request nor a response")


def parse(text: str | bytes, *, bare: bool = False
          ) -> tuple[list[Message | dict[str, Any]], bool]:
    """Decode one message (a WebSocket message, a line): (items, is_batch). Each item is a
    Message or the error response owed for an invalid element. Invalid JSON, JSON nested
    too deeply to decode and an empty batch yield one error item, not a batch (as the
    spec's examples show)."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        obj = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        return [error(None, PARSE_ERROR, f"parse error: {exc}")], False
    except RecursionError:
        # json's decoder recurses once per level: 100,000 "[" would otherwise end the
        # connection instead of getting an answer.
        return [error(None, PARSE_ERROR, "parse error: nested too deeply")], False
    if isinstance(obj, list):
        if not obj:
            return [error(None, INVALID_REQUEST, "invalid request: empty batch")], False
        return [classify(item, bare=bare) for item in obj], True
    return [classify(obj, bare=bare)], False


def params_object(params: Any) -> dict[str, Any]:
    """aura's methods take named params; anything else is INVALID_PARAMS."""
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise RpcError(INVALID_PARAMS, "invalid params: expected an object")
    return params


def need(params: dict[str, Any], key: str, kind: type | tuple[type, ...] = str) -> Any:
    """A required parameter of the given type, else INVALID_PARAMS naming it."""
    value = params.get(key)
    if value is None or not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise RpcError(INVALID_PARAMS, f"invalid params: {key!r} is required")
    return value
