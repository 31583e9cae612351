"""The SQLite schema: numbered migrations, recorded in ``PRAGMA user_version`` and run in
order under the write lock (so two auras opening a new database at once do not race)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from aura.store_attempts import migration_7
from aura.store_history import migration_8
from aura.store_tasks import migration_6


def _script(db: sqlite3.Connection, sql: str) -> None:
    # Not executescript(): it commits first, which would split a migration from its
    # user_version bump.
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


def _migration_1(db: sqlite3.Connection) -> None:
    _script(
        db,
        """
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY, executor TEXT NOT NULL, state TEXT NOT NULL,
            cwd TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
            prompt TEXT NOT NULL DEFAULT '', model TEXT, native_session_id TEXT,
            options TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX sessions_created ON sessions (created_at);
        CREATE TABLE executions (
            id TEXT PRIMARY KEY, session TEXT NOT NULL REFERENCES sessions (id),
            stage TEXT NOT NULL, status TEXT NOT NULL, exit_code INTEGER,
            started_at TEXT NOT NULL, ended_at TEXT, host TEXT NOT NULL DEFAULT 'local',
            pid INTEGER, pid_started TEXT, executor TEXT, reason TEXT
        );
        CREATE INDEX executions_session ON executions (session);
        CREATE INDEX executions_status ON executions (status);
        CREATE TABLE transitions (
            id INTEGER PRIMARY KEY AUTOINCREMENT, session TEXT NOT NULL, execution TEXT,
            src TEXT, dst TEXT NOT NULL, at TEXT NOT NULL, reason TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX transitions_session ON transitions (session);
        CREATE TABLE entries (
            session TEXT NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,
            bodies TEXT NOT NULL
        );
        CREATE UNIQUE INDEX entries_by_seq ON entries (session, first_seq);
        """
    )


def _migration_2(db: sqlite3.Connection) -> None:
    """The board's user columns, starting with the default set."""
    from aura.board import DEFAULT_BOARD_COLUMNS  # once per database, not on every start

    _script(
        db,
        """
        CREATE TABLE board_columns (
            name TEXT PRIMARY KEY COLLATE NOCASE, position INTEGER NOT NULL,
            state TEXT NOT NULL, wip_limit INTEGER
        )
        """
    )
    db.executemany("INSERT INTO board_columns (name, position, state, wip_limit) "
                   "VALUES (:name, :position, :state, :wip_limit)", DEFAULT_BOARD_COLUMNS)


def _migration_3(db: sqlite3.Connection) -> None:
    """Claims: which run holds a session (one at a time, taken in one transaction)."""
    _script(
        db,
        """
        CREATE TABLE session_claims (
            session TEXT PRIMARY KEY, token TEXT NOT NULL, host TEXT NOT NULL,
            pid INTEGER, pid_started TEXT, at TEXT NOT NULL
        )
        """
    )


def _migration_4(db: sqlite3.Connection) -> None:
    """Approval requests (aura.store_approvals): one row per request an agent made."""
    _script(
        db,
        """
        CREATE TABLE approvals (
            id TEXT PRIMARY KEY, session TEXT NOT NULL, execution TEXT NOT NULL,
            native_id TEXT NOT NULL, kind TEXT NOT NULL, title TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}', options TEXT NOT NULL DEFAULT '[]',
            state TEXT NOT NULL, created_at TEXT NOT NULL, answered_at TEXT,
            answered_by TEXT, message TEXT, option TEXT, choice TEXT
        );
        CREATE INDEX approvals_state ON approvals (state);
        CREATE INDEX approvals_session ON approvals (session)
        """
    )


def _migration_5(db: sqlite3.Connection) -> None:
    """Enrolled workers of a coordinator: each one's key, kept only as its SHA-256."""
    _script(
        db,
        """
        CREATE TABLE workers (
            name TEXT PRIMARY KEY, key_hash TEXT, enrolled_at TEXT, revoked_at TEXT,
            re_enroll INTEGER NOT NULL DEFAULT 0
        )
        """
    )


def _migration_9(db: sqlite3.Connection) -> None:
    """Controls of running sessions (aura.store_controls, read only when a database is
    made or upgraded)."""
    from aura.store_controls import migration_9

    migration_9(db)


# Append new migrations; never edit a released one. The n-th entry makes user_version n:
# 6 tasks, 7 attempt groups, 8 the search index, 9 the controls of running sessions.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _migration_1, _migration_2, _migration_3, _migration_4, _migration_5, migration_6,
    migration_7, migration_8, _migration_9]
