"""`aura serve`'s sockets: the WebSocket server, the token check before any WebSocket
opens, and one ``Connection`` per peer handing its calls to the ``Coordinator``.

Every connection must present the shared token in its HTTP ``Authorization: Bearer``
header (compared with ``hmac.compare_digest``); a missing or wrong token is refused with
HTTP 401 and logged, and no method runs.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from typing import Any

from aura.rpc import HELLO_REQUIRED, PROTOCOL_VERSION, Peer, RpcError

from .coordinator import Coordinator, Handler

log = logging.getLogger("aura.coordinator")


class Connection:
    """One authenticated WebSocket: a worker or a client once it said hello."""

    def __init__(self, coordinator: Coordinator, ws: Any) -> None:
        self.coordinator = coordinator
        self.role: str | None = None
        self.worker: str | None = None
        self.remote = address(ws)
        self.peer = Peer(ws, self.route, name=f"connection from {self.remote}",
                         on_message=self.seen, batches={"execution.log": self.log_batch})

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


def refuse_without_token(token: bytes) -> Callable[[Any, Any], Any]:
    """The server's process_request: HTTP 401 unless the request carries the token."""

    def process_request(connection: Any, request: Any) -> Any:
        why = check_token(request.headers.get("Authorization"), token)
        if why is None:
            return None
        log.warning("refused connection from %s: %s", address(connection), why)
        from http import HTTPStatus

        return connection.respond(HTTPStatus.UNAUTHORIZED,
                                  f"aura: unauthorized ({why}); set AURA_TOKEN or "
                                  "--token-file to the coordinator's token\n")

    return process_request


async def handle(coordinator: Coordinator, ws: Any) -> None:
    conn = Connection(coordinator, ws)
    log.info("connection from %s", conn.remote)
    try:
        await conn.peer.run()
    finally:
        sent = getattr(getattr(ws, "protocol", None), "close_sent", None)
        why = " (message too big)" if getattr(sent, "code", None) == 1009 else ""
        was_worker = conn.worker is not None
        if coordinator.disconnected(conn):
            log.info("worker %s disconnected%s", conn.worker, why)
        elif not was_worker:
            log.info("connection from %s closed%s", conn.remote, why)


async def serve(coordinator: Coordinator, host: str, port: int, *, ssl_context: Any = None,
                ready: Callable[[str], None] | None = None) -> None:
    """Listen until cancelled."""
    from websockets.asyncio.server import serve as ws_serve

    server = await ws_serve(lambda ws: handle(coordinator, ws), host, port,
                            process_request=refuse_without_token(coordinator.token),
                            max_size=coordinator.max_message, ssl=ssl_context,
                            compression=None, logger=logging.getLogger("aura.websockets"))
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
