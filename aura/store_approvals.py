"""Approval requests as stored rows: the ``Approval`` record and the store methods that
keep them (``MemoryApprovals`` for MemoryStore, ``SQLiteApprovals`` for SQLiteStore).

Any process on the same store can answer a pending request; the first answer wins because
answering is one conditional update (``… WHERE state = 'pending'``), and a later answer is
refused with ``ApprovalClosed`` saying who answered first, or that the request expired or
was lost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from aura.approvals import ApprovalKind, ApprovalOption, ApprovalState
from aura.errors import ApprovalClosed, NotFound, StoreError
from aura.store_ids import check_prefix

if TYPE_CHECKING:  # the SQLite mixin only names its types; `import sqlite3` is not free
    import sqlite3

APPROVAL_COLUMNS = ("id", "session", "execution", "native_id", "kind", "title", "detail",
                    "options", "state", "created_at", "answered_at", "answered_by",
                    "message", "option", "choice")


@dataclass(frozen=True, slots=True)
class Approval:
    """One request an agent made, and what became of it."""

    id: str
    session: str
    execution: str
    native_id: str  # the agent's own request id
    kind: ApprovalKind
    title: str
    created_at: str
    detail: dict[str, Any] = field(default_factory=dict)
    options: tuple[ApprovalOption, ...] = ()
    state: ApprovalState = ApprovalState.PENDING
    answered_at: str | None = None
    answered_by: str | None = None  # "alice@box (tty)", "policy: allow tool Read", "timeout"
    message: str | None = None  # told to the agent with a deny
    option: str | None = None  # the agent's option id the answer picked
    choice: str | None = None  # allow, allow_session or deny (aura.approvals.Choice)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ApprovalKind(self.kind))
        object.__setattr__(self, "state", ApprovalState(self.state))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "session": self.session, "execution": self.execution,
                "native_id": self.native_id, "kind": self.kind.value, "title": self.title,
                "detail": self.detail, "options": [o.to_json() for o in self.options],
                "state": self.state.value, "created_at": self.created_at,
                "answered_at": self.answered_at, "by": self.answered_by,
                "message": self.message, "option": self.option, "choice": self.choice}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Approval:
        """The record ``to_json`` wrote (an ``approval`` entry's data, a worker's answer);
        ValueError when it is not one."""
        try:
            text: dict[str, Any] = {k: data[k] for k in (
                "id", "session", "execution", "native_id", "title", "created_at")}
            if not all(isinstance(v, str) and v for k, v in text.items() if k != "title") \
                    or not isinstance(text["title"], str):
                raise ValueError("ids, title and created_at are strings")
            optional: dict[str, Any] = {k: data.get(src) for k, src in (
                ("answered_at", "answered_at"), ("answered_by", "by"),
                ("message", "message"), ("option", "option"), ("choice", "choice"))}
            if any(v is not None and not isinstance(v, str) for v in optional.values()):
                raise ValueError("answer fields are strings")
            detail = data.get("detail") or {}
            if not isinstance(detail, dict):
                raise ValueError("detail is an object")
            options = tuple(ApprovalOption.from_json(o) for o in data.get("options") or [])
            return cls(**text, kind=data["kind"], state=data["state"], detail=detail,
                       options=options, **optional)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not an approval record ({exc})") from None

    def closed_message(self) -> str:
        """Why an answer to this request comes too late (one line)."""
        short = self.id[:8]
        if self.state is ApprovalState.LOST:
            return (f"approval {short} is lost: the run that asked went away before anyone "
                    f"answered ({self.answered_by or 'ended'}, {self.answered_at}); "
                    "nothing was sent to the agent")
        if self.state is ApprovalState.EXPIRED:
            return (f"approval {short} expired at {self.answered_at} (nobody answered in "
                    "time) and was denied")
        return (f"approval {short} was already answered: {self.state.value} by "
                f"{self.answered_by or '?'} at {self.answered_at}")


def approval_not_found(approval_id: str) -> NotFound:
    return NotFound(f"no approval request {approval_id!r}; see `aura approvals` for the "
                    "pending ones (a unique id prefix is enough)")


def _ambiguous(prefix: str, ids: list[str]) -> NotFound:
    shown = ", ".join(i[:12] for i in ids[:5])
    return NotFound(f"{prefix!r} matches several approval requests ({shown}); type more "
                    "of the id")


def _answered(approval: Approval, state: ApprovalState, by: str, at: str,
              message: str | None, option: str | None, choice: str | None) -> Approval:
    if state is ApprovalState.PENDING:
        raise ValueError("an answer moves a request out of pending")
    return replace(approval, state=state, answered_by=by, answered_at=at, message=message,
                   option=option, choice=choice)


class MemoryApprovals:
    """Approval rows in a dict (mixed into MemoryStore)."""

    _approvals: dict[str, Approval]

    def create_approval(self, approval: Approval) -> None:
        self._approvals[approval.id] = approval

    def get_approval(self, approval_id: str) -> Approval:
        if approval_id in self._approvals:
            return self._approvals[approval_id]
        check_prefix(approval_id, "approval")
        found = sorted(i for i in self._approvals if approval_id and i.startswith(approval_id))
        if len(found) > 1:
            raise _ambiguous(approval_id, found)
        if not found:
            raise approval_not_found(approval_id)
        return self._approvals[found[0]]

    def list_approvals(self, *, state: ApprovalState | None = None,
                       session_id: str | None = None, execution_id: str | None = None
                       ) -> list[Approval]:
        rows = [a for a in self._approvals.values()
                if (state is None or a.state is state)
                and (session_id is None or a.session == session_id)
                and (execution_id is None or a.execution == execution_id)]
        return sorted(rows, key=lambda a: (a.created_at, a.id))

    def answer_approval(self, approval_id: str, state: ApprovalState, *, by: str, at: str,
                        message: str | None = None, option: str | None = None,
                        choice: str | None = None) -> Approval:
        current = self.get_approval(approval_id)
        if current.state is not ApprovalState.PENDING:
            raise ApprovalClosed(current.closed_message())
        answered = _answered(current, state, by, at, message, option, choice)
        self._approvals[current.id] = answered
        return answered


class _Database(Protocol):
    _db: sqlite3.Connection

    def _read(self, sql: str, params: Any = ()) -> sqlite3.Cursor: ...
    def _write(self) -> Any: ...


def _approval(row: sqlite3.Row) -> Approval:
    data = dict(row)
    try:
        data["detail"] = json.loads(data["detail"] or "{}")
        data["options"] = tuple(ApprovalOption.from_json(o)
                                for o in json.loads(data["options"] or "[]"))
        return Approval(**data)
    except (ValueError, KeyError, TypeError):
        raise StoreError(f"approval request {data['id']} is damaged in the database "
                         "(written by a newer aura?)") from None


class SQLiteApprovals:
    """Approval rows in the ``approvals`` table (mixed into SQLiteStore)."""

    def create_approval(self: _Database, approval: Approval) -> None:
        values = [getattr(approval, c) for c in APPROVAL_COLUMNS]
        values[APPROVAL_COLUMNS.index("kind")] = approval.kind.value
        values[APPROVAL_COLUMNS.index("state")] = approval.state.value
        values[APPROVAL_COLUMNS.index("detail")] = json.dumps(approval.detail)
        values[APPROVAL_COLUMNS.index("options")] = json.dumps(
            [o.to_json() for o in approval.options])
        with self._write():
            self._db.execute(
                f"INSERT INTO approvals ({', '.join(APPROVAL_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(APPROVAL_COLUMNS))})", values)

    def get_approval(self: _Database, approval_id: str) -> Approval:
        row = self._read("SELECT * FROM approvals WHERE id = ?", (approval_id,)).fetchone()
        if row is None:
            check_prefix(approval_id, "approval")
            pattern = approval_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows = self._read("SELECT * FROM approvals WHERE id LIKE ? ESCAPE '\\' LIMIT 6",
                              (pattern + "%",)).fetchall()
            if len(rows) > 1:
                raise _ambiguous(approval_id, [r["id"] for r in rows])
            row = rows[0] if rows else None
        if row is None:
            raise approval_not_found(approval_id)
        return _approval(row)

    def list_approvals(self: _Database, *, state: ApprovalState | None = None,
                       session_id: str | None = None, execution_id: str | None = None
                       ) -> list[Approval]:
        where, params = [], []
        for column, value in (("state", state.value if state else None),
                              ("session", session_id), ("execution", execution_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = "SELECT * FROM approvals" + (" WHERE " + " AND ".join(where) if where else "")
        return [_approval(r) for r in self._read(sql + " ORDER BY created_at, id", params)]

    def answer_approval(self: _Database, approval_id: str, state: ApprovalState, *,
                        by: str, at: str, message: str | None = None,
                        option: str | None = None, choice: str | None = None) -> Approval:
        current = SQLiteApprovals.get_approval(self, approval_id)
        answered = _answered(current, state, by, at, message, option, choice)
        with self._write():
            changed = self._db.execute(
                "UPDATE approvals SET state = ?, answered_by = ?, answered_at = ?, "
                "message = ?, option = ?, choice = ? WHERE id = ? AND state = 'pending'",
                (state.value, by, at, message, option, choice, current.id)).rowcount
        if not changed:  # someone else answered first, between our read and our write
            raise ApprovalClosed(SQLiteApprovals.get_approval(self, current.id)
                                 .closed_message())
        return answered

