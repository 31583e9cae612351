"""The worker's line to the coordinator: dial out, say ``worker.hello``, send
``worker.heartbeat`` at the interval the coordinator asks for, and when the line drops dial
again with exponential backoff (jittered, capped). Only failures to reach the coordinator
are retried; a refused token or protocol is WorkerRefused, and anything else is a bug and raises.

Identity: the first hello enrolls this worker and the coordinator answers with its own key,
kept in ``key_file`` (mode 0600); every later hello proves it. A refused identity (revoked,
or the name enrolled by another key) is WorkerRefused: retrying cannot fix it.

What happens on a live connection is the owner's: ``on_up(peer, hello_answer)`` returns a
coroutine that runs until the connection ends (the relay's pump).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from aura import __version__
from aura.errors import AuraError, WorkerRefused
from aura.rpc import (
    INVALID_PARAMS,
    PROTOCOL_VERSION,
    VERSION_MISMATCH,
    ConnectionLost,
    Peer,
    RpcError,
    Unauthorized,
)
from aura.rpc_codec import IDENTITY_REFUSED

log = logging.getLogger("aura.worker")

BACKOFF_FIRST = 0.2
BACKOFF_CAP = 5.0


class Link:
    """Connect, greet, keep alive, reconnect. ``hello()`` and ``running()`` are asked
    afresh on every connection and heartbeat."""

    def __init__(self, url: str, name: str, token: str, *, route: Callable[[str], Any],
                 hello: Callable[[], dict[str, Any]], running: Callable[[], list[str]],
                 on_up: Callable[[Any, dict[str, Any]], Coroutine[Any, Any, None]],
                 cafile: str | None = None, connect: Callable[..., Awaitable[Any]] | None = None,
                 backoff: tuple[float, float] = (BACKOFF_FIRST, BACKOFF_CAP),
                 key_file: Path | None = None) -> None:
        self.url = url
        self.name = name
        self._token = token
        self._route = route
        self.key_file = key_file
        self.hello = hello
        self.running = running
        self.on_up = on_up
        self.cafile = cafile
        self._connect = connect
        self.backoff = backoff
        self.peer: Any = None  # the greeted peer while connected

    async def run(self) -> None:
        """Connect, serve, reconnect with backoff; returns only by raising (WorkerRefused)."""
        first, cap = self.backoff
        delay = first
        while True:
            try:
                ws = await self.dial()
            except Unauthorized as exc:
                raise WorkerRefused(str(exc)) from None
            except (OSError, TimeoutError, AuraError) as exc:
                log.warning("cannot reach %s (%s); retrying in %.1f s", self.url,
                            _why(exc), delay)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, cap)
                continue
            if await self.serve(Peer(ws, self.route, name="coordinator")):
                delay = first
            log.warning("connection to %s lost; reconnecting", self.url)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, cap)

    def route(self, method: str) -> Any:
        if method == "execution.refused":
            return _log_refusal
        return self._route(method)

    def _key(self) -> str | None:
        try:
            return self.key_file.read_text().strip() or None if self.key_file else None
        except FileNotFoundError:
            return None

    def _keep_key(self, key: str) -> None:
        assert self.key_file is not None
        self.key_file.parent.mkdir(parents=True, exist_ok=True)
        fresh = self.key_file.with_suffix(".new")
        fresh.unlink(missing_ok=True)
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(key + "\n")
        fresh.replace(self.key_file)

    async def dial(self) -> Any:
        if self._connect is not None:
            return await self._connect(self.url, self._token, cafile=self.cafile)
        from aura.rpc import connect

        return await connect(self.url, self._token, cafile=self.cafile)

    async def serve(self, peer: Any) -> bool:
        """One connection: hello, then heartbeats and the owner's work until it ends.
        True if the hello succeeded."""
        reader = asyncio.create_task(peer.run())
        helpers: list[asyncio.Task[Any]] = []
        try:
            answer = await self._greet(peer)
            self.peer = peer
            interval = float(answer.get("heartbeat_interval", 5.0))
            timeout = float(answer.get("offline_after", 15.0))
            helpers = [asyncio.create_task(self.heartbeats(peer, interval, timeout)),
                       asyncio.create_task(self.on_up(peer, answer))]
            await reader
            return True
        except (ConnectionLost, TimeoutError):
            return False
        except RpcError as exc:
            log.warning("the coordinator answered hello with an error: %s", exc.message)
            return False
        finally:
            self.peer = None
            for task in helpers:
                task.cancel()
            await peer.close()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionLost):
                await reader

    async def _greet(self, peer: Any) -> dict[str, Any]:
        hello = self.hello()
        key = self._key()
        if key is not None:
            hello["key"] = key
        try:
            answer: dict[str, Any] = await peer.request("worker.hello", hello, timeout=30)
        except RpcError as exc:
            if exc.code in (VERSION_MISMATCH, INVALID_PARAMS, IDENTITY_REFUSED):
                raise WorkerRefused(f"the coordinator refused this worker: {exc.message}") from None
            raise
        if answer.get("protocol") != PROTOCOL_VERSION:
            raise WorkerRefused(f"protocol version mismatch: the coordinator speaks aura protocol "
                        f"{answer.get('protocol')!r} (aura {answer.get('version', '?')}), "
                        f"this worker speaks {PROTOCOL_VERSION} (aura {__version__}); "
                        "run the same aura version on both")
        if isinstance(answer.get("key"), str) and self.key_file is not None:
            self._keep_key(answer["key"])
            log.info("enrolled with %s as %s (identity %s); the key is in %s", self.url,
                     self.name, answer.get("identity"), self.key_file)
        log.info("connected to %s as %s (identity %s, coordinator aura %s)", self.url,
                 self.name, answer.get("identity"), answer.get("version"))
        return answer

    async def heartbeats(self, peer: Any, interval: float, timeout: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await peer.request("worker.heartbeat", {"running": self.running()},
                                   timeout=timeout)
            except TimeoutError:
                log.warning("no answer to a heartbeat in %g s; reconnecting", timeout)
                await peer.close(4002, "heartbeat unanswered")
                return
            except ConnectionLost:
                return


def _log_refusal(params: Any) -> None:
    error = params.get("error") if isinstance(params, dict) else None
    log.warning("the coordinator refused a message about execution %s: %s",
                str(params.get("execution"))[:8] if isinstance(params, dict) else "?",
                error.get("message") if isinstance(error, dict) else error)


def _why(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
