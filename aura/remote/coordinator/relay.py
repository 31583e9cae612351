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
from aura.rpc import INVALID_PARAMS, RpcError, need, seq_of
from aura.store import EntryAppender, EntryRow, Store

from .feed import Feeds
from .mirror import Mirror
from .registry import Link, Registry
from .runs import Run, RunTable

log = logging.getLogger("aura.coordinator")

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class Relay:
    def __init__(self, store: Store, writer: EntryAppender, *, runs: RunTable, feeds: Feeds,
                 mirror: Mirror, registry: Registry,
                 finish: Callable[[Run, RunSummary], None]) -> None:
        self.store = store
        self.writer = writer
        self.runs = runs
        self.feeds = feeds
        self.mirror = mirror
        self.registry = registry
        self.finish = finish

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

    def m_execution_log(self, conn: Link, params: dict[str, Any]) -> None:
        """The general form: entries as JSON objects (any JSON-RPC client may send it)."""
        entries = need(params, "entries", list)
        if not all(isinstance(e, dict) for e in entries):
            raise RpcError(INVALID_PARAMS, "invalid params: entries must be objects")
        self.log_batch(conn, params, [_encode(e) for e in entries])

    def log_batch(self, conn: Link, params: dict[str, Any], texts: list[str]) -> None:
        """execution.log with the entries as JSON texts (the fast path hands them over
        without decoding them)."""
        session_id = need(params, "session")
        execution_id = need(params, "execution")
        if not texts:
            return
        first, top = seq_of(texts[0]), seq_of(texts[-1])
        seqs: range | list[int] = range(first, top + 1) if top - first + 1 == len(texts) \
            else [seq_of(t) for t in texts]  # a batch's seqs are mostly consecutive
        top = max(seqs)
        if not self.runs.is_running(execution_id):
            run = self.runs.note(execution_id, session_id)
            if self.superseded(run):
                # A lost run whose session went on elsewhere: its tail would collide with
                # the follow-up's seqs. Acknowledge it so the worker lets go; it stays in
                # its spool.
                self.note_dropped(run)
                conn.peer.notify("execution.ack", {"execution": execution_id, "seq": top})
                return
        # Followers get the batch now; the worker's ack waits for the commit (until then
        # the worker keeps the batch and would resend it; clients drop seqs they have).
        self.feeds.received(session_id, seqs, top, texts)

        def stored(error: Exception | None) -> None:
            self.feeds.committed(session_id)
            if error is not None:
                # Not acknowledged: the worker resends it after reconnecting.
                log.error("cannot store entries of session %s: %s", session_id[:8], error)
                conn.peer.close_soon(1011, "store error")
                return
            conn.peer.notify("execution.ack", {"execution": execution_id, "seq": top})

        # Rows carry (seq, execution, kind, body); the store keeps the bodies, which hold
        # every field (each entry names its own execution: a run has one per stage).
        self._commit(session_id, [(q, execution_id, "", t)
                                  for q, t in zip(seqs, texts, strict=True)], stored)

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
        execution_id = need(params, "execution")
        snapshot = need(params, "snapshot", dict)
        if not params.get("final"):
            self.mirror.apply(conn.worker or "?", snapshot)
            return
        summary = params.get("summary")
        session_id = need(params, "session")
        # The outcome is recorded once every entry before it is committed.
        self._commit(session_id, [], lambda error: None if error is not None else
                     self._final(conn, execution_id, snapshot, summary))

    def _final(self, conn: Link, execution_id: str, snapshot: dict[str, Any],
               summary: Any) -> None:
        try:
            session_id = self.mirror.apply(conn.worker or "?", snapshot)
        except RpcError as exc:
            log.warning("worker %s sent a bad final state: %s", conn.worker, exc)
            return
        worker = self.registry.get(conn.worker or "")
        if worker is not None:
            worker.running.discard(execution_id)
        conn.peer.notify("execution.ack", {"execution": execution_id,
                                           "seq": self.store.last_seq(session_id),
                                           "final": True})
        run = self.runs.note(execution_id, session_id)
        if run.summary is not None:
            run.worker = None
            return  # already finished here (worker_lost): the late outcome is on the row
        outcome = self._outcome(session_id, execution_id, summary)
        log.info("execution %s (session %s) on %s: %s", execution_id[:8], session_id[:8],
                 conn.worker, outcome.state)
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
