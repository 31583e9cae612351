"""The coordinator (`aura serve`): the registry of workers, dispatch of runs, and the store.

Workers dial in and say ``worker.hello``; clients (`aura run --on`, `aura workers`,
`aura session show --coordinator`) say ``client.hello``. Every connection must present the
shared token in its HTTP ``Authorization: Bearer`` header before the WebSocket opens
(compared with ``hmac.compare_digest``); a missing or wrong token is refused with HTTP 401
and logged, and no method runs.

What the coordinator guarantees:

- Entries a worker relays (``execution.log``) are stored with insert-or-ignore on
  (session, seq), then acknowledged with ``execution.ack`` carrying the highest stored seq,
  so a batch sent twice (after a reconnect) is stored once, and nothing unacknowledged is
  dropped by the worker.
- Sessions, executions and transitions mirror the worker's own records
  (``execution.state`` snapshots), so `aura session show ID` on the coordinator shows the
  same history as a local run. A final state never goes back to running.
- A worker silent for ``offline_after`` seconds is offline; its running executions become
  ``worker_lost`` (recorded with the reason) and stay so. What the worker reports after it
  comes back (entries, its outcome) is still stored under that execution.
- On restart, executions still running in the store wait ``offline_after`` seconds for
  their worker to say hello again before they are declared lost.

docs/protocol.md documents every method.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from aura import __version__, engine
from aura.contracts import (
    EntryKind,
    Execution,
    ExecutionStatus,
    Session,
    State,
    Transition,
    WorkerInfo,
)
from aura.errors import NotFound
from aura.recorder import utc_now
from aura.rpc import (
    HELLO_REQUIRED,
    INVALID_PARAMS,
    NOT_FOUND,
    PROTOCOL_VERSION,
    UNAVAILABLE,
    VERSION_MISMATCH,
    ConnectionLost,
    Peer,
    RpcError,
    entries_message,
    need,
    notification_raw,
    params_object,
    seq_of,
)
from aura.store import EntryRow, Store

log = logging.getLogger("aura.coordinator")

DEFAULT_PORT = 8765
HEARTBEAT_INTERVAL = 5.0
OFFLINE_AFTER = 15.0
MAX_MESSAGE = 16 << 20
PAGE_BYTES = 4 << 20  # entries per session.entries page stay well under any message limit
WORKER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

WORKER_METHODS = frozenset({"worker.heartbeat", "execution.log", "execution.state",
                            "session.entries"})
CLIENT_METHODS = frozenset({"run.start", "execution.interrupt", "session.follow",
                            "session.get", "session.list", "session.entries",
                            "workers.list"})


@dataclass
class WorkerState:
    name: str
    version: str = ""
    labels: tuple[str, ...] = ()
    capacity: int = 1
    executors: dict[str, str] = field(default_factory=dict)
    conn: Connection | None = None
    last_seen: float = field(default_factory=time.monotonic)
    last_heartbeat: str | None = None
    online: bool = False
    running: set[str] = field(default_factory=set)
    reserved: int = 0  # runs being started (not yet in ``running``)

    @property
    def load(self) -> int:
        return len(self.running) + self.reserved

    def state(self) -> str:
        if not self.online:
            return "offline"
        return "online" if self.conn is not None else "reconnecting"

    def info(self) -> dict[str, Any]:
        data = WorkerInfo(name=self.name, version=self.version, labels=self.labels,
                          capacity=self.capacity, executors=dict(self.executors),
                          state=self.state(), running=len(self.running),
                          last_heartbeat=self.last_heartbeat).to_json()
        data["connected"] = self.conn is not None
        return data


class Connection:
    """One authenticated WebSocket: a worker or a client once it said hello."""

    def __init__(self, coordinator: Coordinator, ws: Any) -> None:
        self.coordinator = coordinator
        self.role: str | None = None
        self.worker: str | None = None
        self.remote = _address(ws)
        self.following: set[str] = set()  # sessions whose entries this client receives
        self.peer = Peer(ws, self.route, name=f"connection from {self.remote}",
                         on_message=self.seen, batches={"execution.log": self.log_batch})

    def log_batch(self, header: dict[str, Any], texts: list[str]) -> None:
        if self.role != "worker":
            raise RpcError(HELLO_REQUIRED, "execution.log is for workers after worker.hello")
        self.coordinator.log_batch(self, header, texts)

    def seen(self) -> None:
        # Any message from a worker is a sign of life, not only heartbeats.
        if self.worker is not None:
            state = self.coordinator.workers.get(self.worker)
            if state is not None and state.conn is self:
                state.last_seen = time.monotonic()

    def route(self, method: str) -> Callable[[dict[str, Any]], Any] | None:
        c = self.coordinator
        if method == "worker.hello":
            return lambda p: c.worker_hello(self, params_object(p))
        if method == "client.hello":
            return lambda p: c.client_hello(self, params_object(p))
        allowed = (WORKER_METHODS if self.role == "worker" else
                   CLIENT_METHODS if self.role == "client" else None)
        if allowed is None:
            if method in WORKER_METHODS | CLIENT_METHODS:
                return _refuse_before_hello
            return None
        if method not in allowed:
            return None
        handler = getattr(c, "m_" + method.replace(".", "_"))
        return lambda p: handler(self, params_object(p))


def _refuse_before_hello(_params: Any) -> Any:
    raise RpcError(HELLO_REQUIRED, "say worker.hello or client.hello first")


def _address(ws: Any) -> str:
    try:
        host, port = ws.remote_address[:2]
        return f"{host}:{port}"
    except Exception:
        return "?"


def summary_from_rows(session: Session, executions: list[Execution]) -> dict[str, Any]:
    """The `aura run --json` summary of a finished run, rebuilt from its rows (when the
    coordinator restarted after the run ended and a client asks)."""
    state = session.state
    last = executions[-1] if executions else None
    code = last.exit_code if last else None
    if state == State.CANCELLED.value:
        code = 130
    elif state == State.DONE.value:
        code = 0
    elif not code:
        code = 1
    return {"kind": EntryKind.SUMMARY.value, "session": session.id,
            "execution": last.id if last else None, "state": state, "exit_code": code,
            "native_session_id": session.native_session_id, "usage": {},
            "error": None if state == State.DONE.value else (last.reason if last else None)}


class Coordinator:
    def __init__(self, store: Store, token: str, *,
                 heartbeat_interval: float = HEARTBEAT_INTERVAL,
                 offline_after: float = OFFLINE_AFTER,
                 max_message: int = MAX_MESSAGE) -> None:
        self.store = store
        self._token = token.encode()
        self.heartbeat_interval = heartbeat_interval
        self.offline_after = offline_after
        self.max_message = max_message
        self.workers: dict[str, WorkerState] = {}
        self.exec_session: dict[str, str] = {}  # execution → session, for running ones
        self.exec_worker: dict[str, str] = {}
        self.finished: dict[str, dict[str, Any]] = {}  # execution → summary (recent)
        self.followers: dict[str, set[Connection]] = {}
        self.high_water: dict[str, int] = {}  # session → highest seq received and fanned out
        # Batches received and not yet committed, per session (a new follower gets them).
        self.inflight: dict[str, deque[list[str]]] = {}
        self.superseded: dict[str, bool] = {}  # lost runs whose session went on
        self.dropped: set[str] = set()
        path = getattr(store, "path", None)
        self.writer: EntryWriter | SyncWriter = \
            EntryWriter(path) if path is not None else SyncWriter(store)
        self._adopt_running()

    # startup ----------------------------------------------------------------------------

    def _adopt_running(self) -> None:
        """Executions left running by a previous coordinator wait for their worker."""
        for execution in self.store.running_executions():
            if execution.host == "local":
                continue
            worker = self.workers.setdefault(execution.host, WorkerState(execution.host))
            worker.running.add(execution.id)
            self.exec_session[execution.id] = execution.session
            self.exec_worker[execution.id] = execution.host
            log.info("execution %s on %s was running; waiting %g s for the worker",
                     execution.id[:8], execution.host, self.offline_after)

    # auth -------------------------------------------------------------------------------

    def check_token(self, header: str | None) -> str | None:
        """None when the Authorization header carries the token, else why not."""
        if not header:
            return "no token"
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            return "no token"
        if not hmac.compare_digest(given.strip().encode(), self._token):
            return "bad token"
        return None

    def process_request(self, connection: Any, request: Any) -> Any:
        why = self.check_token(request.headers.get("Authorization"))
        if why is None:
            return None
        log.warning("refused connection from %s: %s", _address(connection), why)
        from http import HTTPStatus

        return connection.respond(HTTPStatus.UNAUTHORIZED,
                                  f"aura: unauthorized ({why}); set AURA_TOKEN or "
                                  "--token-file to the coordinator's token\n")

    # connections ------------------------------------------------------------------------

    async def handle(self, ws: Any) -> None:
        conn = Connection(self, ws)
        log.info("connection from %s", conn.remote)
        try:
            await conn.peer.run()
        finally:
            sent = getattr(getattr(ws, "protocol", None), "close_sent", None)
            why = " (message too big)" if getattr(sent, "code", None) == 1009 else ""
            for session in conn.following:
                followers = self.followers.get(session)
                if followers is not None:
                    followers.discard(conn)
                    if not followers:
                        del self.followers[session]
            if conn.worker is not None:
                state = self.workers.get(conn.worker)
                if state is not None and state.conn is conn:
                    state.conn = None
                    log.info("worker %s disconnected%s", conn.worker, why)
            else:
                log.info("connection from %s closed%s", conn.remote, why)

    async def watch(self) -> None:
        """Declare silent workers offline and their running executions lost."""
        # Scanning even thousands of workers is cheap; a short tick keeps detection within
        # a quarter second of the offline_after mark.
        tick = max(0.05, min(0.25, self.offline_after / 20))
        while True:
            await asyncio.sleep(tick)
            self.check_liveness(time.monotonic())

    def check_liveness(self, now: float) -> None:
        for worker in list(self.workers.values()):
            if now - worker.last_seen <= self.offline_after:
                continue
            if worker.online:
                worker.online = False
                log.warning("worker %s offline: silent for %g s", worker.name,
                            self.offline_after)
                if worker.conn is not None:
                    # Connected but silent (hung, or a half-open line): drop it; the
                    # worker reconnects and resends what it has.
                    conn, worker.conn = worker.conn, None
                    conn.peer.notify("worker.lease_expired",
                                     {"executions": sorted(worker.running),
                                      "reason": f"silent for {self.offline_after:g} s"})
                    conn.peer.close_soon(4000, "heartbeat timeout")
            if worker.running:
                self._lose(worker)

    def _lose(self, worker: WorkerState, runs: set[str] | None = None,
              reason: str | None = None) -> None:
        """Declare runs of this worker (all of its running ones by default) lost."""
        reason = reason or f"worker {worker.name} silent for {self.offline_after:g} s"
        runs = set(worker.running) if runs is None else runs
        for run_id in sorted(runs):
            session_id = self.exec_session.get(run_id)
            if session_id is None:
                continue
            now = utc_now()
            try:
                session = self.store.get_session(session_id)
                running = [e for e in self.store.list_executions(session_id)
                           if e.status == ExecutionStatus.RUNNING.value
                           and e.host == worker.name]
            except NotFound:
                continue
            last = None
            for execution in running:
                last = self.store.update_execution(
                    execution.id, status=ExecutionStatus.WORKER_LOST.value, ended_at=now,
                    reason=reason)
            if engine.allowed(session.state, State.WORKER_LOST):
                self.store.record_transition(Transition(
                    session_id, session.state, State.WORKER_LOST.value, now, reason,
                    last.id if last else run_id))
                session = self.store.get_session(session_id)
            log.warning("run %s (session %s) on %s: worker_lost", run_id[:8],
                        session_id[:8], worker.name)
            summary = {"kind": EntryKind.SUMMARY.value, "session": session_id,
                       "execution": last.id if last else run_id,
                       "state": ExecutionStatus.WORKER_LOST.value, "exit_code": 1,
                       "native_session_id": session.native_session_id, "usage": {},
                       "error": reason}
            self._finish(run_id, session_id, summary)
        worker.running -= runs

    def _finish(self, execution_id: str, session_id: str, summary: dict[str, Any]) -> None:
        self.finished[execution_id] = summary
        if len(self.finished) > 10_000:
            self.finished.pop(next(iter(self.finished)))
        self.exec_session.pop(execution_id, None)
        self.exec_worker.pop(execution_id, None)
        self._fanout_text(session_id, notification_raw(
            "execution.finished", _encode({"session": session_id, "execution": execution_id,
                                           "summary": summary})))

    def _fanout_text(self, session_id: str, text: str) -> None:
        for conn in self.followers.get(session_id, ()):
            conn.peer.send_text(text)

    # hello ------------------------------------------------------------------------------

    def _check_protocol(self, conn: Connection, params: dict[str, Any], who: str) -> None:
        theirs = params.get("protocol")
        if theirs == PROTOCOL_VERSION:
            return
        message = (f"protocol version mismatch: this coordinator speaks aura protocol "
                   f"{PROTOCOL_VERSION} (aura {__version__}), the {who} speaks {theirs!r} "
                   f"(aura {params.get('version', '?')}); run the same aura version on both")
        log.warning("refused %s from %s: %s", who, conn.remote, message)
        raise RpcError(VERSION_MISMATCH, message,
                       {"protocol": PROTOCOL_VERSION, "version": __version__})

    def client_hello(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        self._check_protocol(conn, params, "client")
        conn.role = "client"
        return {"protocol": PROTOCOL_VERSION, "version": __version__,
                "max_message": self.max_message}

    def worker_hello(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        self._check_protocol(conn, params, "worker")
        name = need(params, "name")
        if not WORKER_NAME.match(name) or name == "local":
            raise RpcError(INVALID_PARAMS, f"invalid worker name {name!r}: use letters, "
                           "digits, '.', '_' or '-' (and not 'local')")
        labels = params.get("labels") or []
        capacity = params.get("capacity", 1)
        executors = params.get("executors") or {}
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels) or \
                not isinstance(capacity, int) or capacity < 1 or \
                not isinstance(executors, dict):
            raise RpcError(INVALID_PARAMS, "invalid params: labels (strings), capacity "
                           "(>= 1) and executors (object) are malformed")
        worker = self.workers.get(name) or WorkerState(name)
        self.workers[name] = worker
        if worker.conn is not None and worker.conn is not conn:
            # The same worker again: its old line is dead or half-open. Keep the newest.
            old = worker.conn
            old.worker = None
            old.peer.close_soon(4001, "replaced by a new connection")
        worker.version = str(params.get("version", ""))
        worker.labels = tuple(labels)
        worker.capacity = capacity
        worker.executors = {str(k): str(v) for k, v in executors.items()}
        worker.conn = conn
        worker.online = True
        worker.last_seen = time.monotonic()
        worker.last_heartbeat = utc_now()
        conn.role, conn.worker = "worker", name

        acked: dict[str, int] = {}
        lost: list[str] = []
        for item in params.get("relaying") or []:
            if not isinstance(item, dict):
                continue
            execution_id, session_id = item.get("execution"), item.get("session")
            if not isinstance(execution_id, str) or not isinstance(session_id, str):
                continue
            acked[execution_id] = self.store.last_seq(session_id)
            self.high_water.setdefault(session_id, acked[execution_id])
            self.exec_worker[execution_id] = name
            status = self._status(session_id, execution_id)
            if status == ExecutionStatus.WORKER_LOST.value:
                lost.append(execution_id)
                if self._superseded(session_id, execution_id):
                    self._note_dropped(execution_id, session_id)
            elif status == ExecutionStatus.RUNNING.value:
                worker.running.add(execution_id)
                self.exec_session[execution_id] = session_id
        running = params.get("running") or []
        known = set(acked) | {r for r in running if isinstance(r, str)}
        forgotten = {r for r in worker.running if r not in known}
        if forgotten:
            # Back within the offline window but without these runs (its data dir was
            # lost?): they will never report, so they are lost now rather than never.
            self._lose(worker, forgotten, f"worker {name} came back without this run")
        log.info("worker %s online from %s (aura %s, labels %s, capacity %d, executors %s)",
                 name, conn.remote, worker.version, ",".join(worker.labels) or "-",
                 capacity, ",".join(sorted(worker.executors)) or "-")
        if lost:
            conn.peer.notify("worker.lease_expired", {
                "executions": lost,
                "reason": "the coordinator declared them worker_lost while this worker was "
                          "silent; what they produced is still stored under that state"})
        return {"protocol": PROTOCOL_VERSION, "version": __version__,
                "heartbeat_interval": self.heartbeat_interval,
                "offline_after": self.offline_after, "max_message": self.max_message,
                "acked": acked}

    def _status(self, session_id: str, execution_id: str) -> str | None:
        try:
            executions = self.store.list_executions(session_id)
        except NotFound:
            return None
        for execution in executions:
            if execution.id == execution_id:
                return execution.status
        return None

    # worker methods ---------------------------------------------------------------------

    def m_worker_heartbeat(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        worker = self.workers[conn.worker or ""]
        worker.last_heartbeat = utc_now()
        worker.online = True
        return {"ok": True}

    def m_execution_log(self, conn: Connection, params: dict[str, Any]) -> None:
        """The general form: entries as JSON objects (any JSON-RPC client may send it)."""
        entries = need(params, "entries", list)
        if not all(isinstance(e, dict) for e in entries):
            raise RpcError(INVALID_PARAMS, "invalid params: entries must be objects")
        self.log_batch(conn, params, [_encode(e) for e in entries])

    def log_batch(self, conn: Connection, params: dict[str, Any], texts: list[str]) -> None:
        """execution.log with the entries as JSON texts (the fast path hands them over
        without decoding them)."""
        session_id = need(params, "session")
        execution_id = need(params, "execution")
        if not texts:
            return
        first = seq_of(texts[0])
        top = seq_of(texts[-1])
        if top - first + 1 == len(texts):
            seqs: Any = range(first, top + 1)  # a batch's seqs are consecutive
        else:
            seqs = [seq_of(t) for t in texts]
        top = max(seqs)
        if execution_id not in self.exec_session and self._superseded(session_id,
                                                                       execution_id):
            # A lost run whose session went on elsewhere: its tail would collide with the
            # follow-up's seqs. Acknowledge it so the worker lets go; it stays in its spool.
            self._note_dropped(execution_id, session_id)
            conn.peer.notify("execution.ack", {"execution": execution_id, "seq": top})
            return
        # Followers get the batch now; the worker's ack waits for the commit (until then
        # the worker keeps the batch and would resend it; clients drop seqs they have).
        high = self.high_water.get(session_id, 0)
        self.high_water[session_id] = max(high, top)
        if top > high and self.followers.get(session_id):
            fresh = texts if seqs[0] > high else [t for q, t in zip(seqs, texts, strict=True)
                                                   if q > high]
            self._fanout_text(session_id, _entries_message(session_id, fresh))
        inflight = self.inflight.setdefault(session_id, deque())
        inflight.append(texts)

        def stored(error: BaseException | None) -> None:
            inflight.popleft()
            if not inflight:
                self.inflight.pop(session_id, None)
            if error is not None:
                # Not acknowledged: the worker resends it after reconnecting.
                log.error("cannot store entries of session %s: %s", session_id[:8], error)
                conn.peer.close_soon(1011, "store error")
                return
            conn.peer.notify("execution.ack", {"execution": execution_id, "seq": top})

        # Rows carry (seq, execution, kind, body); the store keeps the bodies, which hold
        # every field (each entry names its own execution: a run has one per stage).
        self.writer.submit(session_id, [(q, execution_id, "", t)
                                        for q, t in zip(seqs, texts, strict=True)], stored)

    def _note_dropped(self, run_id: str, session_id: str) -> None:
        if run_id not in self.dropped:
            self.dropped.add(run_id)
            log.warning("dropping late entries of lost run %s: session %s went on with a "
                        "follow-up (they stay in the worker's spool)", run_id[:8],
                        session_id[:8])

    def _superseded(self, session_id: str, run_id: str) -> bool:
        """Whether ``run_id`` was declared worker_lost and its session has since gone on
        with another run (a transition out of worker_lost after the loss)."""
        cached = self.superseded.get(run_id)
        if cached:
            return True
        try:
            executions = self.store.list_executions(session_id)
        except NotFound:
            return False
        first = next((e for e in executions if e.id == run_id), None)
        if first is None or first.status != ExecutionStatus.WORKER_LOST.value:
            return False
        lost_at = first.ended_at or ""
        moved = any(t.src == State.WORKER_LOST.value and t.at >= lost_at
                    for t in self.store.transitions(session_id))
        if moved:
            self.superseded[run_id] = True
        return moved

    def m_execution_state(self, conn: Connection, params: dict[str, Any]) -> None:
        execution_id = need(params, "execution")
        snapshot = need(params, "snapshot", dict)
        final = bool(params.get("final"))
        summary = params.get("summary") if final else None
        if not final:
            self._apply(conn.worker or "?", snapshot)
            return
        session_id = need(params, "session")
        # The outcome is recorded once every entry before it is committed.
        self.writer.submit(session_id, [], lambda error: self._final(
            conn, execution_id, snapshot, summary, error))

    def _final(self, conn: Connection, execution_id: str, snapshot: dict[str, Any],
               summary: Any, error: BaseException | None) -> None:
        if error is not None:
            return
        try:
            session_id = self._apply(conn.worker or "?", snapshot, summary)
        except RpcError as exc:
            log.warning("worker %s sent a bad final state: %s", conn.worker, exc)
            return
        worker = self.workers.get(conn.worker or "")
        if worker is not None:
            worker.running.discard(execution_id)
        conn.peer.notify("execution.ack", {"execution": execution_id,
                                           "seq": self.store.last_seq(session_id),
                                           "final": True})
        if execution_id in self.finished:
            self.exec_worker.pop(execution_id, None)
            return  # already finished here (worker_lost): the late outcome is on the row
        if not isinstance(summary, dict):
            summary = {}
        summary = dict(summary, kind=EntryKind.SUMMARY.value, session=session_id)
        summary.setdefault("execution", execution_id)
        log.info("execution %s (session %s) on %s: %s", execution_id[:8], session_id[:8],
                 conn.worker, summary.get("state"))
        self._finish(execution_id, session_id, summary)

    def _apply(self, worker: str, snapshot: dict[str, Any],
               summary: dict[str, Any] | None = None) -> str:
        """Mirror a worker's session/execution/transitions; returns the session id."""
        try:
            session = Session.from_json(snapshot["session"])
            executions = [replace(Execution.from_json(session.id, e), host=worker, pid=None,
                                  pid_started=None) for e in snapshot.get("executions", [])]
            transitions = [Transition.from_json(session.id, t)
                           for t in snapshot.get("transitions", [])]
        except (KeyError, TypeError, ValueError):
            raise RpcError(INVALID_PARAMS, "invalid params: malformed snapshot") from None
        store = self.store
        try:
            state = store.get_session(session.id).state
        except NotFound:
            first = transitions[0] if transitions and transitions[0].src is None else None
            state = first.dst if first else session.state
            store.create_session(replace(session, state=state))
        existing = {e.id: e for e in store.list_executions(session.id)}
        for execution in executions:
            current = existing.get(execution.id)
            if current is None:
                store.create_execution(execution)
            elif current.status == ExecutionStatus.WORKER_LOST.value:
                # worker_lost stays; what the worker says happened is kept beside it.
                if execution.status != ExecutionStatus.RUNNING.value and \
                        "later reported" not in (current.reason or ""):
                    store.update_execution(
                        execution.id, exit_code=execution.exit_code,
                        reason=f"{current.reason}; the worker later reported: "
                               f"{execution.status} (exit {execution.exit_code})")
            elif current.status == ExecutionStatus.RUNNING.value:
                store.update_execution(execution.id, status=execution.status,
                                       exit_code=execution.exit_code,
                                       ended_at=execution.ended_at, reason=execution.reason,
                                       stage=execution.stage, executor=execution.executor)
        # Transitions apply in a chain from the coordinator's current state, so a worker's
        # moves made after the coordinator declared worker_lost (which start elsewhere)
        # are not applied: worker_lost stays final. A resent snapshot adds nothing.
        known = {(t.src, t.dst, t.at, t.execution) for t in store.transitions(session.id)}
        for t in transitions:
            key = (t.src, t.dst, t.at, t.execution)
            if key in known:
                continue
            if t.src != state and not (t.src is None and not known):
                continue
            store.record_transition(t)
            known.add(key)
            state = t.dst
        fields: dict[str, Any] = {"native_session_id": session.native_session_id,
                                  "model": session.model, "options": session.options}
        store.update_session(session.id, **{k: v for k, v in fields.items() if v is not None})
        return session.id

    # client methods ---------------------------------------------------------------------

    async def m_run_start(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        from aura.executors import registry

        on = need(params, "on")
        options = dict(params_object(params.get("options")))
        snapshot = None
        after = 0
        session: Session | None = None
        if options.get("session"):
            session = self.store.get_session(str(options["session"]))
            if any(e.status == ExecutionStatus.RUNNING.value
                   for e in self.store.list_executions(session.id)):
                raise RpcError(UNAVAILABLE, f"session {session.id[:8]} is still running; "
                               "wait for it or interrupt it first")
            options["session"] = session.id
            after = self.store.last_seq(session.id)
            snapshot = {"session": session.to_json(),
                        "transitions": [t.to_json() for t in self.store.transitions(session.id)],
                        "last_seq": after}
        executor = registry.canonical(str(options.get("executor") or
                                          (session.executor if session else
                                           registry.DEFAULT_EXECUTOR)))
        options["executor"] = executor
        worker = self._pick(on, executor)
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
        session_id = self._apply(worker.name, reply["snapshot"])
        execution_id = str(reply.get("execution"))
        if execution_id not in self.finished:
            worker.running.add(execution_id)
            self.exec_session[execution_id] = session_id
        self.exec_worker[execution_id] = worker.name
        log.info("execution %s (session %s) started on %s", execution_id[:8],
                 session_id[:8], worker.name)
        self._follow(conn, session_id, after, execution_id)
        return {"session": session_id, "execution": execution_id, "worker": worker.name}

    def _pick(self, on: str, executor: str) -> WorkerState:
        if on.startswith("label:"):
            label = on[len("label:"):]
            candidates = [w for w in self.workers.values()
                          if label in w.labels and w.online and w.conn is not None]
            what = f"with label {label!r}"
        else:
            worker = self.workers.get(on)
            if worker is None:
                known = ", ".join(sorted(self.workers)) or "none connected yet"
                raise RpcError(NOT_FOUND, f"no worker named {on!r} (workers: {known})")
            candidates = [worker] if worker.online and worker.conn is not None else []
            what = f"named {on!r}"
            if not candidates:
                raise RpcError(UNAVAILABLE, f"worker {on} is {worker.state()} (last "
                               f"heartbeat {worker.last_heartbeat or 'never'})")
        if not candidates:
            raise RpcError(UNAVAILABLE, f"no online worker {what}; see `aura workers`")
        able = [w for w in candidates if executor in w.executors]
        if not able:
            offers = ", ".join(sorted({n for w in candidates for n in w.executors})) or "none"
            hint = ("; the command executor needs `aura worker --allow-command`"
                    if executor == "custom" else "")
            raise RpcError(UNAVAILABLE, f"no worker {what} offers executor {executor} "
                           f"(offered: {offers}){hint}")
        free = [w for w in able if w.load < w.capacity]
        if not free:
            raise RpcError(UNAVAILABLE, f"every worker {what} is busy (at capacity); "
                           "try again later")
        return min(free, key=lambda w: (w.load / w.capacity, w.load, w.name))

    def _follow(self, conn: Connection, session_id: str, after: int,
                execution_id: str | None) -> None:
        """Send what is stored after ``after``, then everything new, in order.

        Nothing awaits between reading the store and joining the followers, so no batch
        can slip in between (the client drops any seq it already has)."""
        while True:
            page, more = self._page(session_id, after, 5000)
            if page:
                conn.peer.send_text(_entries_message(session_id, page))
                after = seq_of(page[-1])
            if not more:
                break
        for texts in self.inflight.get(session_id, ()):
            fresh = [t for t in texts if seq_of(t) > after]
            if fresh:
                conn.peer.send_text(_entries_message(session_id, fresh))
                after = seq_of(fresh[-1])
        self.followers.setdefault(session_id, set()).add(conn)
        conn.following.add(session_id)
        if execution_id is not None and execution_id in self.finished:
            conn.peer.notify("execution.finished",
                             {"session": session_id, "execution": execution_id,
                              "summary": self.finished[execution_id]})
        elif execution_id is not None and execution_id not in self.exec_session:
            # Finished before this coordinator started: rebuild the summary from rows.
            session = self.store.get_session(session_id)
            executions = self.store.list_executions(session_id)
            start = next((e.started_at for e in executions if e.id == execution_id), None)
            ours = [e for e in executions if start is not None and e.started_at >= start]
            if ours and State(session.state).is_final and \
                    all(e.status != ExecutionStatus.RUNNING.value for e in ours):
                conn.peer.notify("execution.finished",
                                 {"session": session_id, "execution": execution_id,
                                  "summary": summary_from_rows(session, ours)})

    def _page(self, session_id: str, after: int, limit: int) -> tuple[list[str], bool]:
        entries = self.store.entries(session_id, after, limit)
        texts: list[str] = []
        size = 0
        for item in entries:
            text = _encode(item)
            size += len(text)
            if texts and size > PAGE_BYTES:
                return texts, True
            texts.append(text)
        return texts, len(entries) == limit

    async def m_execution_interrupt(self, conn: Connection, params: dict[str, Any]
                                    ) -> dict[str, Any]:
        execution_id = need(params, "execution")
        name = self.exec_worker.get(execution_id)
        if name is None:
            raise RpcError(NOT_FOUND, f"no running execution {execution_id!r}")
        worker = self.workers.get(name)
        if worker is None or worker.conn is None:
            raise RpcError(UNAVAILABLE, f"worker {name} is not connected; it will be "
                           "declared lost if it stays silent")
        await worker.conn.peer.request("execution.interrupt", {"execution": execution_id},
                                       timeout=30)
        return {"interrupted": execution_id}

    def m_session_follow(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        session = self.store.get_session(need(params, "session"))
        after = params.get("after_seq", 0)
        execution_id = params.get("execution")
        self._follow(conn, session.id, after if isinstance(after, int) else 0,
                     execution_id if isinstance(execution_id, str) else None)
        return {"session": session.id}

    def m_session_get(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        from aura.store import session_summary

        session = self.store.get_session(need(params, "session"))
        data = session_summary(self.store, session)
        data["last_seq"] = self.store.last_seq(session.id)
        return data

    def m_session_list(self, conn: Connection, params: dict[str, Any]
                       ) -> list[dict[str, Any]]:
        from aura.executors import registry
        from aura.store import session_summary

        limit = params.get("limit", 20)
        executor = params.get("executor")
        if not isinstance(limit, int) or limit < 1 or \
                (executor is not None and not isinstance(executor, str)):
            raise RpcError(INVALID_PARAMS, "invalid params: limit (>= 1), executor (string)")
        if executor:
            executor = registry.canonical(executor)
        return [session_summary(self.store, s)
                for s in self.store.list_sessions(min(limit, 1000), executor=executor)]

    def m_session_entries(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        session = self.store.get_session(need(params, "session"))
        after = params.get("after_seq", 0)
        limit = params.get("limit", 5000)
        if not isinstance(after, int) or not isinstance(limit, int) or limit < 1:
            raise RpcError(INVALID_PARAMS, "invalid params: after_seq and limit are integers")
        texts, more = self._page(session.id, after, min(limit, 5000))
        return {"session": session.id, "entries": [json.loads(t) for t in texts],
                "more": more}

    def m_workers_list(self, conn: Connection, params: dict[str, Any]) -> list[dict[str, Any]]:
        return [w.info() for w in sorted(self.workers.values(), key=lambda w: w.name)]


StoredCallback = Callable[[BaseException | None], None]


class EntryWriter:
    """Commits relayed batches on a thread with its own connection, in arrival order, so
    SQLite's work (it releases the GIL) overlaps with the event loop; each batch's
    callback runs on the loop once it is committed (or failed)."""

    def __init__(self, path: Any) -> None:
        self.path = path
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="aura-entry-writer",
                                        daemon=True)
        self._started = False

    def submit(self, session_id: str, rows: Sequence[EntryRow],
               callback: StoredCallback) -> None:
        if not self._started:
            self._loop = asyncio.get_running_loop()
            self._thread.start()
            self._started = True
        self._queue.put((session_id, rows, callback))

    def _run(self) -> None:
        from aura.store_sqlite import SQLiteStore

        store = SQLiteStore(self.path)
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                session_id, rows, callback = item
                error: BaseException | None = None
                if rows:
                    try:
                        store.append_entries(session_id, rows)
                    except Exception as exc:
                        error = exc
                assert self._loop is not None
                try:
                    self._loop.call_soon_threadsafe(callback, error)
                except RuntimeError:  # the loop is closed: shutting down
                    return
        finally:
            store.close()

    def close(self) -> None:
        if self._started:
            self._queue.put(None)
            self._thread.join(10)


class SyncWriter:
    """The same for a store without a file (tests): commit at once, call back at once."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def submit(self, session_id: str, rows: Sequence[EntryRow],
               callback: StoredCallback) -> None:
        error: BaseException | None = None
        if rows:
            try:
                self.store.append_entries(session_id, rows)
            except Exception as exc:
                error = exc
        callback(error)

    def close(self) -> None:
        pass


def _entries_message(session_id: str, texts: list[str]) -> str:
    return entries_message("session.entries", {"session": session_id}, texts)


async def serve(coordinator: Coordinator, host: str, port: int, *, ssl_context: Any = None,
                ready: Callable[[str], None] | None = None) -> None:
    """Listen until cancelled."""
    from websockets.asyncio.server import serve as ws_serve

    server = await ws_serve(coordinator.handle, host, port,
                            process_request=coordinator.process_request,
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
