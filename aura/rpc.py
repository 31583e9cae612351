"""JSON-RPC 2.0 for aura's remote workers: a sans-I/O codec and a ``Peer`` over WebSocket.

The codec (``parse``, ``request``, ``notification``, ``result``, ``error``, ``RpcError``)
knows nothing about sockets: it turns text into validated messages and back, following
the JSON-RPC 2.0 specification exactly (ids, notifications, batches, the standard error
codes −32700…−32603). aura's own error codes live in the −32000…−32099 range reserved for
implementations and are listed in ``AURA_CODES`` (docs/protocol.md documents them).

``Peer`` drives one websockets connection (the asyncio API): it reads messages, routes
requests and notifications to handlers, answers requests, matches responses to the
requests it sent (with timeouts), and writes everything through one queue so messages
leave in the order they were queued. Both the coordinator and the worker/client side use
it; which methods a connection may call is decided by the ``route`` function it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aura.errors import AuraError

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
AURA_ERROR = -32010

AURA_CODES = {
    VERSION_MISMATCH: "protocol version mismatch",
    HELLO_REQUIRED: "say worker.hello or client.hello first",
    NOT_FOUND: "no such session, execution or worker",
    UNAVAILABLE: "no worker can take the run now (offline, busy, or lacks the executor)",
    REFUSED: "the worker's policy refuses this run",
    AURA_ERROR: "the run failed to start (data.exit_code says how)",
}

log = logging.getLogger("aura.rpc")

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class RpcError(AuraError):
    """A JSON-RPC error object, raised by handlers and by ``Peer.request``."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data
        if isinstance(data, dict) and isinstance(data.get("exit_code"), int):
            self.exit_code = data["exit_code"]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out


class ConnectionLost(AuraError):
    """The connection closed before the answer came."""


# encoding ------------------------------------------------------------------------------------

def request(method: str, params: Any, id: int | str) -> str:
    return _encode({"jsonrpc": "2.0", "method": method, "params": params, "id": id})


def notification(method: str, params: Any) -> str:
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
    except ValueError:
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


def classify(obj: Any) -> Message | dict[str, Any]:
    """A Message, or the error response (a dict) the spec requires for an invalid one."""
    if not isinstance(obj, dict) or obj.get("jsonrpc") != "2.0":
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


def parse(text: str | bytes) -> tuple[list[Message | dict[str, Any]], bool]:
    """Decode one WebSocket message: (items, is_batch). Each item is a Message or the
    error response owed for an invalid element. Invalid JSON and an empty batch yield one
    error item, not a batch (as the spec's examples show)."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        obj = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        return [error(None, PARSE_ERROR, f"parse error: {exc}")], False
    if isinstance(obj, list):
        if not obj:
            return [error(None, INVALID_REQUEST, "invalid request: empty batch")], False
        return [classify(item) for item in obj], True
    return [classify(obj)], False


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


# the peer -------------------------------------------------------------------------------------

Handler = Callable[[dict[str, Any]], Any]
Route = Callable[[str], Handler | None]


class Peer:
    """One JSON-RPC endpoint over one websockets connection (either side)."""

    def __init__(self, ws: Any, route: Route, *, name: str = "peer",
                 request_timeout: float = 30.0,
                 on_message: Callable[[], None] | None = None,
                 batches: dict[str, Callable[[dict[str, Any], list[str]], None]] | None = None
                 ) -> None:
        self.ws = ws
        self.route = route
        # Notifications laid out by ``entries_message``, handled without a full decode.
        self.batches = batches or {}
        self.name = name
        self.request_timeout = request_timeout
        self.on_message = on_message
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._outbox: asyncio.Queue[str | tuple[int, str] | None] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.closed = asyncio.Event()
        self.queued = 0  # messages queued and not yet written (for flow control)

    # sending ------------------------------------------------------------------------------

    def send_text(self, text: str) -> None:
        """Queue one message; messages leave in the order they were queued."""
        if not self.closed.is_set():
            self.queued += 1
            self._outbox.put_nowait(text)

    def notify(self, method: str, params: Any) -> None:
        self.send_text(notification(method, params))

    async def request(self, method: str, params: Any, timeout: float | None = None) -> Any:
        """Send a request and wait for its result; RpcError for an error response,
        TimeoutError when no answer came in time, ConnectionLost when the line dropped."""
        if self.closed.is_set():
            raise ConnectionLost(f"connection to {self.name} is closed")
        id_ = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[id_] = future
        self.send_text(request(method, params, id_))
        try:
            return await asyncio.wait_for(future, timeout or self.request_timeout)
        finally:
            self._pending.pop(id_, None)

    def close_soon(self, code: int = 1000, reason: str = "") -> None:
        """Close once everything queued so far has been written."""
        if not self.closed.is_set():
            self.queued += 1
            self._outbox.put_nowait((code, reason))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        with contextlib.suppress(Exception):
            await self.ws.close(code, reason)

    # the loops ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it closes; then fail whatever still waits."""
        import websockets

        writer = asyncio.create_task(self._write())
        try:
            async for message in self.ws:
                if self.on_message is not None:
                    self.on_message()
                await self._receive(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()
            self._outbox.put_nowait(None)
            lost = ConnectionLost(f"connection to {self.name} closed")
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(lost)
            for task in list(self._tasks):
                task.cancel()
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer

    async def _write(self) -> None:
        import websockets

        while True:
            text = await self._outbox.get()
            if text is None:
                return
            try:
                if isinstance(text, tuple):
                    await self.ws.close(*text)
                    return
                await self.ws.send(text)
            except websockets.ConnectionClosed:
                return
            finally:
                self.queued -= 1

    async def _receive(self, text: str | bytes) -> None:
        if self.batches and isinstance(text, str):
            for method, handler in self.batches.items():
                split = split_entries(text, method)
                if split is not None:
                    try:
                        handler(*split)
                    except Exception as exc:
                        self._failure(Message("notification", method=method), exc)
                    return
        items, batch = parse(text)
        replies: list[Any] = []
        waiting: list[Awaitable[dict[str, Any] | None]] = []
        for item in items:
            if isinstance(item, dict):
                replies.append(item)
                continue
            if item.kind == "response":
                self._resolve(item)
                continue
            reply = self._call(item)
            if inspect.isawaitable(reply):
                waiting.append(reply)
            elif reply is not None:
                replies.append(reply)
        if not waiting:
            if replies:
                self.send_text(encode(replies if batch else replies[0]))
            return

        # A handler that waits (e.g. for a worker) must not stop this loop from reading:
        # answer from a task.
        async def finish() -> None:
            done = await asyncio.gather(*waiting)
            answers = replies + [r for r in done if r is not None]
            if answers:
                self.send_text(encode(answers if batch else answers[0]))

        task = asyncio.create_task(finish())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _resolve(self, message: Message) -> None:
        future = self._pending.get(message.id) if isinstance(message.id, int) else None
        if future is None or future.done():
            log.debug("%s: response to unknown request %r", self.name, message.id)
            return
        if message.error is not None:
            err = message.error
            future.set_exception(RpcError(err.get("code", INTERNAL_ERROR),
                                          str(err.get("message", "error")), err.get("data")))
        else:
            future.set_result(message.result)

    def _call(self, message: Message) -> dict[str, Any] | Awaitable[dict[str, Any] | None] | None:
        handler = self.route(message.method)
        if handler is None:
            if message.kind == "notification":
                log.info("%s: ignored unknown notification %s", self.name, message.method)
                return None
            return error(message.id, METHOD_NOT_FOUND, f"method not found: {message.method}")
        try:
            value = handler(message.params)
        except Exception as exc:
            return self._failure(message, exc)
        if inspect.isawaitable(value):
            return self._await(message, value)
        return result(message.id, value) if message.kind == "request" else None

    async def _await(self, message: Message, value: Awaitable[Any]
                     ) -> dict[str, Any] | None:
        try:
            answer = await value
        except Exception as exc:
            return self._failure(message, exc)
        return result(message.id, answer) if message.kind == "request" else None

    def _failure(self, message: Message, exc: Exception) -> dict[str, Any] | None:
        if isinstance(exc, RpcError):
            err = exc
        elif isinstance(exc, AuraError):
            err = RpcError(AURA_ERROR, str(exc), {"exit_code": exc.exit_code})
        else:
            log.exception("%s: %s failed", self.name, message.method)
            err = RpcError(INTERNAL_ERROR, f"internal error: {type(exc).__name__}: {exc}")
        if message.kind == "notification":
            log.warning("%s: notification %s failed: %s", self.name, message.method, err)
            return None
        return {"jsonrpc": "2.0", "error": err.to_json(), "id": message.id}


# connecting ------------------------------------------------------------------------------------

async def connect(url: str, token: str, *, cafile: str | None = None,
                  max_size: int | None = 64 << 20, open_timeout: float = 10) -> Any:
    """Open a WebSocket to the coordinator, the token in the Authorization header (never
    in the URL, which ends up in logs). A refused token is an AuraError saying so."""
    import ssl

    from websockets.asyncio.client import connect as ws_connect
    from websockets.exceptions import InvalidHandshake, InvalidStatus

    context = None
    if url.startswith("wss://"):
        context = ssl.create_default_context(cafile=cafile)
    elif not url.startswith("ws://"):
        raise AuraError(f"coordinator address {url!r} must start with ws:// or wss://")
    try:
        return await ws_connect(url, additional_headers={"Authorization": f"Bearer {token}"},
                                ssl=context, max_size=max_size, compression=None,
                                open_timeout=open_timeout, proxy=None)
    except ssl.SSLCertVerificationError as exc:
        raise Unauthorized(f"cannot trust the certificate of {url}: {exc.verify_message}; "
                           "for a self-signed coordinator pass its certificate with "
                           "--cafile (or AURA_CAFILE)") from None
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status == 401:
            raise Unauthorized(f"the coordinator at {url} refused the token (HTTP 401); "
                               "use the token `aura serve` was started with") from None
        raise AuraError(f"the coordinator at {url} answered HTTP {status}") from None
    except InvalidHandshake as exc:
        raise AuraError(f"no WebSocket handshake with {url}: {exc}") from None


class Unauthorized(AuraError):
    """The coordinator refused our token, or its certificate is not trusted: retrying
    will not help."""
