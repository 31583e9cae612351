"""Controls: what other processes ask of a running session (`aura session steer`,
`aura session interrupt`), as stored rows the run's own aura process picks up.

A control is written ``pending`` by whoever asks; the running process polls the pending
rows of its session (one indexed query) and moves each one on exactly once:

- ``delivered``: the text went into the running turn (steer), the turn was interrupted,
  or a queued follow-up was started;
- ``queued``: the agent cannot take text mid-turn; the run continues the same agent
  session with it once the current turn ends;
- ``refused``: it could not be done (``note`` says why: the agent cannot be interrupted,
  the run ended first…).

Moving a row is one conditional update (``… WHERE state = ?``), so of the run and the
asker (who refuses a row nobody picked up because the run went away) exactly one wins.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from aura.errors import StoreError

if TYPE_CHECKING:  # named only in annotations; `import sqlite3` is not free
    import sqlite3

KINDS = ("steer", "interrupt", "follow_up")
STATES = ("pending", "delivered", "queued", "refused")
CONTROL_COLUMNS = ("id", "session", "execution", "kind", "text", "state", "created_at",
                   "handled_at", "by", "note")


@dataclass(frozen=True, slots=True)
class Control:
    """One request to a running session and what became of it."""

    id: str
    session: str
    kind: str  # steer | interrupt | follow_up
    created_at: str
    by: str  # "alice@box (aura session steer)"
    text: str = ""
    execution: str | None = None  # the execution that handled it
    state: str = "pending"
    handled_at: str | None = None
    note: str | None = None  # why it was refused, or how it was delivered

    def __post_init__(self) -> None:
        if self.kind not in KINDS or self.state not in STATES:
            raise StoreError(f"control {self.id} has a kind or state this aura does not "
                             f"know ({self.kind!r}, {self.state!r})")

    def to_json(self) -> dict[str, Any]:
        return {c: getattr(self, c) for c in CONTROL_COLUMNS}


def _moved(control: Control, state: str, at: str, note: str | None,
           execution: str | None) -> Control:
    return replace(control, state=state, handled_at=at, note=note,
                   execution=execution or control.execution)


class MemoryControls:
    """Control rows in a dict (mixed into MemoryStore)."""

    _controls: dict[str, Control]

    def create_control(self, control: Control) -> None:
        self._controls[control.id] = control

    def get_control(self, control_id: str) -> Control:
        if control_id not in self._controls:
            raise StoreError(f"no control {control_id!r}")
        return self._controls[control_id]

    def list_controls(self, session_id: str, state: str | None = None) -> list[Control]:
        rows = [c for c in self._controls.values()
                if c.session == session_id and (state is None or c.state == state)]
        return sorted(rows, key=lambda c: (c.created_at, c.id))

    def move_control(self, control_id: str, from_state: str, state: str, *, at: str,
                     note: str | None = None, execution: str | None = None) -> bool:
        current = self.get_control(control_id)
        if current.state != from_state:
            return False
        self._controls[control_id] = _moved(current, state, at, note, execution)
        return True


class _Database(Protocol):
    _db: sqlite3.Connection

    def _read(self, sql: str, params: Any = ()) -> sqlite3.Cursor: ...
    def _write(self) -> Any: ...


def _control(row: sqlite3.Row) -> Control:
    return Control(**dict(row))


class SQLiteControls:
    """Control rows in the ``controls`` table (mixed into SQLiteStore)."""

    def create_control(self: _Database, control: Control) -> None:
        with self._write():
            self._db.execute(
                f"INSERT INTO controls ({', '.join(CONTROL_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(CONTROL_COLUMNS))})",
                [getattr(control, c) for c in CONTROL_COLUMNS])

    def get_control(self: _Database, control_id: str) -> Control:
        row = self._read("SELECT * FROM controls WHERE id = ?", (control_id,)).fetchone()
        if row is None:
            raise StoreError(f"no control {control_id!r}")
        return _control(row)

    def list_controls(self: _Database, session_id: str, state: str | None = None
                      ) -> list[Control]:
        sql = "SELECT * FROM controls WHERE session = ?"
        params: list[str] = [session_id]
        if state is not None:
            sql += " AND state = ?"
            params.append(state)
        return [_control(r) for r in self._read(sql + " ORDER BY created_at, id", params)]

    def move_control(self: _Database, control_id: str, from_state: str, state: str, *,
                     at: str, note: str | None = None, execution: str | None = None
                     ) -> bool:
        with self._write():
            changed = self._db.execute(
                "UPDATE controls SET state = ?, handled_at = ?, note = ?, "
                "execution = COALESCE(?, execution) WHERE id = ? AND state = ?",
                (state, at, note, execution, control_id, from_state)).rowcount
        return bool(changed)


def migration_9(db: sqlite3.Connection) -> None:
    """Controls of running sessions (steer, interrupt, queued follow-ups)."""
    db.execute("""
        CREATE TABLE IF NOT EXISTS controls (
            id TEXT PRIMARY KEY, session TEXT NOT NULL, execution TEXT,
            kind TEXT NOT NULL, text TEXT NOT NULL DEFAULT '', state TEXT NOT NULL,
            created_at TEXT NOT NULL, handled_at TEXT, by TEXT NOT NULL, note TEXT
        )""")
    db.execute("CREATE INDEX IF NOT EXISTS controls_session ON controls (session, state)")
