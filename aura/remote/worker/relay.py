"""The worker's relay: every entry its runs record reaches the coordinator exactly once.

Entries carry their seq; the coordinator acknowledges the highest seq it stored
(``execution.ack``); everything unacknowledged stays in memory (up to ``MEMORY_CAP`` per
run, the rest is read back from the spool) and is resent after a reconnect, starting after
the seq the coordinator reports in its hello answer. Which runs still need relaying is kept
in ``relay.json``, so after a worker restart the rest is read back from the spool (entries
are flushed there within half a second).

The relay talks to the coordinator through a peer given to it: anything with ``queued``,
``closed``, ``send_text``, ``notify`` and ``request`` (an aura.rpc.Peer, or a fake).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from aura.contracts import Execution, RunSummary, Session, Transition
from aura.errors import NotFound
from aura.recorder import encode
from aura.rpc import INVALID_PARAMS, RpcError, entries_message
from aura.store import Store

if TYPE_CHECKING:
    from aura.contracts import Entry

log = logging.getLogger("aura.worker")

BATCH_ENTRIES = 5000
BATCH_BYTES = 1 << 20
WINDOW = 100_000  # entries sent and not yet acknowledged, per execution
MAX_QUEUED = 16  # messages waiting in the connection's queue before the relay pauses
# Unacknowledged entries kept in memory per run; older ones are dropped from memory and read
# back from the spool when their turn comes. AURA_WORKER_MEMORY_CAP tunes it.
MEMORY_CAP = int(os.environ.get("AURA_WORKER_MEMORY_CAP", "200000"))


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

    def add(self, records: list[tuple[int, Any, str]]) -> None:
        """Entries just recorded; past MEMORY_CAP the oldest half stays in the spool only
        (the coordinator is away or slow) and is read back from there in its turn."""
        for seq, entry, text in records:
            self.seqs.append(seq)
            self.texts.append(text)
            if entry.get("kind") == "state":
                self.snapshot_due = True
        if len(self.seqs) > MEMORY_CAP:
            k = len(self.seqs) // 2
            self.spilled_upto = max(self.spilled_upto, self.seqs[k - 1])
            del self.seqs[:k]
            del self.texts[:k]


class Relay:
    """The runs this worker still owes the coordinator, and the pump that sends them."""

    def __init__(self, spool: Store, home: Path) -> None:
        self.spool = spool
        self.path = home / "relay.json"
        self.outgoing: dict[str, Outgoing] = {}
        self.max_message = 16 << 20  # the coordinator's, from its hello answer
        self.wake = asyncio.Event()

    # durable state --------------------------------------------------------------------------

    def recover(self) -> None:
        """Runs a previous worker process left unrelayed: resend them from the spool."""
        try:
            pending = json.loads(self.path.read_text())
        except (OSError, ValueError):
            pending = {}
        for execution_id, item in pending.items():
            if not isinstance(item, dict):
                continue
            out = Outgoing(item["session"], execution_id, item.get("started_at", ""))
            out.from_spool = True
            executions = self.executions(out)
            if not executions:
                continue
            session = self.spool.get_session(out.session)
            last = executions[-1]
            summary = RunSummary(out.session, last.id, session.state, last.exit_code,
                                 error=None if session.state == "done" else
                                 "the worker restarted while the run was going on").to_json()
            out.final = {"session": out.session, "execution": execution_id, "final": True,
                         "summary": summary}
            self.outgoing[execution_id] = out
            log.info("will resend what execution %s produced before the restart",
                     execution_id[:8])

    def save(self) -> None:
        data = {e: {"session": o.session, "started_at": o.started_at}
                for e, o in self.outgoing.items()}
        from aura.paths import atomic_write

        atomic_write(self.path, json.dumps(data))  # 0600: it names the runs of this worker

    def executions(self, out: Outgoing) -> list[Execution]:
        """The executions of this run (the pipeline makes one per stage)."""
        try:
            executions = self.spool.list_executions(out.session)
        except NotFound:
            return []
        return [e for e in executions if e.started_at >= out.started_at]

    def snapshot(self, out: Outgoing) -> dict[str, Any]:
        session = self.spool.get_session(out.session)
        return {"session": session.to_json(),
                "executions": [e.to_json() for e in self.executions(out)],
                "transitions": [t.to_json() for t in self.spool.transitions(out.session)]}

    def describe(self) -> list[dict[str, str]]:
        """What the hello says is still being relayed."""
        return [{"execution": o.execution, "session": o.session}
                for o in self.outgoing.values()]

    # runs -----------------------------------------------------------------------------------

    def watcher(self, first: asyncio.Future[Outgoing]) -> Callable[..., None]:
        """The recorder's watcher for one run; ``first`` gets its Outgoing at its first
        entries (the run's session and execution are known from then)."""
        holder: list[Outgoing] = []

        def watcher(records: list[tuple[int, Any, str]]) -> None:
            # The recorder stops calling a watcher that raises: log, never raise.
            try:
                if not holder:
                    holder.append(self._track(json.loads(records[0][2])))
                    if not first.done():
                        first.set_result(holder[0])
                holder[0].add(records)
                self.wake.set()
            except Exception:
                log.exception("relay watcher failed")

        return watcher

    def _track(self, head: dict[str, Any]) -> Outgoing:
        started = next((e.started_at for e in self.spool.list_executions(head["session"])
                        if e.id == head["execution"]), "")
        out = Outgoing(head["session"], head["execution"], started)
        self.outgoing[out.execution] = out
        return out

    def finish(self, out: Outgoing, summary: dict[str, Any]) -> None:
        """The run ended: its outcome goes out after its last entries."""
        out.final = {"session": out.session, "execution": out.execution, "final": True,
                     "summary": summary}
        self.wake.set()

    def on_ack(self, params: dict[str, Any]) -> None:
        """``execution.ack``: forget what the coordinator stored; a final ack ends the run's
        relaying."""
        out = self.outgoing.get(str(params.get("execution")))
        seq = params.get("seq")
        if out is None or not isinstance(seq, int):
            return
        if seq > out.acked:
            out.acked = seq
            out.prune(seq)
        if params.get("final") and out.final_sent:
            del self.outgoing[out.execution]
            self.save()
        self.wake.set()

    # the connection -------------------------------------------------------------------------

    def connected(self, acked: dict[str, Any], max_message: int) -> None:
        """A new connection: resend everything after what the coordinator stored."""
        self.max_message = max_message
        for out in list(self.outgoing.values()):
            self.rewind(out, int(acked.get(out.execution, out.acked)))
        self.wake.set()

    def rewind(self, out: Outgoing, acked: int) -> None:
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

    async def run(self, peer: Any) -> None:
        """Pump every run's entries to ``peer`` until it closes; woken by new entries and
        acks."""
        while not peer.closed.is_set():
            self.wake.clear()
            for out in list(self.outgoing.values()):
                self.pump(peer, out)
            await self.wake.wait()

    def pump(self, peer: Any, out: Outgoing) -> None:
        """Send what ``peer`` may take of this run now (window, queue), then its state."""
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
        self._send_state(peer, out)

    def _send_state(self, peer: Any, out: Outgoing) -> None:
        if out.snapshot_due:
            out.snapshot_due = False
            with contextlib.suppress(NotFound):
                peer.notify("execution.state", {"session": out.session,
                                                "execution": out.execution, "final": False,
                                                "snapshot": self.snapshot(out)})
        if out.final is not None and not out.final_sent:
            out.final_sent = True
            peer.notify("execution.state", dict(out.final, snapshot=self.snapshot(out)))

    def _pump_spool(self, peer: Any, out: Outgoing, header: dict[str, Any]) -> bool:
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
                asyncio.get_running_loop().call_later(0.5, self.wake.set)
                return False
            if ours is None:
                ours = {e.id for e in self.executions(out)}
            texts = [encode(e) for e in stored if e.get("execution") in ours]
            if texts:
                peer.send_text(entries_message("execution.log", header, texts))
            out.sent = stored[-1]["seq"]
        return True

    # a session that continues here ----------------------------------------------------------

    async def import_session(self, snapshot: dict[str, Any], peer: Any) -> None:
        """Bring a session that continues here into the spool: its row, transitions, and
        the entries this spool lacks (paged from the coordinator through ``peer``)."""
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
        await self._fetch_entries(session.id, int(snapshot.get("last_seq", 0)), peer)

    async def _fetch_entries(self, session_id: str, target: int, peer: Any) -> None:
        after = self.spool.last_seq(session_id)
        while after < target and peer is not None:
            page = await peer.request("session.entries", {
                "session": session_id, "after_seq": after, "limit": 5000}, timeout=60)
            entries = page.get("entries") or []
            rows = [(int(e["seq"]), str(e.get("execution", "")), str(e.get("kind", "raw")),
                     encode(e)) for e in entries]
            if not rows:
                break
            self.spool.append_entries(session_id, rows)
            after = rows[-1][0]
            if not page.get("more"):
                break


def _too_big(text: str) -> str:
    """An entry larger than the coordinator accepts: relayed as a system entry with the
    same envelope saying so (the whole entry stays in the worker's spool)."""
    entry = json.loads(text)
    small = {k: entry[k] for k in ("seq", "ts", "session", "execution", "stage") if k in entry}
    small.update(kind="system", text=f"a {entry.get('kind', 'raw')} entry of {len(text)} "
                                     "bytes exceeds the coordinator's message limit; it is "
                                     "kept in the worker's spool")
    return encode(cast("Entry", small))
