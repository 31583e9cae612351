"""Groups of attempts in the store: one prompt run N times (`aura run -e A -e B
--attempts N`), each attempt its own session in its own worktree.

``Group`` and ``Attempt`` are the rows; ``AttemptTables`` is the SQLite side (migration 7),
mixed into ``SQLiteStore``; ``MemoryAttempts`` the same in dicts for ``MemoryStore``. An
attempt's ``chosen`` is None until one attempt of its group is landed: then that one is
True and every other False (``choose``, one transaction).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the store module is read on every start; sqlite3 is not needed there
    import sqlite3


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    prompt: str
    created_at: str
    cwd: str  # where the run was started (the user's checkout, or inside it)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "prompt": self.prompt, "created_at": self.created_at,
                "cwd": self.cwd}


@dataclass(frozen=True, slots=True)
class Attempt:
    group: str
    number: int  # 1..N in the order they were queued
    session: str
    executor: str
    chosen: bool | None = None  # None: nothing landed yet; True: landed; False: not chosen

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "number": self.number, "session": self.session,
                "executor": self.executor, "chosen": self.chosen}


def migration_7(db: sqlite3.Connection) -> None:
    """Groups of attempts (self-contained: only references sessions)."""
    db.execute("""
        CREATE TABLE IF NOT EXISTS attempt_groups (
            id TEXT PRIMARY KEY, prompt TEXT NOT NULL, created_at TEXT NOT NULL,
            cwd TEXT NOT NULL
        )""")
    db.execute("""
        CREATE TABLE IF NOT EXISTS attempts (
            session TEXT PRIMARY KEY REFERENCES sessions (id),
            grp TEXT NOT NULL REFERENCES attempt_groups (id), number INTEGER NOT NULL,
            executor TEXT NOT NULL, chosen INTEGER, UNIQUE (grp, number)
        )""")


def _chosen(value: int | None) -> bool | None:
    return None if value is None else bool(value)


class AttemptTables:
    """The group methods of the Store protocol, on SQLite (see ``SQLiteStore``)."""

    _db: sqlite3.Connection

    def _write(self) -> Any:
        raise NotImplementedError

    def _read(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        raise NotImplementedError

    def create_group(self, group: Group) -> None:
        with self._write():
            self._db.execute("INSERT INTO attempt_groups (id, prompt, created_at, cwd) "
                             "VALUES (?, ?, ?, ?)",
                             (group.id, group.prompt, group.created_at, group.cwd))

    def add_attempt(self, attempt: Attempt) -> None:
        with self._write():
            self._db.execute("INSERT INTO attempts (session, grp, number, executor, chosen) "
                             "VALUES (?, ?, ?, ?, ?)",
                             (attempt.session, attempt.group, attempt.number,
                              attempt.executor, attempt.chosen))

    def groups(self) -> list[Group]:
        """Every group, newest first."""
        return [Group(*row) for row in self._read(
            "SELECT id, prompt, created_at, cwd FROM attempt_groups "
            "ORDER BY created_at DESC, rowid DESC")]

    def attempts(self, group_id: str) -> list[Attempt]:
        return [Attempt(r[0], r[1], r[2], r[3], _chosen(r[4])) for r in self._read(
            "SELECT grp, number, session, executor, chosen FROM attempts WHERE grp = ? "
            "ORDER BY number", (group_id,))]

    def attempt_of(self, session_id: str) -> Attempt | None:
        rows = list(self._read("SELECT grp, number, session, executor, chosen FROM attempts "
                               "WHERE session = ?", (session_id,)))
        return Attempt(rows[0][0], rows[0][1], rows[0][2], rows[0][3],
                       _chosen(rows[0][4])) if rows else None

    def choose_attempt(self, group_id: str, session_id: str) -> None:
        with self._write():
            self._db.execute("UPDATE attempts SET chosen = (session = ?) WHERE grp = ?",
                             (session_id, group_id))


class MemoryAttempts:
    """The group methods of the Store protocol, in dicts (see ``MemoryStore``)."""

    def __init__(self) -> None:
        self._groups: dict[str, Group] = {}
        self._attempts: dict[str, Attempt] = {}

    def create_group(self, group: Group) -> None:
        self._groups[group.id] = group

    def add_attempt(self, attempt: Attempt) -> None:
        self._attempts[attempt.session] = attempt

    def groups(self) -> list[Group]:
        return sorted(self._groups.values(), key=lambda g: g.created_at, reverse=True)

    def attempts(self, group_id: str) -> list[Attempt]:
        return sorted((a for a in self._attempts.values() if a.group == group_id),
                      key=lambda a: a.number)

    def attempt_of(self, session_id: str) -> Attempt | None:
        return self._attempts.get(session_id)

    def choose_attempt(self, group_id: str, session_id: str) -> None:
        for key, attempt in self._attempts.items():
            if attempt.group == group_id:
                self._attempts[key] = replace(attempt, chosen=attempt.session == session_id)
