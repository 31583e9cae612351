"""The relay's coordinator end: a worker's ``execution.log`` batches go to followers at
once and to the writer thread, and are acknowledged once committed; a run's final
``execution.state`` is recorded after every entry before it."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from aura.contracts import RunSummary
from aura.rpc import INVALID_PARAMS, RpcError, seq_of
from aura.rpc_codec import BAD_ENTRY, NOT_OWNER
from aura.store import EntryAppender, EntryRow, Store

from .feed import Feeds
from .guard import Guard
from .mirror import Mirror
from .registry import Link, Registry
from .runs import Run, RunTable

log = logging.getLogger("aura.coordinator")

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def entry_seq(text: str, cap: int) -> int | str:
    """The seq of one relayed entry, or what is wrong with it."""
    if len(text) > cap:
        return f"oversized entry: {len(text)} characters (the cap is {cap})"
    if "\n" in text or "\r" in text:
        return "newline: an entry holds a raw newline"
    try:
        entry = json.loads(text)
    except ValueError:
        return "malformed entry: not JSON"
    if not isinstance(entry, dict):
        return "non-object entry: not a JSON object"
    seq = entry.get("seq")
    if type(seq) is not int or seq < 1:
        return "seq-less entry: no positive integer seq"
    try:
        if seq_of(text) == seq:
            return seq
    except RpcError:
        pass
    # Followers and the store's pages read the seq from the text itself.
    return 'unlaid entry: it must begin {"seq":N,'



# Messages kept per worker while its execution.start is being answered.
MAX_HELD = 10_000


class Relay:
    def __init__(self, store: Store, writer: EntryAppender, *, runs: RunTable, feeds: Feeds,
                 mirror: Mirror, registry: Registry,
                 finish: Callable[[Run, RunSummary], None], guard: Guard,
                 max_entry: int,
                 approvals: Callable[[Run, list[str]], None] | None = None) -> None:
        self.store = store
        self.guard = guard
        self.max_entry = max_entry
        # The highest seq accepted per session (stored, or queued for the writer), so a
        # batch is checked against what came before it even while that is uncommitted.
        self._high: dict[str, int] = {}
        # Messages of a worker about a run it may just have started: its first entries
        # can arrive before the coordinator has read its answer to execution.start.
        self._held: dict[str, list[Callable[[], None]]] = {}
        self.writer = writer
        self.runs = runs
        self.feeds = feeds
        self.mirror = mirror
        self.registry = registry
        self.finish = finish
        self.approvals = approvals  # told of each fresh batch (approval entries in it)

    def _hold(self, conn: Link, execution_id: Any, again: Callable[[], None]) -> bool:
        """Whether this message waits until the worker's pending starts are answered."""
        name = conn.worker
        if name is None or not isinstance(execution_id, str):
            return False
        held = self._held.get(name)
        if held is None:
            worker = self.registry.get(name)
            if worker is None or worker.reserved == 0 or \
                    self.runs.get(execution_id) is not None:
                return False
            held = self._held[name] = []
        if len(held) >= MAX_HELD:
            return False  # it is refused as any message about an unknown run
        held.append(again)
        return True

    def release(self, name: str) -> None:
        """An execution.start of this worker is answered: handle what waited for it."""
        for again in self._held.pop(name, []):
            again()

    def superseded(self, run: Run) -> bool:
        if not run.superseded:
            run.superseded = self.mirror.superseded(run.session, run.execution)
        return run.superseded

    def note_dropped(self, run: Run) -> None:
        if not run.dropped:
            run.dropped = True
            log.warning("dropping late entries of lost run %s: session %s went on with a "
                        "follow-up (they stay in the worker's spool)", run.execution[:8],
                        run.session[:8])

    def owned(self, conn: Link, execution_id: Any, session_id: Any) -> Run | None:
        """The run ``execution_id`` of ``session_id`` if it was given to this connection's
        worker (and this is that worker's current line); else refused (None)."""
        run: Run | None = self.runs.get(execution_id) \
            if isinstance(execution_id, str) else None
        if run is None and isinstance(execution_id, str) and isinstance(session_id, str):
            owner = self.mirror.owner(session_id, execution_id)
            if owner is not None:
                run = self.runs.note(execution_id, session_id)
                run.owner = owner
        worker = self.registry.get(conn.worker) if conn.worker is not None else None
        if run is None or run.owner is None or run.owner != conn.worker or \
                run.session != session_id or worker is None or worker.conn is not conn:
            self.guard.refuse(conn, NOT_OWNER, "not owner",
                              f"execution {str(execution_id)[:40]!r} of session "
                              f"{str(session_id)[:40]!r} was not given to worker "
                              f"{conn.worker} (on this connection)", execution_id)
            return None
        return run

    def m_execution_log(self, conn: Link, params: dict[str, Any]) -> None:
        """The general form: entries as JSON objects (any JSON-RPC client may send it)."""
        entries = params.get("entries")
        if not isinstance(entries, list):
            self.guard.refuse(conn, INVALID_PARAMS, "params", "invalid params: entries must "
                              "be an array", params.get("execution"))
            return
        self.log_batch(conn, params, [_encode({"seq": e.get("seq"), **e})
                                      if isinstance(e, dict) else _encode(e)
                                      for e in entries])

    def log_batch(self, conn: Link, params: dict[str, Any], texts: list[str]) -> None:
        """execution.log with the entries as JSON texts (the fast path hands them over
        undecoded; each is checked here before anything is stored or relayed)."""
        session_id, execution_id = params.get("session"), params.get("execution")
        if self._hold(conn, execution_id, lambda: self.log_batch(conn, params, texts)):
            return
        run = self.owned(conn, execution_id, session_id)
        if run is None or not texts:
            return
        if not run.running and self.superseded(run):
            # A lost run whose session went on elsewhere: its tail would collide with
            # the follow-up's seqs. Acknowledge it so the worker lets go; it stays in
            # its spool.
            self.note_dropped(run)
            conn.peer.notify("execution.ack", {"execution": run.execution,
                                               "seq": seq_of(texts[-1])})
            return
        fresh = self._fresh(conn, run, texts)
        if fresh is None:
            return
        seqs, texts = fresh
        top = seqs[-1] if seqs else self._high[run.session]
        if seqs:
            # Followers get the batch now; the worker's ack waits for the commit (until
            # then the worker keeps the batch and would resend it).
            self.feeds.received(run.session, seqs, top, texts)
            if self.approvals is not None:
                self.approvals(run, texts)

        def stored(error: Exception | None) -> None:
            if seqs:
                self.feeds.committed(run.session)
            if error is not None:
                # Not acknowledged: the worker resends it after reconnecting.
                log.error("cannot store entries of session %s: %s", run.session[:8], error)
                self._high.pop(run.session, None)
                conn.peer.close_soon(1011, "store error")
                return
            conn.peer.notify("execution.ack", {"execution": run.execution, "seq": top})

        # Rows carry (seq, execution, kind, body); the store keeps the bodies, which hold
        # every field (each entry names its own execution: a run has one per stage).
        self._commit(run.session, [(q, run.execution, "", t)
                                   for q, t in zip(seqs, texts, strict=True)], stored)

    def _fresh(self, conn: Link, run: Run, texts: list[str]
               ) -> tuple[list[int], list[str]] | None:
        """The entries of a batch not stored yet, each one JSON object whose seq follows
        the last one accepted for the session; None (refused) if any entry is bad."""
        high = self._high.get(run.session)
        if high is None:
            high = self._high[run.session] = self.store.last_seq(run.session)
        expect = high + 1
        seqs: list[int] = []
        fresh: list[str] = []
        for text in texts:
            seq = entry_seq(text, self.max_entry)
            if isinstance(seq, int) and seq <= high:
                continue  # sent again after a reconnect: stored (or queued) already
            if isinstance(seq, int) and seq != expect:
                seq = f"seq {seq} where {expect} was expected (a gap or a jump)"
            if isinstance(seq, str):
                self.guard.refuse(conn, BAD_ENTRY, seq.split(":")[0] if ":" in seq else "seq",
                                  f"refused a batch of execution {run.execution[:8]}: {seq}; "
                                  "nothing of it was stored", run.execution)
                return None
            seqs.append(seq)
            fresh.append(text)
            expect += 1
        self._high[run.session] = expect - 1
        return seqs, fresh

    def _commit(self, session_id: str, rows: list[EntryRow],
                then: Callable[[Exception | None], None]) -> None:
        """Queue rows for the writer thread; ``then`` runs on the event loop once they
        are committed (or failed), after every batch queued before them."""
        loop = asyncio.get_running_loop()

        def done(error: Exception | None) -> None:
            try:
                loop.call_soon_threadsafe(then, error)
            except RuntimeError:  # the loop is closed: shutting down
                pass

        self.writer.submit(session_id, rows, done)

    def m_execution_state(self, conn: Link, params: dict[str, Any]) -> None:
        snapshot = params.get("snapshot")
        if self._hold(conn, params.get("execution"),
                      lambda: self.m_execution_state(conn, params)):
            return
        run = self.owned(conn, params.get("execution"), params.get("session"))
        if run is None:
            return
        if not isinstance(snapshot, dict):
            self.guard.refuse(conn, INVALID_PARAMS, "params", "invalid params: snapshot "
                              "must be an object", run.execution)
            return
        if not params.get("final"):
            self._apply(conn, run, snapshot)
            return
        summary = params.get("summary")
        # The outcome is recorded once every entry before it is committed.
        self._commit(run.session, [], lambda error: None if error is not None else
                     self._final(conn, run, snapshot, summary))

    def _apply(self, conn: Link, run: Run, snapshot: dict[str, Any]) -> bool:
        try:
            self.mirror.apply(run.owner or "?", snapshot, session_id=run.session)
        except RpcError as exc:
            self.guard.refuse(conn, exc.code, "snapshot", f"refused a snapshot of "
                              f"execution {run.execution[:8]}: {exc.message}", run.execution)
            return False
        return True

    def _final(self, conn: Link, run: Run, snapshot: dict[str, Any], summary: Any) -> None:
        if not self._apply(conn, run, snapshot):
            return
        execution_id, session_id = run.execution, run.session
        self._high.pop(session_id, None)
        worker = self.registry.get(run.owner or "")
        if worker is not None:
            worker.running.discard(execution_id)
        conn.peer.notify("execution.ack", {"execution": execution_id,
                                           "seq": self.store.last_seq(session_id),
                                           "final": True})
        if run.summary is not None:
            run.worker = None
            return  # already finished here (worker_lost): the late outcome is on the row
        outcome = self._outcome(session_id, execution_id, summary)
        log.info("execution %s (session %s) on %s: %s", execution_id[:8], session_id[:8],
                 run.owner, outcome.state)
        self.finish(run, outcome)

    def _outcome(self, session_id: str, execution_id: str, summary: Any) -> RunSummary:
        """The worker's summary of a run, or (malformed) the one its rows give."""
        data = dict(summary) if isinstance(summary, dict) else {}
        data["session"] = session_id
        data.setdefault("execution", execution_id)
        try:
            return RunSummary.from_json(data)
        except ValueError as exc:
            log.warning("run %s: the worker's summary is malformed (%s); using its rows",
                        execution_id[:8], exc)
        return self.mirror.ended_summary(session_id, execution_id) or RunSummary(
            session=session_id, execution=execution_id, state="failed", exit_code=1,
            error="the worker sent a malformed summary")
