"""The worker (`aura worker`): dials out to a coordinator and runs executions it is given.

- The line to the coordinator (hello, heartbeats, reconnects) is link.py; the lossless
  relay of every entry (spool, acks, resends, restarts) is relay.py; what a worker refuses
  to run is policy.py; the model servers it can reach are model_servers.py (probed
  before the first hello and every minute after). This module wires them and answers the
  coordinator's calls.
- An execution runs through ``service.run`` against the worker's own store (its *spool*,
  ``<data dir>/workers/<name>/spool.db``), exactly like a local run: the same executors,
  the same recorder envelope, the same transitions. The relay's watcher sees every entry.
- The token is read once and removed from the environment, so agents never inherit it.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from aura import __version__
from aura.contracts import RunSummary
from aura.errors import NotFound
from aura.remote.worker import model_servers
from aura.remote.worker.link import Link
from aura.remote.worker.policy import refusal
from aura.remote.worker.relay import Outgoing, Relay
from aura.rpc import (
    INVALID_PARAMS,
    NOT_FOUND,
    PROTOCOL_VERSION,
    REFUSED,
    UNAVAILABLE,
    RpcError,
    need,
    params_object,
)
from aura.service.run_options import RunOptions, WireError

__all__ = ["Worker"]

log = logging.getLogger("aura.worker")


class Worker:
    def __init__(self, url: str, name: str, token: str, *, home: Path,
                 labels: tuple[str, ...] = (), capacity: int = 1, allow_command: bool = False,
                 workdir: str | None = None, cafile: str | None = None,
                 executors: dict[str, str] | None = None) -> None:
        from aura.liveness import sweep_orphans
        from aura.store_sqlite import SQLiteStore

        self.name = name
        self.labels = labels
        self.capacity = capacity
        self.allow_command = allow_command
        self.workdir = workdir
        self.executors = executors if executors is not None else {}
        self.model_servers: dict[str, dict[str, Any]] = {}
        from aura.paths import private_dir

        private_dir(home)
        self.spool = SQLiteStore(home / "spool.db")
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self.relay = Relay(self.spool, home)
        self.link = Link(url, name, token, route=self.route, hello=self.hello,
                         running=lambda: sorted(self.tasks), on_up=self._on_up,
                         cafile=cafile, key_file=home / "worker.key")
        sweep_orphans(self.spool)  # rows of a dead worker process become failed/orphaned
        self.relay.recover()

    async def run(self) -> None:
        """Connect, serve, reconnect with backoff; returns only on a fatal refusal."""
        self.model_servers = await model_servers.probe()
        await self.link.run()

    def hello(self) -> dict[str, Any]:
        return {"protocol": PROTOCOL_VERSION, "version": __version__, "name": self.name,
                "labels": list(self.labels), "capacity": self.capacity,
                "executors": self.executors, "running": sorted(self.tasks),
                "relaying": self.relay.describe(), "model_servers": self.model_servers}

    async def _on_up(self, peer: Any, hello: dict[str, Any]) -> None:
        self.relay.connected(hello.get("acked") or {},
                             int(hello.get("max_message", self.relay.max_message)))
        probing = asyncio.create_task(self._probe_every(peer, model_servers.PROBE_EVERY))
        try:
            await self.relay.run(peer)
        finally:
            probing.cancel()

    async def _probe_every(self, peer: Any, interval: float) -> None:
        """Tell the coordinator when what the model servers answer changes."""
        while True:
            await asyncio.sleep(interval)
            found = await model_servers.probe()
            if found != self.model_servers:
                self.model_servers = found
                peer.notify("worker.models", {"model_servers": found})

    # methods the coordinator calls --------------------------------------------------------------

    def route(self, method: str) -> Any:
        handlers = {"execution.start": self.m_execution_start,
                    "execution.interrupt": self.m_execution_interrupt,
                    "execution.ack": self.relay.on_ack,
                    "models.list": model_servers.listing,
                    "approvals.answer": self.m_approvals_answer,
                    "worker.lease_expired": self.m_lease_expired}
        handler = handlers.get(method)
        if handler is None:
            return None
        return lambda params: handler(params_object(params))

    def m_lease_expired(self, params: dict[str, Any]) -> None:
        log.warning("the coordinator declared %s worker_lost (%s); they keep running and "
                    "their output is still relayed",
                    ", ".join(e[:8] for e in params.get("executions", [])) or "nothing",
                    params.get("reason", ""))

    async def m_execution_interrupt(self, params: dict[str, Any]) -> dict[str, Any]:
        execution_id = need(params, "execution")
        task = self.tasks.get(execution_id)
        if task is None:
            raise RpcError(NOT_FOUND, f"execution {execution_id} is not running here")
        task.cancel()
        log.info("execution %s interrupted", execution_id[:8])
        return {"interrupted": execution_id}

    def m_approvals_answer(self, params: dict[str, Any]) -> dict[str, Any]:
        """An answer a person gave through the coordinator: it goes through the spool like
        a local `aura approve`, so the first answer wins whichever way it came (a later
        one is refused with ApprovalClosed, exit code 3 in the error's data)."""
        from aura.remote.answers import MALFORMED_TEXTS, answer_params
        from aura.service.approvals import answer

        approval_id, session_id, execution_id = (need(params, k) for k in (
            "approval", "session", "execution"))
        choice, message, by = answer_params(params)
        if by is None:  # the coordinator always says who answered
            raise RpcError(INVALID_PARAMS, MALFORMED_TEXTS)
        try:
            approval = self.spool.get_approval(approval_id)
        except NotFound:
            approval = None
        if approval is None or approval.id != approval_id or \
                (approval.session, approval.execution) != (session_id, execution_id):
            raise RpcError(NOT_FOUND, f"no approval request {approval_id[:40]!r} of that run "
                           "here")
        done = answer(self.spool, approval.id, choice, by=by, message=message or None)
        log.info("approval %s answered through the coordinator: %s by %s", approval.id[:8],
                 done.state, by)
        return done.to_json()

    async def m_execution_start(self, params: dict[str, Any]) -> dict[str, Any]:
        if len(self.tasks) >= self.capacity:
            raise RpcError(UNAVAILABLE, f"worker {self.name} is at capacity "
                           f"({self.capacity} running)")
        snapshot = params.get("session")
        options = self.options(params_object(params.get("options")), snapshot is not None)
        busy = {self.relay.outgoing[r].session for r in self.tasks if r in self.relay.outgoing}
        if options.session in busy:
            raise RpcError(UNAVAILABLE, f"worker {self.name} is still running an earlier "
                           f"run of session {str(options.session)[:8]}; interrupt it or wait")
        if isinstance(snapshot, dict):
            await self.relay.import_session(snapshot, self.link.peer)
        out = await self._start(options)
        log.info("execution %s (session %s) started: %s", out.execution[:8], out.session[:8],
                 options.executor)
        return {"session": out.session, "execution": out.execution,
                "snapshot": self.relay.snapshot(out)}

    def options(self, data: dict[str, Any], follow_up: bool) -> RunOptions:
        """RunOptions from the wire, refusing what this worker's policy does not allow."""
        try:
            options = RunOptions.from_wire(data, follow_up=follow_up, default_cwd=self.workdir)
        except WireError as exc:
            raise RpcError(INVALID_PARAMS, str(exc)) from None
        refused = refusal(options, worker=self.name, offered=self.executors,
                          allow_command=self.allow_command)
        if refused:
            raise RpcError(REFUSED, refused)
        return options

    async def _start(self, options: RunOptions) -> Outgoing:
        """Start the run; returns once it recorded its first entries (its handle)."""
        from aura.service.runner import run

        first: asyncio.Future[Outgoing] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(run(options, self.spool, self.relay.watcher(first)))
        both: list[asyncio.Future[Any]] = [first, task]
        await asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED)
        if not first.done():
            first.cancel()
            exc = task.exception()
            if exc is not None:
                raise exc
            raise RpcError(UNAVAILABLE, "the run ended before it recorded anything")
        out = first.result()
        self.tasks[out.execution] = task
        task.add_done_callback(lambda t: self._ended(out, t))
        self.relay.save()
        return out

    def _ended(self, out: Outgoing, task: asyncio.Task[Any]) -> None:
        self.tasks.pop(out.execution, None)
        exc = None if task.cancelled() else task.exception()
        if task.cancelled():
            summary = RunSummary(out.session, out.execution, "cancelled", 130,
                                 error="cancelled")
        elif exc is not None:
            summary = RunSummary(out.session, out.execution, "failed", 1,
                                 error=f"{type(exc).__name__}: {exc}")
        else:
            summary = task.result().summary()
        log.info("execution %s ended: %s", out.execution[:8], summary.state)
        self.relay.finish(out, summary.to_json())

    # shutdown -------------------------------------------------------------------------------

    async def drain(self, timeout: float) -> None:
        """Stop the agents (recorded as cancelled) and give the relay time to deliver."""
        log.info("stopping: %d run(s) to cancel, %d to deliver (again to quit at once)",
                 len(self.tasks), len(self.relay.outgoing))
        for task in list(self.tasks.values()):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks.values()), timeout=timeout)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.relay.outgoing and loop.time() < deadline:
            await asyncio.sleep(0.05)

    def close(self) -> None:
        self.spool.close()
