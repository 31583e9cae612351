"""`aura serve`'s sockets: the WebSocket server, the token check before any WebSocket
opens, and one ``Connection`` per peer handing its calls to the ``Coordinator``.

Every connection must present the shared token in its HTTP ``Authorization: Bearer``
header (compared with ``hmac.compare_digest``); a missing or wrong token is refused with
HTTP 401 and logged, and no method runs.

Limits (``Limits``): at most ``max_connections`` connections at once (more get HTTP 503
before any WebSocket opens); a connection that has not said hello within
``hello_timeout`` seconds is closed; each connection's outgoing queue is bounded
(aura.rpc.Peer). Running out of file descriptors is logged once per ``LOG_EVERY``
seconds, with the count, instead of once per refused accept.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aura.rpc import HELLO_REQUIRED, PROTOCOL_VERSION, Peer, RpcError

from .coordinator import Coordinator, Handler

log = logging.getLogger("aura.coordinator")

MAX_CONNECTIONS = 1000
HELLO_TIMEOUT = 5.0
LOG_EVERY = 10.0  # seconds between two log lines about the same resource limit
_OUT_OF_FDS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


@dataclass
class Limits:
    max_connections: int = MAX_CONNECTIONS
    hello_timeout: float = HELLO_TIMEOUT


class Throttled:
    """One log line per ``every`` seconds for a recurring condition, with the count of
    occurrences it stands for."""

    def __init__(self, every: float = LOG_EVERY) -> None:
        self.every = every
        self._last = float("-inf")
        self._count = 0

    def __call__(self, message: str, *args: Any) -> None:
        self._count += 1
        now = time.monotonic()
        if now - self._last < self.every:
            return
        log.warning(message + " (%d time(s) since the last such line, at most one per %g s)",
                    *args, self._count, self.every)
        self._last, self._count = now, 0


class Connection:
    """One authenticated WebSocket: a worker or a client once it said hello."""

    def __init__(self, coordinator: Coordinator, ws: Any) -> None:
        self.coordinator = coordinator
        self.role: str | None = None
        self.worker: str | None = None
        self.remote = address(ws)
        self.peer = Peer(ws, self.route, name=f"connection from {self.remote}",
                         on_message=self.seen, batches={"execution.log": self.log_batch},
                         max_outbox=max(32 << 20, 2 * coordinator.max_message))

    @property
    def backlog(self) -> int:
        return self.peer.backlog

    def send_text(self, text: str) -> None:
        self.peer.send_text(text)

    def route(self, method: str) -> Handler | None:
        return self.coordinator.route(self, method)

    def log_batch(self, header: dict[str, Any], texts: list[str]) -> None:
        if self.role != "worker":
            raise RpcError(HELLO_REQUIRED, "execution.log is for workers after worker.hello")
        self.coordinator.relay.log_batch(self, header, texts)

    def seen(self) -> None:
        self.coordinator.registry.seen(self)


def address(ws: Any) -> str:
    try:
        host, port = ws.remote_address[:2]
        return f"{host}:{port}"
    except (AttributeError, TypeError, ValueError):
        return "?"


def check_token(header: str | None, token: bytes) -> str | None:
    """None when the Authorization header carries the token, else why not."""
    if not header:
        return "no token"
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        return "no token"
    if not hmac.compare_digest(given.strip().encode(), token):
        return "bad token"
    return None


def refuse_without_token(token: bytes, open_now: Callable[[], int] = lambda: 0,
                         limit: int = MAX_CONNECTIONS) -> Callable[[Any, Any], Any]:
    """The server's process_request: HTTP 401 unless the request carries the token, 503
    when ``open_now()`` connections (this one included) are more than ``limit``."""
    crowded = Throttled()

    def process_request(connection: Any, request: Any) -> Any:
        from http import HTTPStatus

        why = check_token(request.headers.get("Authorization"), token)
        if why is not None:
            log.warning("refused connection from %s: %s", address(connection), why)
            return connection.respond(HTTPStatus.UNAUTHORIZED,
                                      f"aura: unauthorized ({why}); set AURA_TOKEN or "
                                      "--token-file to the coordinator's token\n")
        if open_now() > limit:
            crowded("refusing connections: %d open, the limit is %d (--max-connections)",
                    open_now() - 1, limit)
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE,
                                      f"aura: the coordinator is at its limit of {limit} "
                                      "connections; try again later\n")
        return None

    return process_request


def quiet_fd_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Accepts refused for want of file descriptors: one line per LOG_EVERY seconds
    instead of a traceback each (asyncio retries the accept by itself)."""
    out_of_fds = Throttled()
    default = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in _OUT_OF_FDS:
            out_of_fds("cannot accept connections: %s (raise the limit with `ulimit -n`, "
                       "or lower --max-connections)", exc.strerror)
            return
        if default is not None:
            default(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


def _close_unless_greeted(conn: Connection, timeout: float) -> None:
    if conn.role is None and not conn.peer.closed.is_set():
        log.info("closing connection from %s: no hello within %g s", conn.remote, timeout)
        conn.peer.close_soon(1008, f"no hello within {timeout:g} s")


async def handle(coordinator: Coordinator, ws: Any, limits: Limits | None = None) -> None:
    limits = limits or Limits()
    conn = Connection(coordinator, ws)
    log.info("connection from %s", conn.remote)
    timer = asyncio.get_running_loop().call_later(
        limits.hello_timeout, _close_unless_greeted, conn, limits.hello_timeout)
    try:
        await conn.peer.run()
    finally:
        timer.cancel()
        sent = getattr(getattr(ws, "protocol", None), "close_sent", None)
        why = " (message too big)" if getattr(sent, "code", None) == 1009 else ""
        was_worker = conn.worker is not None
        if coordinator.disconnected(conn):
            log.info("worker %s disconnected%s", conn.worker, why)
        elif not was_worker:
            log.info("connection from %s closed%s", conn.remote, why)


async def serve(coordinator: Coordinator, host: str, port: int, *, ssl_context: Any = None,
                ready: Callable[[str], None] | None = None,
                limits: Limits | None = None) -> None:
    """Listen until cancelled."""
    from websockets.asyncio.server import Server
    from websockets.asyncio.server import serve as ws_serve

    limits = limits or Limits()
    quiet_fd_errors(asyncio.get_running_loop())
    holder: list[Server] = []

    def open_now() -> int:  # TCP connections, those still in their handshake included
        return len(holder[0].handler_tasks) if holder else 0

    server = await ws_serve(lambda ws: handle(coordinator, ws, limits), host, port,
                            process_request=refuse_without_token(
                                coordinator.token, open_now, limits.max_connections),
                            max_size=coordinator.max_message, ssl=ssl_context,
                            open_timeout=max(limits.hello_timeout, 1.0),
                            compression=None, logger=logging.getLogger("aura.websockets"))
    holder.append(server)
    watcher = asyncio.create_task(coordinator.watch())
    try:
        sockname = server.sockets[0].getsockname()
        scheme = "wss" if ssl_context is not None else "ws"
        url = f"{scheme}://{_host_for_url(sockname[0])}:{sockname[1]}"
        log.info("listening on %s (protocol %d, heartbeat %g s, offline after %g s)", url,
                 PROTOCOL_VERSION, coordinator.heartbeat_interval, coordinator.offline_after)
        if ready is not None:
            ready(url)
        await server.serve_forever()
    finally:
        watcher.cancel()
        server.close()
        coordinator.writer.close()


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host
