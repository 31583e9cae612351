"""The Store protocol and an in-memory implementation.

A store keeps sessions, their executions, every state transition and every entry. Entries
arrive as rows ``(seq, execution_id, kind, body)`` where ``body`` is the entry's complete
JSON text (envelope included): it is written once by the recorder and read back verbatim,
so storing and replaying never re-serialise a line. ``SQLiteStore`` (store_sqlite.py) is
the durable implementation; both pass the same test suite.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, cast

from aura.approvals import ApprovalState
from aura.contracts import Entry, Execution, ExecutionStatus, Session, Transition
from aura.errors import InvalidTransition, NotFound, StoreError
from aura.store_approvals import Approval, MemoryApprovals
from aura.store_attempts import Attempt, Group, MemoryAttempts
from aura.store_controls import Control, MemoryControls
from aura.store_history import Hit, memory_search
from aura.store_ids import check_prefix
from aura.store_tasks import WORKING, Task, task_not_found

EntryRow = tuple[int, str, str, str]  # seq, execution id, kind, JSON body
# Told when a submitted batch is stored: None, or the error that kept it out (on the
# writer's thread).
StoredCallback = Callable[[Exception | None], None]


@dataclass(frozen=True, slots=True)
class Claim:
    """A session taken by one aura run: only its holder may run a stage of it, so two
    follow-ups of one session can never interleave. ``token`` tells runs apart; the
    holder is the aura process (host, pid + start time) that took it."""

    session: str
    token: str
    host: str
    pid: int | None
    pid_started: str | None
    at: str


class EntryAppender(Protocol):
    """Appends entry batches in order, possibly on a thread of its own."""

    def append(self, rows: Sequence[EntryRow]) -> None:
        """Queue a batch of the appender's session; may block while earlier batches are
        written (back-pressure)."""
        ...
    def submit(self, session_id: str, rows: Sequence[EntryRow], done: StoredCallback) -> None:
        """Queue a batch of any session (possibly empty: a marker that everything queued
        before it is stored); ``done`` is called once it is committed or has failed."""
        ...
    def sync(self) -> None:
        """Return once every queued batch is stored; raise the first error met."""
        ...
    def close(self) -> None: ...


class SyncAppender:
    """Writes each batch at once, in the caller's thread."""

    def __init__(self, store: Store, session_id: str | None) -> None:
        self._store = store
        self._session_id = session_id

    def append(self, rows: Sequence[EntryRow]) -> None:
        assert self._session_id is not None, "append() needs an appender of one session"
        self._store.append_entries(self._session_id, rows)

    def submit(self, session_id: str, rows: Sequence[EntryRow], done: StoredCallback) -> None:
        try:
            if rows:
                self._store.append_entries(session_id, rows)
        except StoreError as exc:
            done(exc)
            return
        done(None)

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass


class Store(Protocol):
    def create_session(self, session: Session) -> None: ...
    def get_session(self, session_id: str) -> Session:
        """The session with this id or unique id prefix; NotFound otherwise."""
        ...
    def update_session(self, session_id: str, **fields: Any) -> Session: ...
    def list_sessions(self, limit: int | None = None, *, executor: str | None = None,
                      cwd: str | None = None) -> list[Session]:
        """Newest first."""
        ...
    def create_execution(self, execution: Execution) -> None: ...
    def update_execution(self, execution_id: str, **fields: Any) -> Execution: ...
    def list_executions(self, session_id: str) -> list[Execution]: ...
    def running_executions(self) -> list[Execution]: ...
    def record_transition(self, transition: Transition) -> None:
        """Store the transition and set the session's state and updated_at to match."""
        ...
    def transitions(self, session_id: str) -> list[Transition]: ...
    def claim_session(self, claim: Claim, from_states: Collection[str] | None = None
                      ) -> Claim | None:
        """Take the session for ``claim``, atomically: None when taken; the claim that
        holds it when another run has it. With ``from_states``, a session in any other
        state is refused (InvalidTransition), checked in the same step."""
        ...
    def release_session(self, session_id: str, token: str) -> None:
        """Give the session back, if ``token`` still holds it."""
        ...
    def claims(self) -> list[Claim]: ...
    def append_entries(self, session_id: str, rows: Sequence[EntryRow]) -> None:
        """Append a batch of entries (increasing seq) in one transaction. Entries at or
        below the session's last stored seq are skipped: resending a batch is harmless."""
        ...
    def entries(self, session_id: str, after_seq: int = 0, limit: int | None = None
                ) -> list[Entry]:
        """Entries with seq > after_seq, in seq order, at most ``limit``."""
        ...
    def entry_texts(self, session_id: str) -> list[str]:
        """Every entry's stored JSON text, in seq order, not decoded."""
        ...
    def last_seq(self, session_id: str) -> int: ...
    def appender(self, session_id: str | None = None) -> EntryAppender:
        """Where batches go to be stored (a writer thread for SQLite): a recorder's, of
        ``session_id``, or with None a writer for batches of any session (``submit``)."""
        ...
    def board_columns(self) -> list[dict[str, Any]]:
        """The board's columns ({name, position, state, wip_limit}) by position."""
        ...
    def put_board_column(self, column: dict[str, Any]) -> None:
        """Add a column, or replace the one of the same name (case-insensitive)."""
        ...
    def delete_board_column(self, name: str) -> None:
        """Remove a column (case-insensitive name); NotFound if there is none."""
        ...
    # approval requests (aura.store_approvals) -----------------------------------------
    def create_approval(self, approval: Approval) -> None: ...
    def get_approval(self, approval_id: str) -> Approval:
        """The request with this id or unique id prefix; NotFound otherwise."""
        ...
    def list_approvals(self, *, state: ApprovalState | None = None,
                       session_id: str | None = None, execution_id: str | None = None
                       ) -> list[Approval]:
        """Oldest first."""
        ...
    def answer_approval(self, approval_id: str, state: ApprovalState, *, by: str, at: str,
                        message: str | None = None, option: str | None = None,
                        choice: str | None = None) -> Approval:
        """Move a pending request to ``state``; ApprovalClosed when it is no longer
        pending (the first answer wins)."""
        ...
    # controls of running sessions (aura.store_controls) --------------------------------
    def create_control(self, control: Control) -> None: ...
    def get_control(self, control_id: str) -> Control: ...
    def list_controls(self, session_id: str, state: str | None = None) -> list[Control]:
        """Oldest first."""
        ...
    def move_control(self, control_id: str, from_state: str, state: str, *, at: str,
                     note: str | None = None, execution: str | None = None) -> bool:
        """Move a control out of ``from_state``; False when it was no longer in it."""
        ...
    def worker_identity(self, name: str) -> dict[str, Any] | None:
        """An enrolled worker ({name, key_hash, enrolled_at, revoked_at, re_enroll})."""
        ...
    def worker_identities(self) -> list[dict[str, Any]]: ...
    # groups of attempts (aura.store_attempts) -----------------------------------------
    def create_group(self, group: Group) -> None: ...
    def add_attempt(self, attempt: Attempt) -> None: ...
    def groups(self) -> list[Group]:
        """Every group of attempts, newest first."""
        ...
    def attempts(self, group_id: str) -> list[Attempt]:
        """The group's attempts by number."""
        ...
    def attempt_of(self, session_id: str) -> Attempt | None: ...
    def choose_attempt(self, group_id: str, session_id: str) -> None:
        """Mark ``session_id`` the group's chosen attempt and every other not chosen."""
        ...
    def put_worker_identity(self, identity: dict[str, Any]) -> None: ...
    def create_task(self, task: Task) -> None:
        """Queue a task for its (existing, queued) session, with its dependencies."""
        ...
    def tasks(self, pending: bool = False) -> list[Task]:
        """Every task (with ``pending``: those whose session is queued), oldest first,
        with its dependencies."""
        ...
    def task_states(self) -> dict[str, str]:
        """The state of every queued task's session and of every session it waits for."""
        ...
    def update_task(self, session_id: str, **fields: Any) -> None: ...
    def claim_task(self, session_id: str, claimer: str, at: str) -> bool:
        """Make an unclaimed task whose session is queued ``claimer``'s, atomically: True
        for exactly one of any number of callers."""
        ...
    def unclaim_task(self, session_id: str, claimer: str) -> bool:
        """Give a task back (it waits again), if ``claimer`` still holds it."""
        ...
    def delete_task(self, session_id: str) -> None: ...
    def working_sessions(self) -> list[str]:
        """Sessions in a coding-side state that run on this machine (not --on tasks)."""
        ...
    def state_counts(self) -> dict[str, int]:
        """How many sessions are in each state."""
        ...
    # history (aura.store_history) ----------------------------------------------------
    @property
    def fts(self) -> bool:
        """Whether search uses a full-text index (else a slower LIKE scan)."""
        ...
    def search_entries(self, text: str, *, executor: str | None = None,
                       since: str | None = None, limit: int = 50) -> list[Hit]:
        """Entries holding every word of ``text`` (case-insensitive), newest first."""
        ...
    def delete_sessions(self, session_ids: Sequence[str]) -> None:
        """Remove whole sessions (ids as stored) and every row of theirs, at once."""
        ...
    def close(self) -> None: ...


def check_claimable(session: Session, from_states: Collection[str] | None) -> None:
    """Refuse to claim a session whose state cannot start the run asked for."""
    if from_states is not None and session.state not in from_states:
        raise InvalidTransition(f"session {session.id[:8]} is {session.state}; it cannot "
                                "take a follow-up now")


def column_not_found(name: str) -> NotFound:
    return NotFound(f"no board column {name!r}; see `aura board columns`")


def session_history(store: Store, session_id: str) -> dict[str, Any]:
    """The whole session as `aura session show --json` prints it. A stored entry that
    cannot be read back as an entry (text that is not JSON, written by a broken writer or
    damaged on disk; JSON that is not an entry) is shown as a ``raw`` entry holding that
    text, so every session can always be shown."""
    data = session_summary(store, store.get_session(session_id))
    data["entries"] = [_shown_entry(text) for text in store.entry_texts(data["id"])]
    return data


def _shown_entry(text: str) -> Entry:
    try:
        entry = json.loads(text)
    except (ValueError, RecursionError):
        entry = None
    if isinstance(entry, dict) and type(entry.get("kind")) is str:
        return cast(Entry, entry)
    return {"kind": "raw", "stream": "store", "text": text,
            "data": {"damaged": "this stored entry cannot be read back as an entry"}}


def session_summary(store: Store, session: Session) -> dict[str, Any]:
    """A session with its executions and transitions (no entries)."""
    data = session.to_json()
    data["executions"] = [e.to_json() for e in store.list_executions(session.id)]
    data["transitions"] = [t.to_json() for t in store.transitions(session.id)]
    return data


def ambiguous_prefix(prefix: str, ids: list[str]) -> NotFound:
    shown = ", ".join(i[:12] for i in ids[:5]) + (", …" if len(ids) > 5 else "")
    return NotFound(f"{prefix!r} matches several sessions ({shown}); type more of the id")


def session_not_found(session_id: str) -> NotFound:
    return NotFound(
        f"no session {session_id!r}; see `aura session list` for ids "
        "(a unique prefix is enough)"
    )


class MemoryStore(MemoryApprovals, MemoryAttempts, MemoryControls):
    """A Store in dicts: for tests and for callers that need no persistence."""

    def __init__(self) -> None:
        MemoryAttempts.__init__(self)
        self._approvals: dict[str, Approval] = {}
        self._controls: dict[str, Control] = {}
        self._sessions: dict[str, Session] = {}
        self._executions: dict[str, Execution] = {}
        self._transitions: list[Transition] = []
        self._entries: dict[str, dict[int, str]] = {}
        self._claims: dict[str, Claim] = {}
        self._tasks: dict[str, Task] = {}
        from aura.board import DEFAULT_BOARD_COLUMNS  # the board's rules: not on every start

        self._workers: dict[str, dict[str, Any]] = {}
        self._columns: dict[str, dict[str, Any]] = {
            c["name"].lower(): dict(c) for c in DEFAULT_BOARD_COLUMNS}

    def create_session(self, session: Session) -> None:
        self._sessions[session.id] = session

    def get_session(self, session_id: str) -> Session:
        if session_id in self._sessions:
            return self._sessions[session_id]
        check_prefix(session_id, "session")
        matches = [s for sid, s in self._sessions.items() if sid.startswith(session_id)]
        if len(matches) > 1 and session_id:
            raise ambiguous_prefix(session_id, sorted(s.id for s in matches))
        if len(matches) != 1 or not session_id:
            raise session_not_found(session_id)
        return matches[0]

    def update_session(self, session_id: str, **fields: Any) -> Session:
        session = replace(self.get_session(session_id), **fields)
        self._sessions[session.id] = session
        return session

    def list_sessions(self, limit: int | None = None, *, executor: str | None = None,
                      cwd: str | None = None) -> list[Session]:
        found = [
            s for s in self._sessions.values()
            if (executor is None or s.executor == executor) and (cwd is None or s.cwd == cwd)
        ]
        found.sort(key=lambda s: (s.created_at, s.id), reverse=True)
        return found[:limit] if limit is not None else found

    def create_execution(self, execution: Execution) -> None:
        self._executions[execution.id] = execution

    def update_execution(self, execution_id: str, **fields: Any) -> Execution:
        try:
            execution = replace(self._executions[execution_id], **fields)
        except KeyError:
            raise NotFound(f"no execution {execution_id!r}") from None
        self._executions[execution_id] = execution
        return execution

    def list_executions(self, session_id: str) -> list[Execution]:
        found = [e for e in self._executions.values() if e.session == session_id]
        # Creation order breaks ties: stages often start in the same millisecond.
        return sorted(found, key=lambda e: e.started_at)

    def running_executions(self) -> list[Execution]:
        return [e for e in self._executions.values()
                if e.status == ExecutionStatus.RUNNING.value]

    def record_transition(self, transition: Transition) -> None:
        self._transitions.append(transition)
        self.update_session(transition.session, state=transition.dst, updated_at=transition.at)

    def transitions(self, session_id: str) -> list[Transition]:
        return [t for t in self._transitions if t.session == session_id]

    def claim_session(self, claim: Claim, from_states: Collection[str] | None = None
                      ) -> Claim | None:
        held = self._claims.get(claim.session)
        if held is not None:
            return held
        check_claimable(self.get_session(claim.session), from_states)
        self._claims[claim.session] = claim
        return None

    def release_session(self, session_id: str, token: str) -> None:
        held = self._claims.get(session_id)
        if held is not None and held.token == token:
            del self._claims[session_id]

    def claims(self) -> list[Claim]:
        return list(self._claims.values())

    def append_entries(self, session_id: str, rows: Sequence[EntryRow]) -> None:
        bucket = self._entries.setdefault(session_id, {})
        last = max(bucket, default=0)
        fresh = [row for row in rows if row[0] > last]
        seqs = [row[0] for row in fresh]
        if any(b <= a for a, b in itertools.pairwise(seqs)):
            raise StoreError(f"entries of session {session_id} must have increasing seq")
        for seq, _execution, _kind, body in fresh:
            bucket[seq] = body

    def entries(self, session_id: str, after_seq: int = 0, limit: int | None = None
                ) -> list[Entry]:
        bucket = self._entries.get(session_id, {})
        seqs = sorted(s for s in bucket if s > after_seq)
        if limit is not None:
            seqs = seqs[:limit]
        return [json.loads(bucket[s]) for s in seqs]

    def entry_texts(self, session_id: str) -> list[str]:
        bucket = self._entries.get(session_id, {})
        return [bucket[seq] for seq in sorted(bucket)]

    def last_seq(self, session_id: str) -> int:
        return max(self._entries.get(session_id, {0: ""}), default=0)

    def appender(self, session_id: str | None = None) -> EntryAppender:
        return SyncAppender(self, session_id)

    def close(self) -> None:
        pass

    def board_columns(self) -> list[dict[str, Any]]:
        return sorted((dict(c) for c in self._columns.values()),
                      key=lambda c: (c["position"], c["name"]))

    def put_board_column(self, column: dict[str, Any]) -> None:
        self._columns[column["name"].lower()] = {k: column.get(k) for k in
                                                 ("name", "position", "state", "wip_limit")}

    def delete_board_column(self, name: str) -> None:
        if self._columns.pop(name.lower(), None) is None:
            raise column_not_found(name)

    def worker_identity(self, name: str) -> dict[str, Any] | None:
        found = self._workers.get(name)
        return dict(found) if found is not None else None

    def worker_identities(self) -> list[dict[str, Any]]:
        return [dict(self._workers[n]) for n in sorted(self._workers)]

    def put_worker_identity(self, identity: dict[str, Any]) -> None:
        self._workers[identity["name"]] = dict(identity)

    def create_task(self, task: Task) -> None:
        self._tasks[task.session] = replace(task, after=tuple(dict.fromkeys(task.after)))

    def tasks(self, pending: bool = False) -> list[Task]:
        found = sorted(self._tasks.values(), key=lambda t: t.created_at)
        return [t for t in found if not pending or self._sessions[t.session].state == "queued"]

    def task_states(self) -> dict[str, str]:
        ids = {i for t in self.tasks(pending=True) for i in (t.session, *t.after)}
        return {i: self._sessions[i].state for i in ids if i in self._sessions}

    def update_task(self, session_id: str, **fields: Any) -> None:
        if session_id not in self._tasks:
            raise task_not_found(session_id)
        self._tasks[session_id] = replace(self._tasks[session_id], **fields)

    def claim_task(self, session_id: str, claimer: str, at: str) -> bool:
        task = self._tasks.get(session_id)
        session = self._sessions.get(session_id)
        if task is None or task.claimed_by is not None or session is None or \
                session.state != "queued":
            return False
        self._tasks[session_id] = replace(task, claimed_by=claimer, claimed_at=at,
                                          child_pid=None, child_started=None)
        return True

    def unclaim_task(self, session_id: str, claimer: str) -> bool:
        task = self._tasks.get(session_id)
        if task is None or task.claimed_by != claimer:
            return False
        self._tasks[session_id] = replace(task, claimed_by=None, claimed_at=None,
                                          child_pid=None, child_started=None)
        return True

    def delete_task(self, session_id: str) -> None:
        if self._tasks.pop(session_id, None) is None:
            raise task_not_found(session_id)

    def working_sessions(self) -> list[str]:
        remote = {t.session for t in self._tasks.values() if t.target is not None}
        return [s.id for s in self._sessions.values()
                if s.state in WORKING and s.id not in remote]

    def state_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for session in self._sessions.values():
            counts[session.state] = counts.get(session.state, 0) + 1
        return counts

    fts = True  # the same matching as the full-text index: every word, any case

    def search_entries(self, text: str, *, executor: str | None = None,
                       since: str | None = None, limit: int = 50) -> list[Hit]:
        return memory_search(self._sessions, self._entries, text, executor, since, limit)

    def delete_sessions(self, session_ids: Sequence[str]) -> None:
        gone = set(session_ids)
        for sid in gone:
            self._sessions.pop(sid, None)
            self._entries.pop(sid, None)
            self._claims.pop(sid, None)
            self._tasks.pop(sid, None)
        self._executions = {k: e for k, e in self._executions.items() if e.session not in gone}
        self._transitions = [t for t in self._transitions if t.session not in gone]
        self._approvals = {k: a for k, a in self._approvals.items() if a.session not in gone}
        for sid in gone:
            self._attempts.pop(sid, None)
        kept = {a.group for a in self._attempts.values()}
        self._groups = {k: g for k, g in self._groups.items() if k in kept}
