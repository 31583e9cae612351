"""The coordinator (`aura serve`): wires the worker registry, the run table, the store's
mirror of what workers report and the followers' feeds, and routes each method to them.

What it guarantees:

- Entries a worker relays (``execution.log``) are stored with insert-or-ignore on
  (session, seq), then acknowledged with ``execution.ack`` carrying the highest stored seq,
  so a batch sent twice (after a reconnect) is stored once, and nothing unacknowledged is
  dropped by the worker. One writer thread commits them (the store's appender).
- Sessions, executions and transitions mirror the worker's own records
  (``execution.state`` snapshots), so `aura session show ID` on the coordinator shows the
  same history as a local run. A final state never goes back to running.
- A worker silent for ``offline_after`` seconds is offline; its running executions become
  ``worker_lost`` (recorded with the reason) and stay so. What the worker reports after it
  comes back (entries, its outcome) is still stored under that execution.
- On restart, executions still running in the store wait ``offline_after`` seconds for
  their worker to say hello again before they are declared lost.
- Approval requests of remote runs are rows made from the relayed entries; an answer is
  forwarded to the run's worker, and a run that ends or is lost leaves its pending
  requests lost (approvals.py).

docs/protocol.md documents every method; server.py holds the sockets and the token check.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from aura import __version__
from aura.contracts import RunSummary
from aura.rpc import (
    HELLO_REQUIRED,
    NOT_FOUND,
    PROTOCOL_VERSION,
    UNAVAILABLE,
    VERSION_MISMATCH,
    ConnectionLost,
    RpcError,
    need,
    notification_raw,
    params_object,
)
from aura.rpc_codec import NOT_OWNER
from aura.store import Store

from .approvals import RemoteApprovals
from .feed import Feeds
from .guard import Guard
from .identity import Identities
from .mirror import LOST, RUNNING, Mirror
from .queries import Queries
from .registry import Link, Registry, WorkerState, model_servers_of
from .relay import Relay
from .runs import Run, RunTable

log = logging.getLogger("aura.coordinator")

HEARTBEAT_INTERVAL = 5.0
OFFLINE_AFTER = 15.0
MAX_MESSAGE = 16 << 20

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

WORKER_METHODS = frozenset({"worker.heartbeat", "worker.models", "execution.log",
                            "execution.state", "session.entries"})
CLIENT_METHODS = frozenset({"run.start", "execution.interrupt", "session.follow",
                            "session.get", "session.list", "session.entries",
                            "workers.list", "models.list", "workers.revoke",
                            "approvals.list", "approvals.answer"})
QUERIES = frozenset({"session.get", "session.list", "session.entries", "workers.list"})
RELAY = frozenset({"execution.log", "execution.state"})
APPROVALS = frozenset({"approvals.list", "approvals.answer"})

Handler = Callable[[Any], Any]


class Caller(Link, Protocol):
    """One connection as the coordinator sees it (server.Connection)."""

    role: str | None
    remote: str

    @property
    def backlog(self) -> int: ...

    def send_text(self, text: str) -> None: ...


def _refuse_before_hello(_params: Any) -> Any:
    raise RpcError(HELLO_REQUIRED, "say worker.hello or client.hello first")


class Coordinator:
    def __init__(self, store: Store, token: str, *,
                 heartbeat_interval: float = HEARTBEAT_INTERVAL,
                 offline_after: float = OFFLINE_AFTER,
                 max_message: int = MAX_MESSAGE) -> None:
        self.store = store
        self.token = token.encode()
        self.heartbeat_interval = heartbeat_interval
        self.offline_after = offline_after
        self.max_message = max_message
        self.registry = Registry()
        self.identities = Identities(store)
        self.runs = RunTable()
        self.mirror = Mirror(store)
        self.feeds = Feeds(store)
        self.queries = Queries(store, self.registry, self.identities)
        self.writer = store.appender(None)
        self.approvals = RemoteApprovals(store, self.mirror, self.runs, self.registry)
        self.relay = Relay(store, self.writer, runs=self.runs, feeds=self.feeds,
                           mirror=self.mirror, registry=self.registry, finish=self._finish,
                           guard=Guard(), max_entry=max_message,
                           approvals=self.approvals.relayed)
        self._adopt_running()

    def _adopt_running(self) -> None:
        """Executions left running by a previous coordinator wait for their worker."""
        for execution in self.store.running_executions():
            if execution.host == "local":
                continue
            self.registry.known(execution.host).running.add(execution.id)
            self.runs.start(execution.id, execution.session, execution.host)
            log.info("execution %s on %s was running; waiting %g s for the worker",
                     execution.id[:8], execution.host, self.offline_after)

    def route(self, conn: Caller, method: str) -> Handler | None:
        if method == "worker.hello":
            return lambda p: self.worker_hello(conn, params_object(p))
        if method == "client.hello":
            return lambda p: self.client_hello(conn, params_object(p))
        allowed = (WORKER_METHODS if conn.role == "worker" else
                   CLIENT_METHODS if conn.role == "client" else None)
        if allowed is None:
            return _refuse_before_hello if method in WORKER_METHODS | CLIENT_METHODS else None
        if method not in allowed:
            return None
        target = self.queries if method in QUERIES else \
            self.relay if method in RELAY else \
            self.approvals if method in APPROVALS else self
        handler = getattr(target, "m_" + method.replace(".", "_"))
        return lambda p: handler(conn, params_object(p))

    def disconnected(self, conn: Caller) -> bool:
        """Forget a closed connection; whether it was a worker's current line."""
        self.feeds.leave(conn)
        return self.registry.disconnected(conn)

    # hello ------------------------------------------------------------------------------

    def _check_protocol(self, conn: Caller, params: dict[str, Any], who: str) -> None:
        theirs = params.get("protocol")
        if theirs == PROTOCOL_VERSION:
            return
        message = (f"protocol version mismatch: this coordinator speaks aura protocol "
                   f"{PROTOCOL_VERSION} (aura {__version__}), the {who} speaks {theirs!r} "
                   f"(aura {params.get('version', '?')}); run the same aura version on both")
        log.warning("refused %s from %s: %s", who, conn.remote, message)
        raise RpcError(VERSION_MISMATCH, message,
                       {"protocol": PROTOCOL_VERSION, "version": __version__})

    def client_hello(self, conn: Caller, params: dict[str, Any]) -> dict[str, Any]:
        self._check_protocol(conn, params, "client")
        conn.role = "client"
        return {"protocol": PROTOCOL_VERSION, "version": __version__,
                "max_message": self.max_message}

    def worker_hello(self, conn: Caller, params: dict[str, Any]) -> dict[str, Any]:
        self._check_protocol(conn, params, "worker")
        identity, key = self.identities.prove(self.registry.name_of(params),
                                              params.get("key"), conn.remote)
        worker = self.registry.hello(conn, params, identity)
        conn.role = "worker"
        acked, lost = self._take_relaying(worker, params.get("relaying") or [])
        running = params.get("running") or []
        known = set(acked) | {r for r in running if isinstance(r, str)}
        forgotten = {r for r in worker.running if r not in known}
        if forgotten:
            # Back within the offline window but without these runs (its data dir was
            # lost?): they will never report, so they are lost now rather than never.
            self._lose(worker, forgotten, f"worker {worker.name} came back without this run")
        log.info("worker %s online from %s (identity %s, aura %s, labels %s, capacity %d, "
                 "executors %s)", worker.name, conn.remote, identity, worker.version,
                 ",".join(worker.labels) or "-", worker.capacity,
                 ",".join(sorted(worker.executors)) or "-")
        if lost:
            conn.peer.notify("worker.lease_expired", {
                "executions": lost,
                "reason": "the coordinator declared them worker_lost while this worker was "
                          "silent; what they produced is still stored under that state"})
        answer = {"protocol": PROTOCOL_VERSION, "version": __version__,
                  "heartbeat_interval": self.heartbeat_interval,
                  "offline_after": self.offline_after, "max_message": self.max_message,
                  "acked": acked, "identity": identity}
        if key is not None:
            answer["key"] = key  # enrolled now: the worker keeps it and proves it next time
        return answer

    def _take_relaying(self, worker: WorkerState, relaying: Any
                       ) -> tuple[dict[str, int], list[str]]:
        """The runs a worker is still relaying: the highest stored seq of each, and those
        this coordinator declared lost meanwhile."""
        acked: dict[str, int] = {}
        lost: list[str] = []
        for item in relaying if isinstance(relaying, list) else []:
            if not isinstance(item, dict):
                continue
            execution_id, session_id = item.get("execution"), item.get("session")
            if not isinstance(execution_id, str) or not isinstance(session_id, str):
                continue
            if self.mirror.owner(session_id, execution_id) != worker.name:
                log.warning("worker %s claims to relay execution %s of session %s, which "
                            "was not given to it; ignored", worker.name,
                            execution_id[:40], session_id[:40])
                continue
            acked[execution_id] = self.store.last_seq(session_id)
            self.feeds.resume(session_id, acked[execution_id])
            run = self.runs.note(execution_id, session_id)
            run.worker = run.owner = worker.name
            status = self.mirror.status(session_id, execution_id)
            if status == LOST:
                lost.append(execution_id)
                if self.relay.superseded(run):
                    self.relay.note_dropped(run)
            elif status == RUNNING:
                worker.running.add(execution_id)
                run.running = True
        return acked, lost

    # liveness ---------------------------------------------------------------------------

    async def watch(self) -> None:
        """Declare silent workers offline and their running executions lost."""
        # Scanning even thousands of workers is cheap; a short tick keeps detection within
        # a quarter second of the offline_after mark.
        tick = max(0.05, min(0.25, self.offline_after / 20))
        while True:
            await asyncio.sleep(tick)
            self.check_liveness(time.monotonic())

    def check_liveness(self, now: float) -> None:
        for worker in self.registry.silent(now, self.offline_after):
            self._lose(worker)

    def _lose(self, worker: WorkerState, runs: set[str] | None = None,
              reason: str | None = None) -> None:
        """Declare runs of this worker (all of its running ones by default) lost."""
        reason = reason or f"worker {worker.name} silent for {self.offline_after:g} s"
        runs = set(worker.running) if runs is None else runs
        for run_id in sorted(runs):
            run = self.runs.get(run_id)
            if run is None or not run.running:
                continue
            summary = self.mirror.mark_lost(run.session, run_id, worker.name, reason)
            if summary is None:
                continue
            log.warning("run %s (session %s) on %s: worker_lost", run_id[:8],
                        run.session[:8], worker.name)
            self._finish(run, summary)
        worker.running -= runs

    def _finish(self, run: Run, summary: RunSummary) -> None:
        self.runs.finish(run.execution, run.session, summary)
        # What its agent still waited on cannot be answered any more.
        self.approvals.lose(run.session, summary.error if summary.state == LOST and
                            summary.error else f"the run ended ({summary.state})")
        self.feeds.send(run.session, notification_raw("execution.finished", _encode(
            {"session": run.session, "execution": run.execution,
             "summary": summary.to_json()})))

    # worker methods ---------------------------------------------------------------------

    def m_worker_heartbeat(self, conn: Caller, params: dict[str, Any]) -> dict[str, Any]:
        if conn.worker is not None:
            self.registry.heartbeat(conn.worker)
        return {"ok": True}

    def m_worker_models(self, conn: Caller, params: dict[str, Any]) -> None:
        worker = self.registry.get(conn.worker or "")
        if worker is not None:
            worker.model_servers = model_servers_of(params.get("model_servers"))

    def m_workers_revoke(self, conn: Caller, params: dict[str, Any]) -> dict[str, Any]:
        name = need(params, "name")
        re_enroll = params.get("re_enroll") is True
        record = self.identities.revoke(name, re_enroll=re_enroll)
        self.registry.cut_off(name, "revoked")
        worker = self.registry.known(name)
        worker.revoked = not re_enroll
        return {"name": name, "revoked_at": record["revoked_at"], "re_enroll": re_enroll}

    # client methods ---------------------------------------------------------------------

    async def m_models_list(self, conn: Caller, params: dict[str, Any]) -> Any:
        """`aura models --on NAME`: the worker lists its model servers' models."""
        name = need(params, "on")
        worker = self.registry.get(name)
        if worker is None or worker.conn is None:
            raise RpcError(NOT_FOUND if worker is None else UNAVAILABLE,
                           f"worker {name} is not connected; see `aura workers`")
        asked = {k: params[k] for k in ("executor", "endpoint", "refresh") if k in params}
        try:
            return await worker.conn.peer.request("models.list", asked, timeout=60)
        except (ConnectionLost, TimeoutError):
            raise RpcError(UNAVAILABLE, f"worker {name} did not answer; see "
                           "`aura workers`") from None

    async def m_run_start(self, conn: Caller, params: dict[str, Any]) -> dict[str, Any]:
        from aura.executors import registry as executors

        on = need(params, "on")
        options = dict(params_object(params.get("options")))
        snapshot: dict[str, Any] | None = None
        after, executor = 0, options.get("executor")
        if options.get("session"):
            session, snapshot = self.mirror.follow_up(str(options["session"]))
            options["session"], after = session.id, snapshot["last_seq"]
            executor = executor or session.executor
        options["executor"] = executor = executors.canonical(
            str(executor or executors.DEFAULT_EXECUTOR))
        worker = self.registry.pick(on, executor)
        try:
            reply = await self._start_on(worker, options, snapshot)
            session_id, execution_id = self._started(worker, reply, options)
        finally:
            self.relay.release(worker.name)
        log.info("execution %s (session %s) started on %s", execution_id[:8],
                 session_id[:8], worker.name)
        self._follow(conn, session_id, after, execution_id)
        return {"session": session_id, "execution": execution_id, "worker": worker.name}

    def _started(self, worker: WorkerState, reply: dict[str, Any], options: dict[str, Any]
                 ) -> tuple[str, str]:
        """Record the run a worker says it started: its session and execution ids."""
        session_id = self.mirror.start(worker.name, reply["snapshot"], options,
                                       options.get("session"))
        execution_id = reply.get("execution")
        if not isinstance(execution_id, str) or \
                self.mirror.owner(session_id, execution_id) != worker.name or \
                self.runs.get(execution_id) is not None:
            log.warning("worker %s answered execution.start with execution %r, not a new "
                        "run of session %s on it", worker.name, execution_id, session_id[:8])
            raise RpcError(NOT_OWNER, f"worker {worker.name} gave a malformed answer")
        if self.runs.start(execution_id, session_id, worker.name).running:
            worker.running.add(execution_id)
        return session_id, execution_id

    async def _start_on(self, worker: WorkerState, options: dict[str, Any],
                        snapshot: dict[str, Any] | None) -> dict[str, Any]:
        assert worker.conn is not None
        worker.reserved += 1
        try:
            reply = await worker.conn.peer.request(
                "execution.start", {"options": options, "session": snapshot}, timeout=120)
        except ConnectionLost:
            raise RpcError(UNAVAILABLE, f"worker {worker.name} went away before the run "
                           "started; try again") from None
        except TimeoutError:
            raise RpcError(UNAVAILABLE, f"worker {worker.name} did not answer within 120 s; "
                           "see `aura workers`") from None
        finally:
            worker.reserved -= 1
        if not isinstance(reply, dict) or not isinstance(reply.get("snapshot"), dict):
            raise RpcError(UNAVAILABLE, f"worker {worker.name} gave a malformed answer")
        return reply

    def _follow(self, conn: Caller, session_id: str, after: int,
                execution_id: str | None) -> None:
        """Feed the session to ``conn``; tell it at once if the run has already ended."""
        self.feeds.follow(conn, session_id, after)
        if execution_id is None:
            return
        run = self.runs.get(execution_id)
        summary = run.summary if run is not None else None
        if summary is None and (run is None or not run.running):
            # Ended before this coordinator started (or long ago): rebuild from rows.
            summary = self.mirror.ended_summary(session_id, execution_id)
        if summary is not None:
            conn.peer.notify("execution.finished",
                             {"session": session_id, "execution": execution_id,
                              "summary": summary.to_json()})

    async def m_execution_interrupt(self, conn: Caller, params: dict[str, Any]
                                    ) -> dict[str, Any]:
        execution_id = need(params, "execution")
        run = self.runs.get(execution_id)
        if run is None or run.worker is None:
            raise RpcError(NOT_FOUND, f"no running execution {execution_id!r}")
        worker = self.registry.get(run.worker)
        if worker is None or worker.conn is None:
            raise RpcError(UNAVAILABLE, f"worker {run.worker} is not connected; it will be "
                           "declared lost if it stays silent")
        await worker.conn.peer.request("execution.interrupt", {"execution": execution_id},
                                       timeout=30)
        return {"interrupted": execution_id}

    def m_session_follow(self, conn: Caller, params: dict[str, Any]) -> dict[str, Any]:
        session = self.store.get_session(need(params, "session"))
        after = params.get("after_seq", 0)
        execution_id = params.get("execution")
        self._follow(conn, session.id, after if isinstance(after, int) else 0,
                     execution_id if isinstance(execution_id, str) else None)
        return {"session": session.id}
