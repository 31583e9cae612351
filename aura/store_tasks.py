"""Queued tasks in the store: a task is a session waiting in ``queued`` with its run
options, a title, where it should run and the sessions it must wait for.

``Task`` is the row; ``TaskTables`` is the SQLite side (the tables of migration 6 and
their queries), mixed into ``SQLiteStore``. ``claim_task`` is the one step that makes a
queued task someone's to start: a conditional UPDATE inside ``BEGIN IMMEDIATE``, so of two
schedulers (or a scheduler and `aura task start`) exactly one gets it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aura.contracts import State
from aura.errors import StoreError

if TYPE_CHECKING:  # the store module is read on every start; sqlite3 is not needed there
    import sqlite3

from aura.errors import NotFound

# The states in which a session's agent or scripts are at work (review aside: a session
# rests there once its reviewer is done).
WORKING = ("prepare_workspace", "setup", "coding_initial", "coding_follow_up", "cleanup")
TASK_FIELDS = ("title", "target", "held", "released", "claimed_by", "claimed_at",
               "child_pid", "child_started")


@dataclass(frozen=True, slots=True)
class Task:
    session: str
    title: str
    created_at: str
    target: str | None = None  # --on WORKER|label:X; None runs on this machine
    held: bool = False  # parked by hand: the scheduler leaves it
    released: bool = False  # failed or cancelled dependencies no longer block it
    claimed_by: str | None = None  # "pid:start" of whoever is starting it
    claimed_at: str | None = None
    child_pid: int | None = None  # the aura process that runs it
    child_started: str | None = None
    after: tuple[str, ...] = ()  # sessions that must be done first

    def to_json(self) -> dict[str, Any]:
        return {"session": self.session, "title": self.title, "created_at": self.created_at,
                "target": self.target, "held": self.held, "released": self.released,
                "claimed_by": self.claimed_by, "claimed_at": self.claimed_at,
                "child_pid": self.child_pid, "after": list(self.after)}


def task_not_found(session_id: str) -> NotFound:
    return NotFound(f"no queued task {session_id!r}; see `aura task list`")


def migration_6(db: sqlite3.Connection) -> None:
    """Tasks and their dependencies (self-contained: only references sessions)."""
    db.execute("""
        CREATE TABLE IF NOT EXISTS tasks (
            session TEXT PRIMARY KEY REFERENCES sessions (id), title TEXT NOT NULL,
            created_at TEXT NOT NULL, target TEXT, held INTEGER NOT NULL DEFAULT 0,
            released INTEGER NOT NULL DEFAULT 0, claimed_by TEXT, claimed_at TEXT,
            child_pid INTEGER, child_started TEXT
        )""")
    db.execute("""
        CREATE TABLE IF NOT EXISTS task_deps (
            task TEXT NOT NULL REFERENCES tasks (session) ON DELETE CASCADE,
            after TEXT NOT NULL, PRIMARY KEY (task, after)
        )""")


class TaskTables:
    """The task methods of the Store protocol, on SQLite (see ``SQLiteStore``)."""

    _db: sqlite3.Connection

    def _write(self) -> Any:
        raise NotImplementedError

    def _read(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        raise NotImplementedError

    def create_task(self, task: Task) -> None:
        with self._write():
            self._db.execute(
                "INSERT INTO tasks (session, title, created_at, target, held, released) "
                "VALUES (?, ?, ?, ?, ?, ?)", (task.session, task.title, task.created_at,
                                              task.target, task.held, task.released))
            self._db.executemany("INSERT OR IGNORE INTO task_deps (task, after) VALUES (?, ?)",
                                 [(task.session, after) for after in task.after])

    def tasks(self, pending: bool = False) -> list[Task]:
        # pending: only tasks whose session is still queued (what the scheduler reads on
        # every pass; finished tasks pile up over time).
        where = (" WHERE session IN (SELECT id FROM sessions WHERE state = 'queued')"
                 if pending else "")
        deps: dict[str, list[str]] = {}
        for task, after in self._read("SELECT task, after FROM task_deps" +
                                      where.replace("session IN", "task IN") +
                                      " ORDER BY rowid"):
            deps.setdefault(task, []).append(after)
        rows = self._read("SELECT session, title, created_at, " + ", ".join(TASK_FIELDS[1:]) +
                          " FROM tasks" + where + " ORDER BY created_at, rowid")
        return [Task(r[0], r[1], r[2], target=r[3], held=bool(r[4]), released=bool(r[5]),
                     claimed_by=r[6], claimed_at=r[7], child_pid=r[8], child_started=r[9],
                     after=tuple(deps.get(r[0], ()))) for r in rows]

    def update_task(self, session_id: str, **fields: Any) -> None:
        unknown = set(fields) - set(TASK_FIELDS)
        if unknown:
            raise ValueError(f"unknown task fields: {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self._write():
            changed = self._db.execute(f"UPDATE tasks SET {assignments} WHERE session = ?",
                                       [*fields.values(), session_id]).rowcount
        if not changed:
            raise task_not_found(session_id)

    def claim_task(self, session_id: str, claimer: str, at: str) -> bool:
        with self._write():
            return bool(self._db.execute(
                "UPDATE tasks SET claimed_by = ?, claimed_at = ?, child_pid = NULL, "
                "child_started = NULL WHERE session = ? AND claimed_by IS NULL AND "
                "EXISTS (SELECT 1 FROM sessions WHERE id = ? AND state = 'queued')",
                (claimer, at, session_id, session_id)).rowcount)

    def unclaim_task(self, session_id: str, claimer: str) -> bool:
        with self._write():
            return bool(self._db.execute(
                "UPDATE tasks SET claimed_by = NULL, claimed_at = NULL, child_pid = NULL, "
                "child_started = NULL WHERE session = ? AND claimed_by = ?",
                (session_id, claimer)).rowcount)

    def delete_task(self, session_id: str) -> None:
        with self._write():
            self._db.execute("DELETE FROM task_deps WHERE task = ?", (session_id,))
            if not self._db.execute("DELETE FROM tasks WHERE session = ?",
                                    (session_id,)).rowcount:
                raise task_not_found(session_id)

    def task_states(self) -> dict[str, str]:
        """The state of every queued task's session and of every session it waits for."""
        return dict(self._read(
            "SELECT id, state FROM sessions WHERE id IN (SELECT session FROM tasks t JOIN "
            "sessions q ON q.id = t.session AND q.state = 'queued' UNION SELECT after FROM "
            "task_deps d JOIN sessions q ON q.id = d.task AND q.state = 'queued')"))

    def working_sessions(self) -> list[str]:
        """Sessions in a coding-side state that run on this machine (not tasks sent to a
        worker with --on, whose sessions only mirror the remote run)."""
        return [r[0] for r in self._read(
            "SELECT id FROM sessions WHERE state IN (" + ", ".join("?" * len(WORKING)) +
            ") AND id NOT IN (SELECT session FROM tasks WHERE target IS NOT NULL)", WORKING)]

    def state_counts(self) -> dict[str, int]:
        counts = dict(self._read("SELECT state, COUNT(*) FROM sessions GROUP BY state"))
        unknown = sorted(set(counts) - {s.value for s in State})
        if unknown:  # a newer aura's row, or one edited by hand: one line, no traceback
            raise StoreError(f"a session has a state this aura does not know "
                             f"({unknown[0]!r}); is the database from a newer aura?")
        return counts
