"""The approval broker: what happens to each request an agent makes during one turn.

``Broker`` is the ``Approver`` an executor gets (``RunRequest.approver``). For each
request it stores a pending row and an ``approval`` entry, lets the policy answer first
(rules from the config, ``.aura.toml``, the flags, "allow for this session"), then waits
for a person. Every answer goes through the store, so any process on it can answer
(`aura approve` from another terminal, a surface of a future remote relay on a worker):
the broker polls the row, the first answer wins, and the outcome is a second ``approval``
entry saying ``by`` whom. Without a person the request expires after the timeout and is
denied; when the turn ends or is cancelled, what is still pending becomes ``lost``.

``ApprovingHost`` wraps a host so every agent run whose executor declares the
"approvals" feature gets a broker of its own execution.
"""

from __future__ import annotations

import asyncio
import getpass
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from aura.approvals import (
    ApprovalRequest,
    ApprovalState,
    Choice,
    Decision,
    pick,
)
from aura.contracts import EntryKind, ExecutionStatus
from aura.errors import ApprovalClosed, AuraError, NotFound
from aura.executors.base import Executor, Output, RunRequest
from aura.recorder import utc_now
from aura.service.approval_policy import Policy, Rule, session_rule_for, session_rules
from aura.store import Store
from aura.store_approvals import Approval

POLL_INTERVAL = 0.15  # seconds between reads of a pending row (a primary-key lookup)
DEFAULT_TIMEOUT = 300.0  # --approval-timeout: how long a request waits with nobody asked
FEATURE = "approvals"  # Executor.features: the executor sends requests to an approver


@dataclass(frozen=True, slots=True)
class Answer:
    """What a person (or a command) answers."""

    choice: Choice
    message: str | None = None
    by: str = ""


class Person(Protocol):
    """A surface that can ask a person (the terminal prompt, the TUI bar)."""

    async def answer(self, approval: Approval) -> Answer | None:
        """The person's answer; None when they cannot answer (the terminal closed).
        Cancelled when the request was answered elsewhere, expired or was lost."""
        ...


def who(surface: str) -> str:
    """"alice@box (tty)": who answers from this process."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "?"
    return f"{user}@{socket.gethostname()} ({surface})"


class Broker:
    """The ``Approver`` of one execution."""

    def __init__(self, store: Store, output: Output, *, session_id: str, execution_id: str,
                 cwd: str, policy: Policy, person: Person | None = None,
                 timeout: float = DEFAULT_TIMEOUT,
                 notify: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.store = store
        self.notify = notify  # told when a request waits for a person
        self.output = output
        self.session_id = session_id
        self.execution_id = execution_id
        self.cwd = cwd
        self.policy = policy
        self.person = person
        self.timeout = timeout
        self._reported: set[str] = set()  # approvals whose outcome entry is out

    async def ask(self, request: ApprovalRequest) -> Decision:
        approval = Approval(
            id=str(uuid.uuid4()), session=self.session_id, execution=self.execution_id,
            native_id=request.native_id, kind=request.kind, title=request.title,
            created_at=utc_now(), detail=dict(request.detail), options=request.options)
        self.store.create_approval(approval)
        self._emit(approval)
        rule = self.policy.decide(request, self.cwd)
        if rule is not None:
            final = self._settle(approval, rule.decision, f"policy: {rule.describe()}",
                                 rule.message)
        else:
            if self.notify is not None:
                from aura.service.notify import approval_waiting

                self.notify(approval_waiting(self.session_id, approval.id, approval.kind,
                                             approval.title))
            final = await self._wait(approval)
        return self._decision(final, request)

    def withdraw(self, native_id: str) -> None:
        for approval in self.store.list_approvals(state=ApprovalState.PENDING,
                                                  execution_id=self.execution_id):
            if approval.native_id == native_id:
                self._close(approval, "withdrawn by the agent")

    def close(self, reason: str = "the turn ended") -> None:
        """The turn is over: whatever is still pending is lost (a late answer is refused)."""
        for approval in self.store.list_approvals(state=ApprovalState.PENDING,
                                                  execution_id=self.execution_id):
            self._close(approval, reason)
        for approval in self.store.list_approvals(execution_id=self.execution_id):
            if approval.state.is_final and approval.id not in self._reported:
                self._emit(approval)

    # waiting -----------------------------------------------------------------------------

    async def _wait(self, approval: Approval) -> Approval:
        loop = asyncio.get_running_loop()
        asking = asyncio.ensure_future(self.person.answer(approval)) if self.person else None
        deadline = None if asking else loop.time() + self.timeout
        try:
            while True:
                row = self.store.get_approval(approval.id)
                if row.state.is_final:
                    return self._reported_once(row)
                if asking is not None and asking.done():
                    answer, asking = asking.result(), None
                    if answer is None:  # the person went away: the timeout applies now
                        deadline = loop.time() + self.timeout
                    else:
                        self._try(approval, answer.choice, answer.by or who("prompt"),
                                  answer.message)
                    continue
                now = loop.time()
                if deadline is not None and now >= deadline:
                    self._try(approval, Choice.DENY, "timeout",
                              f"nobody answered within {self.timeout:g} s; denied",
                              ApprovalState.EXPIRED)
                    continue
                pause = POLL_INTERVAL if deadline is None else \
                    max(0.0, min(POLL_INTERVAL, deadline - now))
                if asking is not None:
                    await asyncio.wait({asking}, timeout=pause)
                else:
                    await asyncio.sleep(pause)
        except asyncio.CancelledError:
            self._close(approval, "the turn was cancelled")
            raise
        finally:
            if asking is not None and not asking.done():
                asking.cancel()

    def _try(self, approval: Approval, choice: Choice, by: str, message: str | None,
             state: ApprovalState | None = None) -> None:
        try:
            self._settle(approval, choice, by, message, state)
        except ApprovalClosed:
            pass  # another answer came first; the loop reads and reports it

    def _settle(self, approval: Approval, choice: Choice, by: str, message: str | None,
                state: ApprovalState | None = None) -> Approval:
        option = pick(approval.options, choice)
        if option is None and choice is Choice.ALLOW_SESSION:
            option = pick(approval.options, Choice.ALLOW)
        final = self.store.answer_approval(
            approval.id, state or (ApprovalState.DENIED if choice is Choice.DENY
                                   else ApprovalState.ALLOWED),
            by=by, at=utc_now(), message=message, option=option.id if option else None,
            choice=choice.value)
        return self._reported_once(final)

    def _close(self, approval: Approval, reason: str) -> None:
        try:
            final = self.store.answer_approval(approval.id, ApprovalState.LOST, by=reason,
                                               at=utc_now(), choice=Choice.DENY.value)
        except ApprovalClosed:
            final = self.store.get_approval(approval.id)
        self._reported_once(final)

    def _reported_once(self, final: Approval) -> Approval:
        """Emit the outcome entry (once, whoever answered) and remember a session-wide
        allow."""
        if final.id not in self._reported:
            self._reported.add(final.id)
            if final.choice == Choice.ALLOW_SESSION.value and \
                    final.state is ApprovalState.ALLOWED:
                self._remember(final)
            self._emit(final)
        return final

    def _remember(self, final: Approval) -> None:
        request = ApprovalRequest(final.native_id, final.kind, final.title, final.detail,
                                  final.options)
        rule = session_rule_for(request)
        session = self.store.get_session(self.session_id)
        remembered = list(session.options.get("approval_rules") or [])
        if rule.to_json() not in remembered:
            remembered.append(rule.to_json())
            self.store.update_session(self.session_id, options={
                **session.options, "approval_rules": remembered})
        self.policy = self.policy.plus([rule])

    def _decision(self, final: Approval, request: ApprovalRequest) -> Decision:
        choice = Choice(final.choice) if final.state is ApprovalState.ALLOWED and \
            final.choice else Choice.DENY
        option = next((o for o in request.options if o.id == final.option), None)
        if choice is Choice.DENY and option is None:
            option = pick(request.options, Choice.DENY)
        return Decision(choice, final.message, final.answered_by or "", option)

    def _emit(self, approval: Approval) -> None:
        self.output.emit([{"kind": EntryKind.APPROVAL.value, "id": approval.id,
                           "status": approval.state.value, "text": approval.title,
                           "data": approval.to_json()}])
        hand_off: Callable[[], None] | None = getattr(self.output, "hand_off", None)
        if hand_off is not None:  # the recorder: store it now, other terminals read it
            hand_off()


# the host wrapper --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ApprovalSetup:
    """What the runner knows before a turn: the rules of the config and the flags, the
    person surface, the timeout."""

    rules: tuple[Rule, ...] = ()
    person: Person | None = None
    timeout: float = DEFAULT_TIMEOUT
    notify: Callable[[dict[str, Any]], None] | None = None  # told when a request waits


class ApprovingHost:
    """A host whose agent runs get a broker when their executor speaks approvals."""

    def __init__(self, host: Any, store: Store, setup: ApprovalSetup) -> None:
        self._host = host
        self._store = store
        self._setup = setup

    def __getattr__(self, name: str) -> Any:
        return getattr(self._host, name)

    async def run_agent(self, executor: Executor, request: RunRequest, output: Output
                        ) -> Any:
        if FEATURE not in executor.features or request.approver is not None:
            return await self._host.run_agent(executor, request, output)
        session = self._store.get_session(request.session_id)
        policy = Policy((*self._setup.rules, *project_rules(request.cwd),
                         *session_rules(session.options)))
        broker = Broker(self._store, output, session_id=request.session_id,
                        execution_id=request.execution_id, cwd=request.cwd, policy=policy,
                        person=self._setup.person, timeout=self._setup.timeout,
                        notify=self._setup.notify)
        reason = "the agent exited"
        try:
            return await self._host.run_agent(executor, replace(request, approver=broker),
                                              output)
        except asyncio.CancelledError:
            reason = "the turn was cancelled"
            raise
        finally:
            broker.close(reason)


def project_rules(cwd: str) -> list[Rule]:
    """The rules of the ``.aura.toml`` of the repository ``cwd`` is in."""
    from pathlib import Path

    from aura import git, project
    from aura.errors import AuraError
    from aura.service.approval_policy import rules_from_table

    try:
        top = git.toplevel(cwd)
    except AuraError:
        top = Path(cwd)
    data = project.load_project_config(top)
    return rules_from_table(data.get("approvals"), data["path"])


# answering from anywhere -------------------------------------------------------------------

def pending(store: Store) -> list[Approval]:
    """Requests still waiting, across sessions; those whose run went away are marked
    lost first (a run killed without a chance to say so)."""
    from aura.liveness import sweep_orphans

    sweep_orphans(store)
    waiting = []
    for approval in store.list_approvals(state=ApprovalState.PENDING):
        if _run_is_gone(store, approval):
            _mark_gone(store, approval)
        else:
            waiting.append(approval)
    return waiting


def answer(store: Store, approval_id: str, choice: Choice, *, by: str,
           message: str | None = None) -> Approval:
    """Answer a pending request (`aura approve`/`aura deny`); NotFound for an unknown id,
    ApprovalClosed when it was already answered, expired or lost."""
    approval = store.get_approval(approval_id)
    host = _host_of(store, approval)
    if host not in (None, "local"):
        # A coordinator's mirror of a worker's request: settling this row would tell the
        # agent nothing; the answer must reach the worker.
        raise AuraError(f"approval {approval.id[:8]} is of a run on worker {host}; answer "
                        f"it through the coordinator: `aura approve {approval.id[:8]} "
                        "--coordinator URL`")
    if approval.state is ApprovalState.PENDING and _run_is_gone(store, approval):
        _mark_gone(store, approval)
        approval = store.get_approval(approval.id)
    if approval.state.is_final:
        raise ApprovalClosed(approval.closed_message())
    option = pick(approval.options, choice) or (
        pick(approval.options, Choice.ALLOW) if choice is Choice.ALLOW_SESSION else None)
    state = ApprovalState.DENIED if choice is Choice.DENY else ApprovalState.ALLOWED
    return store.answer_approval(approval.id, state, by=by, at=utc_now(), message=message,
                                 option=option.id if option else None, choice=choice.value)


def _host_of(store: Store, approval: Approval) -> str | None:
    """Where the request's execution runs ("local", a worker's name); None when that
    execution is not stored."""
    try:
        executions = store.list_executions(approval.session)
    except NotFound:
        return None
    return next((e.host for e in executions if e.id == approval.execution), None)


def _run_is_gone(store: Store, approval: Approval) -> bool:
    for execution in store.list_executions(approval.session):
        if execution.id == approval.execution:
            return execution.status is not ExecutionStatus.RUNNING
    return False  # not stored yet (a remote worker's execution): assume it is running


def _mark_gone(store: Store, approval: Approval) -> None:
    try:
        store.answer_approval(approval.id, ApprovalState.LOST, by="the run went away",
                              at=utc_now(), choice=Choice.DENY.value)
    except ApprovalClosed:
        pass  # answered meanwhile
