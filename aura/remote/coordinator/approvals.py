"""Approval requests of runs on workers, as the coordinator sees and answers them.

The coordinator keeps its own ``approvals`` rows (the same table a local store has) as a
projection of the ``approval`` entries its workers relay: a pending entry makes the row,
an outcome entry settles it. Entries are resent after a reconnect from the last
acknowledged seq, and a row only ever moves out of pending, so replaying entries is
harmless. The rows answer `aura approvals --coordinator` with one indexed query, and they
survive a coordinator restart.

The row is not where an answer takes effect: `approvals.answer` is forwarded to the worker
that runs the request, which answers through its own spool (first answer wins there, a
local `aura approve` on the worker machine included); only then is the row settled. When
the worker is lost or the run ends, what is still pending here becomes ``lost`` and a late
answer is refused.

Scope: only requests of remote runs (an execution recorded on a worker) are listed or
answered; a worker's relayed entries can make or settle rows of its own runs only.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aura.approvals import ApprovalState, Choice
from aura.errors import ApprovalClosed, ConnectionLost, NotFound, RpcError
from aura.recorder import utc_now
from aura.remote.answers import answer_params
from aura.rpc import INVALID_PARAMS, NOT_FOUND, UNAVAILABLE, need
from aura.rpc_codec import NOT_OWNER
from aura.store import Store
from aura.store_approvals import Approval, approval_not_found

from .mirror import RUNNING, Mirror
from .registry import Registry
from .runs import Run, RunTable

log = logging.getLogger("aura.coordinator")

FORWARD_TIMEOUT = 30.0  # seconds a worker has to answer approvals.answer
MAX_BY = 200  # characters of a client's "who answers"
CLOSED = 3  # ApprovalClosed's exit code, as a worker's error carries it


class RemoteApprovals:
    def __init__(self, store: Store, mirror: Mirror, runs: RunTable,
                 registry: Registry) -> None:
        self.store = store
        self.mirror = mirror
        self.runs = runs
        self.registry = registry

    # the projection of relayed entries -------------------------------------------------------

    def relayed(self, run: Run, texts: list[str]) -> None:
        """Approval entries among a batch the owner of ``run`` relayed: rows made or
        settled (entries about anything but this worker's own runs are ignored)."""
        for text in texts:
            if '"approval"' not in text:
                continue  # the cheap test: most entries are not approvals
            try:
                entry = json.loads(text)
                if entry.get("kind") != "approval":
                    continue
                approval = Approval.from_json(entry.get("data") or {})
            except (ValueError, AttributeError):
                log.warning("run %s: a malformed approval entry; not listed",
                            run.execution[:8])
                continue
            self._project(run, approval)

    def _project(self, run: Run, approval: Approval) -> None:
        if approval.session != run.session or \
                self.mirror.owner(run.session, approval.execution) not in (None, run.owner):
            log.warning("worker %s relayed an approval of another run (%s); ignored",
                        run.owner, approval.id[:40])
            return
        try:
            current = self.store.get_approval(approval.id)
        except NotFound:
            current = None
        if current is not None and current.id != approval.id:
            current = None  # a prefix match of another row: this one is new
        if current is None:
            self.store.create_approval(approval if approval.state is ApprovalState.PENDING
                                       else _pending(approval))
            if approval.state is ApprovalState.PENDING:
                return
            current = self.store.get_approval(approval.id)
        if (current.session, current.execution) != (approval.session, approval.execution):
            log.warning("worker %s relayed approval %s of another run; ignored", run.owner,
                        approval.id[:8])
            return
        if approval.state.is_final and current.state is ApprovalState.PENDING:
            self._settle(approval)

    def _settle(self, final: Approval) -> None:
        try:
            self.store.answer_approval(final.id, final.state, by=final.answered_by or "?",
                                       at=final.answered_at or utc_now(),
                                       message=final.message, option=final.option,
                                       choice=final.choice)
        except ApprovalClosed:
            pass  # settled here first (lost, or the answer's reply)

    # lost --------------------------------------------------------------------------------

    def lose(self, session_id: str, reason: str) -> None:
        """The run of this session ended or its worker was lost: what still waits is
        lost (a late answer is refused; nothing reaches the agent)."""
        for approval in self.store.list_approvals(state=ApprovalState.PENDING,
                                                  session_id=session_id):
            self._lose_one(approval, reason)

    def _lose_one(self, approval: Approval, reason: str) -> None:
        try:
            self.store.answer_approval(approval.id, ApprovalState.LOST, by=reason,
                                       at=utc_now(), choice=Choice.DENY.value)
        except ApprovalClosed:
            pass

    def _worker_of(self, approval: Approval) -> str | None:
        """The worker running the request's run; None when it is not a remote run."""
        owner = self.mirror.owner(approval.session, approval.execution)
        if owner is not None or self.mirror.status(approval.session,
                                                   approval.execution) is not None:
            return owner  # recorded: on a worker, or a local execution (None)
        # Not recorded yet (a later stage whose snapshot is still on its way): the worker
        # running the session's run.
        return next((r.owner for r in self.runs if r.session == approval.session and
                     r.running), None)

    def _gone(self, approval: Approval) -> bool:
        status = self.mirror.status(approval.session, approval.execution)
        if status is not None:
            return status != RUNNING
        return not any(r.session == approval.session and r.running for r in self.runs)

    def _check(self, approval: Approval) -> Approval:
        """The row, marked lost first when its run is gone (ended before this
        coordinator heard of its outcome, or a restart)."""
        if approval.state is ApprovalState.PENDING and self._gone(approval):
            self._lose_one(approval, "the run went away")
            return self.store.get_approval(approval.id)
        return approval

    # client methods ------------------------------------------------------------------------

    def m_approvals_list(self, conn: object, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Requests of remote runs: pending ones (oldest first), or all with ``all``."""
        every = params.get("all") is True
        session = params.get("session")
        if session is not None and not isinstance(session, str):
            raise RpcError(INVALID_PARAMS, "invalid params: session is a string")
        if session:
            session = self.store.get_session(session).id
        rows = self.store.list_approvals(
            state=None if every else ApprovalState.PENDING, session_id=session or None)
        listed = []
        for approval in rows:
            worker = self._worker_of(approval)
            if worker is None:
                continue  # a local run's request (this store is someone's home too)
            approval = self._check(approval)
            if every or approval.state is ApprovalState.PENDING:
                listed.append(dict(approval.to_json(), worker=worker))
        return listed

    async def m_approvals_answer(self, conn: Any, params: dict[str, Any]) -> dict[str, Any]:
        """Forward an answer to the worker that runs the request; its answer is ours."""
        approval_id = need(params, "approval")
        choice, message, by = answer_params(params)
        try:
            approval = self.store.get_approval(approval_id.strip())
        except NotFound as exc:
            raise NotFound(_remote(str(exc))) from None
        worker_name = self._worker_of(approval)
        if worker_name is None:  # a local run's request: out of scope here
            raise NotFound(_remote(str(approval_not_found(approval_id))))
        approval = self._check(approval)
        if approval.state.is_final:
            raise ApprovalClosed(approval.closed_message())
        # Shown in listings and told to the agent: one line of printable text.
        who = "".join(c for c in " ".join((by or "?").split()) if c.isprintable())[:MAX_BY]
        who = f"{who or '?'} via {getattr(conn, 'remote', '?')}"
        reply = await self._forward(worker_name, approval, choice, message, who)
        self._settle(reply)
        return reply.to_json()

    async def _forward(self, worker_name: str, approval: Approval, choice: Choice,
                       message: str | None, by: str) -> Approval:
        worker = self.registry.get(worker_name)
        if worker is None or worker.conn is None:
            raise RpcError(UNAVAILABLE, f"worker {worker_name} is not connected; approval "
                           f"{approval.id[:8]} stays pending until it is back or declared "
                           "lost")
        try:
            reply = await worker.conn.peer.request("approvals.answer", {
                "approval": approval.id, "session": approval.session,
                "execution": approval.execution, "choice": choice.value,
                "message": message, "by": by}, timeout=FORWARD_TIMEOUT)
        except (ConnectionLost, TimeoutError):
            raise RpcError(UNAVAILABLE, f"worker {worker_name} did not answer; approval "
                           f"{approval.id[:8]} may still be pending (see `aura approvals "
                           "--coordinator`)") from None
        except RpcError as exc:
            if isinstance(exc.data, dict) and exc.data.get("exit_code") == CLOSED:
                raise ApprovalClosed(exc.message) from None
            if exc.code == NOT_FOUND:
                raise RpcError(NOT_FOUND, f"worker {worker_name} has no pending approval "
                               f"{approval.id[:8]} ({exc.message})") from None
            raise
        try:
            answered = Approval.from_json(reply if isinstance(reply, dict) else {})
        except ValueError:
            answered = None
        if answered is None or answered.id != approval.id or not answered.state.is_final or \
                (answered.session, answered.execution) != (approval.session,
                                                           approval.execution):
            log.warning("worker %s answered approvals.answer for %s with something else",
                        worker_name, approval.id[:8])
            raise RpcError(NOT_OWNER, f"worker {worker_name} gave a malformed answer")
        return answered


def _remote(message: str) -> str:
    return message.replace("`aura approvals`", "`aura approvals --coordinator URL`")


def _pending(approval: Approval) -> Approval:
    """The request as it was asked (its outcome is applied as an answer after)."""
    from dataclasses import replace

    return replace(approval, state=ApprovalState.PENDING, answered_at=None,
                   answered_by=None, message=None, option=None, choice=None)
