"""JSON-RPC 2.0 endpoints for aura: a sans-I/O ``Endpoint`` and the two transports on it.

``Endpoint`` knows nothing about sockets, pipes or event loops (in the style of websockets'
protocol layer). ``receive(text)`` turns one incoming message into what to do: calls
(requests and notifications) to dispatch, responses that settle the requests it sent, and
the error answers owed for invalid input. It allocates request ids, keeps the table of
pending requests, and turns a handler's return value or exception into the answer to send.
Malformed JSON, non-objects, bad ids and JSON nested too deeply to decode get a
−32700/−32600 error answer, and the endpoint stays usable.

The transports drive one endpoint each on asyncio:

- ``Peer``: one websockets connection, used by the coordinator, the worker and the remote
  clients; which methods a connection may call is decided by the ``route`` it is given.
  Requests time out; messages leave through one queue in the order they were queued. The
  queue is bounded (``max_outbox`` bytes): a peer that stops reading while more is queued
  for it is disconnected and its queue freed, so it cannot grow this process's memory.
- ``LineChannel``: newline-delimited JSON over a child's stdout and stdin (ACP agents, see
  aura.executors.acp.client; with ``bare=True`` codex app-server's dialect, which leaves
  out the ``"jsonrpc"`` member both ways: aura.executors.codex_appserver). Lines that
  are no JSON-RPC message are the program's own output: they go to ``on_junk`` instead
  of being answered.

The codec (messages, error codes, the entries fast path) is ``aura.rpc_codec``; everything
in it is re-exported here.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aura.errors import AuraError, ConnectionLost, RpcError, Unauthorized
from aura.rpc_codec import (
    AURA_CODES,
    AURA_ERROR,
    HELLO_REQUIRED,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    NOT_FOUND,
    PARSE_ERROR,
    PROTOCOL_VERSION,
    REFUSED,
    UNAVAILABLE,
    VERSION_MISMATCH,
    Message,
    classify,
    encode,
    entries_message,
    error,
    need,
    notification,
    notification_raw,
    params_object,
    parse,
    request,
    result,
    seq_of,
    split_entries,
)

__all__ = [
    "AURA_CODES", "AURA_ERROR", "HELLO_REQUIRED", "INTERNAL_ERROR", "INVALID_PARAMS",
    "INVALID_REQUEST", "METHOD_NOT_FOUND", "NOT_FOUND", "PARSE_ERROR", "PROTOCOL_VERSION",
    "REFUSED", "UNAVAILABLE", "VERSION_MISMATCH", "ConnectionLost", "Endpoint", "Handler",
    "LineChannel", "Message", "Peer", "Received", "Route", "RpcError", "Settled",
    "Unauthorized", "classify", "connect", "encode", "entries_message", "error", "need",
    "notification", "notification_raw", "params_object", "parse", "request", "result",
    "seq_of", "split_entries",
]

log = logging.getLogger("aura.rpc")

Handler = Callable[[dict[str, Any]], Any]
Route = Callable[[str], Handler | None]
Reply = dict[str, Any] | None
MAX_OUTBOX = 32 << 20  # bytes queued for one connection before it counts as stalled
W = TypeVar("W")


# the sans-I/O endpoint -------------------------------------------------------------------------

@dataclass
class Settled(Generic[W]):
    """A response to one of our requests; its waiter is out of the pending table."""

    id: int
    method: str
    waiter: W
    result: Any = None
    error: RpcError | None = None


@dataclass
class Received(Generic[W]):
    """What one incoming message asks of the transport, in the message's order."""

    calls: list[Message] = field(default_factory=list)  # requests and notifications
    settled: list[Settled[W]] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)  # error answers owed now
    unknown: list[Message] = field(default_factory=list)  # responses to nothing pending
    batch: bool = False
    # (method, header, entry texts) of a message laid out by ``entries_message``.
    entries: tuple[str, dict[str, Any], list[str]] | None = None


class Endpoint(Generic[W]):
    """One side of a JSON-RPC 2.0 conversation, without I/O. ``W`` is whatever the
    transport waits on for an answer (an asyncio future); the endpoint only keeps it."""

    def __init__(self, name: str = "peer", *, bare: bool = False) -> None:
        self.name = name
        # codex app-server's dialect: JSON-RPC 2.0 without the "jsonrpc" member, both ways.
        self.bare = bare
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, W]] = {}

    # requests we send -----------------------------------------------------------------

    def request(self, method: str, params: Any, waiter: W) -> tuple[int, str]:
        """(id, text) of a new request; ``waiter`` comes back in ``Received.settled``."""
        id_ = next(self._ids)
        self._pending[id_] = (method, waiter)
        return id_, request(method, params, id_, bare=self.bare)

    def forget(self, id_: int) -> None:
        """Stop waiting for an answer (the request timed out or was cancelled)."""
        self._pending.pop(id_, None)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def drain(self) -> list[tuple[str, W]]:
        """(method, waiter) of every request still waiting; the table is then empty."""
        waiting = list(self._pending.values())
        self._pending.clear()
        return waiting

    # what comes in --------------------------------------------------------------------

    def receive(self, text: str | bytes, entry_methods: Iterable[str] = ()) -> Received[W]:
        """Decode one incoming message. A notification of one of ``entry_methods`` laid
        out by ``entries_message`` comes back as ``entries``, its texts not decoded."""
        if isinstance(text, str):
            for method in entry_methods:
                split = split_entries(text, method)
                if split is not None:
                    return Received(entries=(method, *split))
        items, batch = parse(text, bare=self.bare)
        got: Received[W] = Received(batch=batch)
        for item in items:
            if isinstance(item, dict):
                got.replies.append(item)
            elif item.kind == "response":
                self._settle(item, got)
            else:
                got.calls.append(item)
        return got

    def _settle(self, message: Message, got: Received[W]) -> None:
        # Only the int ids this endpoint issued: True and 1.0 compare equal to 1.
        entry = self._pending.pop(message.id, None) if type(message.id) is int else None
        if entry is None:
            got.unknown.append(message)
            return
        method, waiter = entry
        err = message.error
        failure = None if err is None else RpcError(
            err["code"], str(err.get("message", "error")), err.get("data"))
        got.settled.append(Settled(message.id, method, waiter, message.result, failure))

    # answering calls ------------------------------------------------------------------

    def dispatch(self, call: Message, handler: Handler | None) -> Reply | Awaitable[Reply]:
        """Run ``handler`` on a call's params: the answer to send (None for a
        notification), or an awaitable of it when the handler returns one."""
        if handler is None:
            if call.kind == "notification":
                log.info("%s: ignored unknown notification %s", self.name, call.method)
                return None
            return error(call.id, METHOD_NOT_FOUND, f"method not found: {call.method}")
        try:
            value = handler(call.params)
        except Exception as exc:  # the caller gets an error answer; failure() logs bugs
            return self.failure(call, exc)
        if inspect.isawaitable(value):
            return self._await(call, value)
        return result(call.id, value) if call.kind == "request" else None

    async def _await(self, call: Message, value: Awaitable[Any]) -> Reply:
        try:
            answer = await value
        except Exception as exc:  # as in dispatch
            return self.failure(call, exc)
        return result(call.id, answer) if call.kind == "request" else None

    def failure(self, call: Message, exc: Exception) -> Reply:
        """The error answer for a handler that raised (None for a notification): an
        RpcError as it is, an AuraError as AURA_ERROR with its exit code, anything else
        INTERNAL_ERROR, logged with its traceback."""
        if isinstance(exc, RpcError):
            err = exc
        elif isinstance(exc, AuraError):
            err = RpcError(AURA_ERROR, str(exc), {"exit_code": exc.exit_code})
        else:
            log.exception("%s: %s failed", self.name, call.method)
            err = RpcError(INTERNAL_ERROR, f"internal error: {type(exc).__name__}: {exc}")
        if call.kind == "notification":
            log.warning("%s: notification %s failed: %s", self.name, call.method, err)
            return None
        return {"jsonrpc": "2.0", "error": err.to_json(), "id": call.id}

    def reply_text(self, replies: list[dict[str, Any]], batch: bool) -> str | None:
        """The text answering one message: an array for a batch, nothing when nothing
        is owed (a batch of notifications gets no answer at all)."""
        if not replies:
            return None
        if self.bare:
            replies = [{k: v for k, v in reply.items() if k != "jsonrpc"} for reply in replies]
        return encode(replies if batch else replies[0])


# what both transports share ---------------------------------------------------------------------

class _Transport:
    """An endpoint driven on asyncio: futures for our requests, handlers for calls."""

    def __init__(self, name: str, *, bare: bool = False) -> None:
        self.name = name
        self.endpoint: Endpoint[asyncio.Future[Any]] = Endpoint(name, bare=bare)
        self._tasks: set[asyncio.Task[Any]] = set()

    def send_text(self, text: str) -> None:
        raise NotImplementedError

    def _handler(self, call: Message) -> Handler | None:
        raise NotImplementedError

    def notify(self, method: str, params: Any) -> None:
        self.send_text(notification(method, params, bare=self.endpoint.bare))

    def _settle(self, got: Received[asyncio.Future[Any]]) -> None:
        for settled in got.settled:
            if settled.waiter.done():
                continue
            if settled.error is not None:
                settled.waiter.set_exception(settled.error)
            else:
                settled.waiter.set_result(settled.result)

    def _answer(self, got: Received[asyncio.Future[Any]]) -> None:
        """Dispatch the calls of one message and send what it is owed, in one text."""
        replies = list(got.replies)
        waiting: list[Awaitable[Reply]] = []
        for call in got.calls:
            reply = self.endpoint.dispatch(call, self._handler(call))
            if inspect.isawaitable(reply):
                waiting.append(reply)
            elif reply is not None:
                replies.append(reply)
        if not waiting:
            text = self.endpoint.reply_text(replies, got.batch)
            if text is not None:
                self.send_text(text)
            return

        # A handler that waits (e.g. for a worker) must not stop the reading loop:
        # answer from a task.
        async def finish() -> None:
            done = await asyncio.gather(*waiting)
            text = self.endpoint.reply_text(replies + [r for r in done if r is not None],
                                            got.batch)
            if text is not None:
                self.send_text(text)

        task = asyncio.create_task(finish())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _fail_waiting(self, lost: ConnectionLost) -> None:
        for _method, future in self.endpoint.drain():
            if not future.done():
                future.set_exception(lost)
        for task in list(self._tasks):
            task.cancel()


# over WebSocket ---------------------------------------------------------------------------------

class Peer(_Transport):
    """One JSON-RPC endpoint over one websockets connection (either side)."""

    def __init__(self, ws: Any, route: Route, *, name: str = "peer",
                 request_timeout: float = 30.0,
                 on_message: Callable[[], None] | None = None,
                 batches: dict[str, Callable[[dict[str, Any], list[str]], None]] | None = None,
                 max_outbox: int = MAX_OUTBOX) -> None:
        super().__init__(name)
        self.ws = ws
        self.route = route
        # Notifications laid out by ``entries_message``, handled without a full decode.
        self.batches = batches or {}
        self.request_timeout = request_timeout
        self.on_message = on_message
        self._outbox: asyncio.Queue[str | tuple[int, str] | None] = asyncio.Queue()
        self.closed = asyncio.Event()
        self.queued = 0  # messages queued and not yet written (for flow control)
        self.backlog = 0  # bytes of those messages
        self.max_outbox = max_outbox

    # sending ------------------------------------------------------------------------------

    def send_text(self, text: str) -> None:
        """Queue one message; messages leave in the order they were queued."""
        if self.closed.is_set():
            return
        if self.backlog + len(text) > self.max_outbox:
            self._overflow()
            return
        self.queued += 1
        self.backlog += len(text)
        self._outbox.put_nowait(text)

    def _overflow(self) -> None:
        """The peer stopped reading: free its queue and close the connection."""
        log.warning("%s: closing: %d bytes wait for it to read (limit %d)", self.name,
                    self.backlog, self.max_outbox)
        self.closed.set()
        while not self._outbox.empty():
            self._outbox.get_nowait()
        self.queued = self.backlog = 0
        self._outbox.put_nowait(None)
        task = asyncio.create_task(self.close(1008, "too far behind: stopped reading"))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def request(self, method: str, params: Any, timeout: float | None = None) -> Any:
        """Send a request and wait for its result; RpcError for an error response,
        TimeoutError when no answer came in time, ConnectionLost when the line dropped."""
        if self.closed.is_set():
            raise ConnectionLost(f"connection to {self.name} is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        id_, text = self.endpoint.request(method, params, future)
        self.send_text(text)
        try:
            return await asyncio.wait_for(future, timeout or self.request_timeout)
        finally:
            self.endpoint.forget(id_)

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
                self._receive(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()
            self._outbox.put_nowait(None)
            self._fail_waiting(ConnectionLost(f"connection to {self.name} closed"))
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
                # (an overflow may have reset the counts meanwhile)
                self.queued = max(0, self.queued - 1)
                if isinstance(text, str):
                    self.backlog = max(0, self.backlog - len(text))

    def _receive(self, text: str | bytes) -> None:
        got = self.endpoint.receive(text, self.batches)
        if got.entries is not None:
            method, header, texts = got.entries
            try:
                self.batches[method](header, texts)
            except Exception as exc:  # a notification: failure() logs it
                self.endpoint.failure(Message("notification", method=method), exc)
            return
        self._settle(got)
        for message in got.unknown:
            log.debug("%s: response to unknown request %r", self.name, message.id)
        self._answer(got)

    def _handler(self, call: Message) -> Handler | None:
        return self.route(call.method)


# over stdio lines -------------------------------------------------------------------------------

class LineChannel(_Transport):
    """JSON-RPC 2.0 as one JSON text per line: the child's stdout comes in through
    ``feed``, answers and requests go to its stdin through the writer of ``attach``.
    Requests and notifications go to their own routes. An error answer that names no id
    (a line that is no JSON, or no JSON-RPC message) would answer nothing the program
    asked: such a line is its own output and goes to ``on_junk``, as does a response to
    nothing pending. Requests wait without a timeout (callers bound them)."""

    def __init__(self, requests: Route, notifications: Route,
                 on_junk: Callable[[str], None], *, name: str = "agent",
                 bare: bool = False) -> None:
        super().__init__(name, bare=bare)
        self._requests = requests
        self._notifications = notifications
        self._on_junk = on_junk
        self._outbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._closed: str | None = None

    def attach(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        """Start writing queued lines with ``write`` (e.g. ``Child.write``)."""
        self._writer = asyncio.create_task(self._write_loop(write))

    async def _write_loop(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        while True:
            data = await self._outbox.get()
            try:
                if data is None:
                    return
                await write(data)
            finally:
                self._outbox.task_done()

    def send_text(self, text: str) -> None:
        self._outbox.put_nowait(text.encode() + b"\n")

    async def flush(self, timeout: float = 2.0) -> None:
        """Wait until everything sent so far has been written."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._outbox.join(), timeout)

    async def request(self, method: str, params: Any) -> Any:
        """Send a request and wait for its result; RpcError for an error response,
        ConnectionLost (with the reason given to ``close``) when the program is gone."""
        if self._closed is not None:
            raise ConnectionLost(self._closed)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        id_, text = self.endpoint.request(method, params, future)
        self.send_text(text)
        try:
            return await future
        finally:
            self.endpoint.forget(id_)

    def feed(self, line: str) -> None:
        """One line of the program's stdout."""
        text = line.strip()
        if not text:
            return
        got = self.endpoint.receive(text)
        owed = [reply for reply in got.replies if reply["id"] is not None]
        if got.unknown or len(owed) < len(got.replies):
            self._on_junk(line)
        got.replies = owed
        self._settle(got)
        self._answer(got)

    def _handler(self, call: Message) -> Handler | None:
        route = self._requests if call.kind == "request" else self._notifications
        return route(call.method)

    def close(self, reason: str) -> None:
        """The program is gone: fail every waiting request, stop the writer."""
        if self._closed is None:
            self._closed = reason
        self._fail_waiting(ConnectionLost(reason))
        self._outbox.put_nowait(None)

    async def aclose(self) -> None:
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer


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
