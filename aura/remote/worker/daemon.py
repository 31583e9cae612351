"""The worker (`aura worker`): dials out to a coordinator and runs executions it is given.

- It connects (no inbound port needed), says ``worker.hello`` (name, version, protocol,
  labels, capacity, the executors it found), and sends ``worker.heartbeat`` at the
  interval the coordinator asks for. When the line drops it reconnects with exponential
  backoff (jittered, capped) and keeps running its agents meanwhile.
- An execution runs through ``service.run`` against the worker's own store (its *spool*,
  ``<data dir>/workers/<name>/spool.db``), exactly like a local run: the same executors,
  the same recorder envelope, the same transitions. A watcher relays every entry.
- The relay is lossless: entries carry their seq; the coordinator acknowledges the highest
  seq it stored; the worker keeps everything unacknowledged in memory and resends it after
  a reconnect, starting after the seq the coordinator reports in the hello answer. Which
  executions still need relaying is kept in ``relay.json``, so after a worker restart the
  rest is read back from the spool (entries are flushed there within half a second).
- Policy: the worker only runs executors it offers. The command executor (``custom``), a
  ``--base-command`` and loader/PATH variables in ``--var`` run arbitrary programs, so they
  are refused unless the worker allows commands (``--allow-command`` or
  ``[worker] allow_command = true`` in its config).
- The token is read once and removed from the environment, so agents never inherit it.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import logging
import os
import random
from pathlib import Path
from typing import Any

from aura import __version__
from aura.contracts import Execution, Session, Transition
from aura.errors import AuraError, NotFound
from aura.recorder import encode
from aura.rpc import (
    INVALID_PARAMS,
    NOT_FOUND,
    PROTOCOL_VERSION,
    REFUSED,
    UNAVAILABLE,
    VERSION_MISMATCH,
    ConnectionLost,
    Peer,
    RpcError,
    Unauthorized,
    entries_message,
    need,
    params_object,
)

log = logging.getLogger("aura.worker")

BATCH_ENTRIES = 5000
BATCH_BYTES = 1 << 20
WINDOW = 100_000  # entries sent and not yet acknowledged, per execution
MAX_QUEUED = 16  # messages waiting in the connection's queue before the relay pauses
# Unacknowledged entries kept in memory per run; older ones are dropped from memory and read
# back from the spool when their turn comes. AURA_WORKER_MEMORY_CAP tunes it.
MEMORY_CAP = int(os.environ.get("AURA_WORKER_MEMORY_CAP", "200000"))
BACKOFF_FIRST = 0.2
BACKOFF_CAP = 5.0
# Variables that make any program run code of the caller's choosing.
RISKY_VARS = frozenset({"PATH", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "NODE_OPTIONS",
                        "NODE_PATH", "BASH_ENV", "ENV", "PERL5OPT", "RUBYOPT", "GIT_SSH",
                        "GIT_SSH_COMMAND", "SHELL"})


class Fatal(AuraError):
    """The coordinator refused this worker for a reason retrying will not fix."""


class Outgoing:
    """Entries of one execution not yet acknowledged by the coordinator."""

    def __init__(self, session: str, execution: str, started_at: str = "") -> None:
        self.session = session
        self.execution = execution  # the run's first execution: its handle on the wire
        self.started_at = started_at  # executions of this run started at or after this
        self.seqs: list[int] = []
        self.texts: list[str] = []
        self.sent = 0  # highest seq written on the current connection
        self.acked = 0
        self.snapshot_due = False
        self.final: dict[str, Any] | None = None  # the outcome, once the run ended
        self.final_sent = False
        self.from_spool = False  # after a restart: memory is empty, the spool has it
        self.spilled_upto = 0  # entries up to this seq are no longer in memory

    def prune(self, acked: int) -> None:
        k = bisect.bisect_right(self.seqs, acked)
        if k:
            del self.seqs[:k]
            del self.texts[:k]


class Worker:
    def __init__(self, url: str, name: str, token: str, *, home: Path,
                 labels: tuple[str, ...] = (), capacity: int = 1, allow_command: bool = False,
                 workdir: str | None = None, cafile: str | None = None,
                 executors: dict[str, str] | None = None) -> None:
        from aura.store_sqlite import SQLiteStore

        self.url = url
        self.name = name
        self._token = token
        self.labels = labels
        self.capacity = capacity
        self.allow_command = allow_command
        self.workdir = workdir
        self.cafile = cafile
        self.executors = executors if executors is not None else {}
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.spool = SQLiteStore(home / "spool.db")
        self.relay_path = home / "relay.json"
        self.outgoing: dict[str, Outgoing] = {}
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self.peer: Peer | None = None
        self.max_message = 16 << 20  # the coordinator's, from its hello answer
        self._wake = asyncio.Event()
        self._recover()

    # durable relay state ------------------------------------------------------------------

    def _recover(self) -> None:
        """Executions a previous worker process left unrelayed: resend from the spool."""
        from aura.liveness import sweep_orphans

        sweep_orphans(self.spool)  # rows of a dead worker process become failed/orphaned
        try:
            pending = json.loads(self.relay_path.read_text())
        except (OSError, ValueError):
            pending = {}
        for execution_id, item in pending.items():
            if not isinstance(item, dict):
                continue
            out = Outgoing(item["session"], execution_id, item.get("started_at", ""))
            out.from_spool = True
            executions = self._executions(out)
            if not executions:
                continue
            session = self.spool.get_session(out.session)
            last = executions[-1]
            summary = {"kind": "summary", "session": out.session, "execution": last.id,
                       "state": session.state, "exit_code": last.exit_code,
                       "error": None if session.state == "done" else
                       "the worker restarted while the run was going on"}
            session_id = out.session
            out.final = {"session": session_id, "execution": execution_id, "final": True,
                         "summary": summary}
            self.outgoing[execution_id] = out
            log.info("will resend what execution %s produced before the restart",
                     execution_id[:8])

    def _save_relay(self) -> None:
        data = {e: {"session": o.session, "started_at": o.started_at}
                for e, o in self.outgoing.items()}
        tmp = self.relay_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.relay_path)

    def _executions(self, out: Outgoing) -> list[Execution]:
        """The executions of this run (the pipeline makes one per stage)."""
        try:
            executions = self.spool.list_executions(out.session)
        except NotFound:
            return []
        return [e for e in executions if e.started_at >= out.started_at]

    def _snapshot(self, out: Outgoing) -> dict[str, Any]:
        session = self.spool.get_session(out.session)
        return {"session": session.to_json(),
                "executions": [e.to_json() for e in self._executions(out)],
                "transitions": [t.to_json() for t in self.spool.transitions(out.session)]}

    # connection loop ------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, serve, reconnect with backoff; returns only on a fatal refusal."""
        from aura.rpc import connect

        delay = BACKOFF_FIRST
        while True:
            try:
                ws = await connect(self.url, self._token, cafile=self.cafile)
            except Unauthorized as exc:
                raise Fatal(str(exc)) from None
            except (OSError, TimeoutError, AuraError, Exception) as exc:
                if isinstance(exc, asyncio.CancelledError):
                    raise
                log.warning("cannot reach %s (%s); retrying in %.1f s", self.url,
                            _why(exc), delay)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, BACKOFF_CAP)
                continue
            if await self._serve(ws):
                delay = BACKOFF_FIRST
            log.warning("connection to %s lost; reconnecting", self.url)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, BACKOFF_CAP)

    async def _serve(self, ws: Any) -> bool:
        """One connection: hello, resend, heartbeats, relay. True if hello succeeded."""
        peer = Peer(ws, self.route, name="coordinator")
        reader = asyncio.create_task(peer.run())
        helpers: list[asyncio.Task[Any]] = []
        try:
            try:
                hello = await peer.request("worker.hello", self._hello(), timeout=30)
            except RpcError as exc:
                if exc.code in (VERSION_MISMATCH, INVALID_PARAMS):
                    raise Fatal(f"the coordinator refused this worker: {exc.message}") from None
                raise
            if hello.get("protocol") != PROTOCOL_VERSION:
                raise Fatal(f"protocol version mismatch: the coordinator speaks aura protocol "
                            f"{hello.get('protocol')!r} (aura {hello.get('version', '?')}), "
                            f"this worker speaks {PROTOCOL_VERSION} (aura {__version__}); "
                            "run the same aura version on both")
            log.info("connected to %s as %s (coordinator aura %s)", self.url, self.name,
                     hello.get("version"))
            self.max_message = int(hello.get("max_message", self.max_message))
            acked = hello.get("acked") or {}
            for out in list(self.outgoing.values()):
                self._rewind(out, int(acked.get(out.execution, out.acked)))
            self.peer = peer
            interval = float(hello.get("heartbeat_interval", 5.0))
            timeout = float(hello.get("offline_after", 15.0))
            helpers = [asyncio.create_task(self._heartbeats(peer, interval, timeout)),
                       asyncio.create_task(self._relay(peer))]
            self._wake.set()
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
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    def _hello(self) -> dict[str, Any]:
        return {"protocol": PROTOCOL_VERSION, "version": __version__, "name": self.name,
                "labels": list(self.labels), "capacity": self.capacity,
                "executors": self.executors, "running": sorted(self.tasks),
                "relaying": [{"execution": o.execution, "session": o.session}
                             for o in self.outgoing.values()]}

    def _rewind(self, out: Outgoing, acked: int) -> None:
        """After (re)connecting: resend everything after what the coordinator stored."""
        out.acked = acked
        out.prune(acked)
        out.sent = acked
        out.final_sent = False
        out.snapshot_due = True
        if out.from_spool:
            out.spilled_upto = self.spool.last_seq(out.session)
            out.from_spool = False
        pending = len(out.seqs) + max(0, out.spilled_upto - acked)
        if pending:
            log.info("resending %d entries of execution %s after seq %d", pending,
                     out.execution[:8], acked)

    async def _heartbeats(self, peer: Peer, interval: float, timeout: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await peer.request("worker.heartbeat", {"running": sorted(self.tasks)},
                                   timeout=timeout)
            except TimeoutError:
                log.warning("no answer to a heartbeat in %g s; reconnecting", timeout)
                await peer.close(4002, "heartbeat unanswered")
                return
            except ConnectionLost:
                return

    async def _relay(self, peer: Peer) -> None:
        while not peer.closed.is_set():
            self._wake.clear()
            for out in list(self.outgoing.values()):
                self._pump(peer, out)
            await self._wake.wait()

    def _pump(self, peer: Peer, out: Outgoing) -> None:
        header = {"session": out.session, "execution": out.execution}
        if not self._pump_spool(peer, out, header):
            return
        seqs, texts = out.seqs, out.texts
        i = bisect.bisect_right(seqs, out.sent)
        limit = min(BATCH_BYTES, self.max_message - 4096)
        while i < len(seqs):
            if peer.queued >= MAX_QUEUED or out.sent - out.acked >= WINDOW:
                return  # an ack wakes us again
            j, size = i, 0
            end = min(len(seqs), i + BATCH_ENTRIES)
            while j < end and (j == i or size + len(texts[j]) < limit):
                size += len(texts[j]) + 1
                j += 1
            batch = texts[i:j]
            if len(batch) == 1 and len(batch[0]) > self.max_message - 4096:
                batch = [_too_big(batch[0])]
            peer.send_text(entries_message("execution.log", header, batch))
            out.sent = seqs[j - 1]
            i = j
        if out.snapshot_due:
            out.snapshot_due = False
            with contextlib.suppress(NotFound):
                peer.notify("execution.state", {"session": out.session,
                                                "execution": out.execution, "final": False,
                                                "snapshot": self._snapshot(out)})
        if out.final is not None and not out.final_sent:
            out.final_sent = True
            peer.notify("execution.state", dict(out.final, snapshot=self._snapshot(out)))

    def _pump_spool(self, peer: Peer, out: Outgoing, header: dict[str, Any]) -> bool:
        """Send what memory no longer holds (a restart, or more than MEMORY_CAP entries
        unacknowledged) from the spool. True once nothing of it is left to send."""
        ours: set[str] | None = None
        while out.spilled_upto > out.sent:
            if peer.queued >= MAX_QUEUED or out.sent - out.acked >= WINDOW:
                return False
            stored = [e for e in self.spool.entries(out.session, after_seq=out.sent,
                                                    limit=BATCH_ENTRIES)
                      if e["seq"] <= out.spilled_upto]
            if not stored:
                # Not written to the spool yet (it trails by a fraction of a second).
                asyncio.get_running_loop().call_later(0.5, self._wake.set)
                return False
            if ours is None:
                ours = {e.id for e in self._executions(out)}
            texts = [encode(e) for e in stored if e.get("execution") in ours]
            if texts:
                peer.send_text(entries_message("execution.log", header, texts))
            out.sent = stored[-1]["seq"]
        return True

    # methods the coordinator calls --------------------------------------------------------------

    def route(self, method: str) -> Any:
        handlers = {"execution.start": self.m_execution_start,
                    "execution.interrupt": self.m_execution_interrupt,
                    "execution.ack": self.m_execution_ack,
                    "worker.lease_expired": self.m_lease_expired}
        handler = handlers.get(method)
        if handler is None:
            return None
        return lambda params: handler(params_object(params))

    def m_execution_ack(self, params: dict[str, Any]) -> None:
        out = self.outgoing.get(str(params.get("execution")))
        seq = params.get("seq")
        if out is None or not isinstance(seq, int):
            return
        if seq > out.acked:
            out.acked = seq
            out.prune(seq)
        if params.get("final") and out.final_sent:
            del self.outgoing[out.execution]
            self._save_relay()
        self._wake.set()

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

    async def m_execution_start(self, params: dict[str, Any]) -> dict[str, Any]:
        from aura.service.runner import run

        if len(self.tasks) >= self.capacity:
            raise RpcError(UNAVAILABLE, f"worker {self.name} is at capacity "
                           f"({self.capacity} running)")
        snapshot = params.get("session")
        options = self._options(params_object(params.get("options")), snapshot is not None)
        busy = {self.outgoing[r].session for r in self.tasks if r in self.outgoing}
        if options.session in busy:
            raise RpcError(UNAVAILABLE, f"worker {self.name} is still running an earlier "
                           f"run of session {options.session[:8]}; interrupt it or wait")
        if isinstance(snapshot, dict):
            await self._import(snapshot)
        loop = asyncio.get_running_loop()
        first: asyncio.Future[Outgoing] = loop.create_future()
        task = asyncio.create_task(run(options, self.spool, self._watcher(first)))
        await asyncio.wait({first, task}, return_when=asyncio.FIRST_COMPLETED)
        if not first.done():
            first.cancel()
            exc = task.exception()
            if exc is not None:
                raise exc
            raise RpcError(UNAVAILABLE, "the run ended before it recorded anything")
        out = first.result()
        self.tasks[out.execution] = task
        task.add_done_callback(lambda t: self._ended(out, t))
        self._save_relay()
        log.info("execution %s (session %s) started: %s", out.execution[:8], out.session[:8],
                 options.executor)
        return {"session": out.session, "execution": out.execution,
                "snapshot": self._snapshot(out)}

    def _watcher(self, first: asyncio.Future[Outgoing]) -> Any:
        holder: list[Outgoing] = []

        def watcher(records: list[tuple[int, Any, str]]) -> None:
            # Called by the recorder for every batch; it must never raise (the recorder
            # would stop calling it).
            try:
                if not holder:
                    head = json.loads(records[0][2])
                    started = next((e.started_at for e in
                                    self.spool.list_executions(head["session"])
                                    if e.id == head["execution"]), "")
                    out = Outgoing(head["session"], head["execution"], started)
                    self.outgoing[out.execution] = out
                    holder.append(out)
                    if not first.done():
                        first.set_result(out)
                out = holder[0]
                for seq, entry, text in records:
                    out.seqs.append(seq)
                    out.texts.append(text)
                    if entry.get("kind") == "state":
                        out.snapshot_due = True
                if len(out.seqs) > MEMORY_CAP:
                    # The coordinator is away or slow: the oldest half stays in the spool
                    # only, and is read back from there when it is its turn.
                    k = len(out.seqs) // 2
                    out.spilled_upto = max(out.spilled_upto, out.seqs[k - 1])
                    del out.seqs[:k]
                    del out.texts[:k]
                self._wake.set()
            except Exception:
                log.exception("relay watcher failed")

        return watcher

    def _ended(self, out: Outgoing, task: asyncio.Task[Any]) -> None:
        self.tasks.pop(out.execution, None)
        if task.cancelled():
            summary = {"state": "cancelled", "exit_code": 130, "error": "cancelled"}
        elif task.exception() is not None:
            exc = task.exception()
            summary = {"state": "failed", "exit_code": 1,
                       "error": f"{type(exc).__name__}: {exc}"}
        else:
            summary = task.result().summary()
        log.info("execution %s ended: %s", out.execution[:8], summary.get("state"))
        out.final = {"session": out.session, "execution": out.execution, "final": True,
                     "summary": summary}
        self._wake.set()

    def _options(self, options: dict[str, Any], follow_up: bool) -> Any:
        """RunOptions from the wire, refusing what this worker's policy does not allow."""
        from aura.executors import registry
        from aura.executors.base import Approvals
        from aura.service.runner import RunOptions

        try:
            executor = registry.canonical(str(options.get("executor") or
                                              registry.DEFAULT_EXECUTOR))
        except AuraError as exc:
            raise RpcError(INVALID_PARAMS, str(exc)) from None
        if executor not in self.executors:
            raise RpcError(REFUSED, f"worker {self.name} does not offer executor {executor}"
                           + ("" if executor != "custom" else
                              " (the command executor needs `aura worker --allow-command`)"))
        prompt = need(options, "prompt")
        params = options.get("params") or []
        variables = options.get("vars") or {}
        approvals = options.get("approvals") or {}
        if not (isinstance(params, list) and all(isinstance(p, str) for p in params)) or \
                not (isinstance(variables, dict) and
                     all(isinstance(v, str) for v in variables.values())) or \
                not isinstance(approvals, dict):
            raise RpcError(INVALID_PARAMS, "invalid params: params (strings), vars "
                           "(string values), approvals (object)")
        strings = {}
        for key in ("repos", "setup", "cleanup"):
            value = options.get(key) or []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise RpcError(INVALID_PARAMS, f"invalid params: {key} must be strings")
            strings[key] = tuple(value)
        review_executor = options.get("review_executor")
        if review_executor:
            try:
                review_executor = registry.canonical(str(review_executor))
            except AuraError as exc:
                raise RpcError(INVALID_PARAMS, str(exc)) from None
            if review_executor not in self.executors:
                raise RpcError(REFUSED, f"worker {self.name} does not offer executor "
                               f"{review_executor} (for --review-executor)")
        if not self.allow_command:
            if strings["setup"] or strings["cleanup"]:
                raise RpcError(REFUSED, f"worker {self.name} refuses --setup/--cleanup (they "
                               "run arbitrary commands); start the worker with "
                               "--allow-command")
            if options.get("base_command"):
                raise RpcError(REFUSED, f"worker {self.name} refuses --base-command (it runs "
                               "an arbitrary program); start the worker with --allow-command")
            risky = sorted(k for k in variables
                           if k in RISKY_VARS or k.startswith(("LD_", "DYLD_")))
            if risky:
                raise RpcError(REFUSED, f"worker {self.name} refuses --var {', '.join(risky)} "
                               "(it can run arbitrary code); start the worker with "
                               "--allow-command")
        try:
            approvals_value = Approvals(**{k: tuple(v) if isinstance(v, list) else v
                                           for k, v in approvals.items()})
        except TypeError:
            raise RpcError(INVALID_PARAMS, "invalid params: unknown approval flag") from None
        cwd = options.get("cwd") or (None if follow_up else self.workdir)
        line_cap = options.get("line_cap")
        kwargs: dict[str, Any] = {}
        if isinstance(line_cap, int) and line_cap > 0:
            kwargs["line_cap"] = line_cap
        return RunOptions(
            prompt=prompt, executor=executor, append_prompt=str(options.get("append_prompt")
                                                               or ""),
            cwd=cwd, session=options.get("session"), model=options.get("model"),
            base_command=options.get("base_command"), params=tuple(params), vars=variables,
            approvals=approvals_value, openai_endpoint=options.get("openai_endpoint"),
            repos=strings["repos"], base=options.get("base"),
            in_place=bool(options.get("in_place")), allow_dirty=bool(options.get("allow_dirty")),
            setup=strings["setup"], cleanup=strings["cleanup"],
            review=options.get("review") if isinstance(options.get("review"), bool) else None,
            review_executor=review_executor or None, **kwargs)

    async def _import(self, snapshot: dict[str, Any]) -> None:
        """Bring a session that continues here into the spool: its row, transitions, and
        the entries this spool lacks (paged from the coordinator)."""
        try:
            session = Session.from_json(snapshot["session"])
            transitions = [Transition.from_json(session.id, t)
                           for t in snapshot.get("transitions", [])]
        except (KeyError, TypeError, ValueError):
            raise RpcError(INVALID_PARAMS, "invalid params: malformed session") from None
        spool = self.spool
        try:
            spool.get_session(session.id)
        except NotFound:
            spool.create_session(session)
        known = {(t.src, t.dst, t.at, t.execution) for t in spool.transitions(session.id)}
        for t in transitions:
            if (t.src, t.dst, t.at, t.execution) not in known:
                spool.record_transition(t)
        # The coordinator's view wins (e.g. worker_lost there, done here).
        spool.update_session(session.id, state=session.state,
                             native_session_id=session.native_session_id,
                             model=session.model, options=session.options, cwd=session.cwd)
        after = spool.last_seq(session.id)
        target = int(snapshot.get("last_seq", 0))
        while after < target and self.peer is not None:
            page = await self.peer.request("session.entries", {
                "session": session.id, "after_seq": after, "limit": 5000}, timeout=60)
            entries = page.get("entries") or []
            rows = [(int(e["seq"]), str(e.get("execution", "")), str(e.get("kind", "raw")),
                     encode(e)) for e in entries]
            if not rows:
                break
            spool.append_entries(session.id, rows)
            after = rows[-1][0]
            if not page.get("more"):
                break

    # shutdown -------------------------------------------------------------------------------

    async def drain(self, timeout: float) -> None:
        """Stop the agents (recorded as cancelled) and give the relay time to deliver."""
        log.info("stopping: %d run(s) to cancel, %d to deliver (again to quit at once)",
                 len(self.tasks), len(self.outgoing))
        for task in list(self.tasks.values()):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks.values()), timeout=timeout)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.outgoing and loop.time() < deadline:
            await asyncio.sleep(0.05)

    def close(self) -> None:
        self.spool.close()


def _too_big(text: str) -> str:
    """An entry larger than the coordinator accepts: relayed as a system entry with the
    same envelope saying so (the whole entry stays in the worker's spool)."""
    entry = json.loads(text)
    small = {k: entry[k] for k in ("seq", "ts", "session", "execution", "stage") if k in entry}
    small.update(kind="system", text=f"a {entry.get('kind', 'raw')} entry of {len(text)} "
                                     "bytes exceeds the coordinator's message limit; it is "
                                     "kept in the worker's spool")
    return encode(small)


def _why(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
