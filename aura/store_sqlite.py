"""The durable Store: one SQLite file in WAL mode.

- WAL + busy_timeout so a reader never blocks the writer and two aura processes can write
  at once (each write waits for the other's transaction instead of failing).
- Schema changes are numbered migrations recorded in ``PRAGMA user_version``.
- Entries are appended in batches inside one transaction (per-row commits are ~8x slower)
  and read back in pages by seq.
- A corrupt or unreadable file is a StoreError naming the path; nothing is overwritten.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import sqlite3
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from aura.contracts import Entry, Execution, ExecutionStatus, Session, Transition
from aura.errors import NotFound, StoreError
from aura.store import (
    Claim,
    EntryAppender,
    EntryRow,
    ambiguous_prefix,
    check_claimable,
    column_not_found,
    session_not_found,
)
from aura.store_approvals import SQLiteApprovals
from aura.store_attempts import AttemptTables
from aura.store_controls import SQLiteControls
from aura.store_history import HistoryTables
from aura.store_ids import check_prefix
from aura.store_schema import MIGRATIONS
from aura.store_tasks import TaskTables
from aura.store_workers import SQLiteWorkers
from aura.store_writer import ThreadedAppender

BUSY_TIMEOUT_MS = 30_000

_SESSION_COLUMNS = ("id", "executor", "state", "cwd", "created_at", "updated_at", "prompt",
                    "model", "native_session_id", "options")
_EXECUTION_COLUMNS = ("id", "session", "stage", "status", "exit_code", "started_at",
                      "ended_at", "host", "pid", "pid_started", "executor", "reason")

_CLAIM_COLUMNS = "session, token, host, pid, pid_started, at"


def _session(row: sqlite3.Row) -> Session:
    data = dict(row)
    try:
        data["options"] = json.loads(data["options"] or "{}")
    except ValueError:
        raise StoreError(f"session {data['id']} has damaged options in the database; "
                         "its settings are lost, the rest is readable with "
                         "`aura session show --json`") from None
    try:
        return Session(**data)
    except ValueError:
        raise _unknown_state("session", data["id"], data["state"]) from None


def _execution(row: sqlite3.Row) -> Execution:
    data = dict(row)
    try:
        return Execution(**data)
    except ValueError:
        raise _unknown_state("execution", data["id"], f"{data['stage']}/{data['status']}"
                             ) from None


def _transition(row: sqlite3.Row) -> Transition:
    try:
        return Transition(*row)
    except ValueError:
        raise _unknown_state("transition of session", row[0], f"{row[1]} → {row[2]}"
                             ) from None


def _unknown_state(what: str, ident: str, value: str) -> StoreError:
    # A row written by a newer aura, or edited by hand: say which, never a traceback.
    return StoreError(f"{what} {ident} has a state this aura does not know ({value!r}); "
                      "is the database from a newer aura?")


class SQLiteStore(SQLiteApprovals, SQLiteControls, TaskTables, SQLiteWorkers,
                  AttemptTables, HistoryTables):
    # The task methods (create_task, tasks, claim_task, …) are in store_tasks.py; search
    # and removal of sessions in store_history.py.

    def __init__(self, path: Path | str) -> None:
        # A "file:" URI (e.g. AURA_DB=file:/x/aura.db?mode=ro) is passed to SQLite as is.
        uri = str(path).startswith("file:")
        self._target = str(path)
        self.path = Path(path)
        try:
            if not uri:
                _private_files(self.path)
            try:
                self._open(self._target, uri)
            except sqlite3.OperationalError as exc:
                if uri or not _read_only(exc):
                    raise
                self._open(_read_only_uri(self.path), True)
            if not uri:
                _private_files(self.path)  # -wal and -shm of a file made before 0600
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from None
        except OSError as exc:
            raise StoreError(f"cannot open database {self.path}: {exc.strerror}") from None

    def _open(self, target: str, uri: bool) -> None:
        self._db = sqlite3.connect(target, timeout=BUSY_TIMEOUT_MS / 1000, uri=uri,
                                   isolation_level=None, check_same_thread=False)
        try:
            self._db.row_factory = sqlite3.Row
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if "immutable=1" not in target:
                self._set_wal()
                self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.DatabaseError:
            self._db.close()
            raise

    def _set_wal(self) -> None:
        # Switching a new file to WAL can answer "database is locked" at once, without
        # waiting on busy_timeout, while another aura is creating the same file; the
        # other one finishes within milliseconds, so try again for a while.
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                self._db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _migrate(self) -> None:
        version = self._schema_version()
        if version == len(MIGRATIONS):
            return
        with self._write():
            # Read again under the write lock: another aura may have just migrated.
            version = self._schema_version()
            for number in range(version + 1, len(MIGRATIONS) + 1):
                MIGRATIONS[number - 1](self._db)
                self._db.execute(f"PRAGMA user_version = {number}")

    def _schema_version(self) -> int:
        version: int = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version < 0:
            raise StoreError(f"database {self.path} has schema version {version}, which no "
                             "aura writes; it was changed by something else")
        if version > len(MIGRATIONS):
            raise StoreError(
                f"database {self.path} is schema {version}, newer than this aura "
                f"understands ({len(MIGRATIONS)}); upgrade aura"
            )
        return version

    def _write(self) -> _Transaction:
        return _Transaction(self._db, self.path)

    # sessions -------------------------------------------------------------------------

    def create_session(self, session: Session) -> None:
        values = [getattr(session, c) for c in _SESSION_COLUMNS]
        values[-1] = json.dumps(session.options)
        with self._write():
            self._db.execute(
                f"INSERT INTO sessions ({', '.join(_SESSION_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(_SESSION_COLUMNS))})", values)

    def get_session(self, session_id: str) -> Session:
        row = self._read("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            check_prefix(session_id, "session")
            # A unique prefix is enough; escape LIKE's wildcards in what the user typed.
            pattern = session_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows = self._read("SELECT * FROM sessions WHERE id LIKE ? ESCAPE '\\' LIMIT 6",
                              (pattern + "%",)).fetchall()
            if len(rows) > 1:
                raise ambiguous_prefix(session_id, [r["id"] for r in rows])
            row = rows[0] if rows else None
        if row is None:
            raise session_not_found(session_id)
        return _session(row)

    def update_session(self, session_id: str, **fields: Any) -> Session:
        session_id = self.get_session(session_id).id
        if "options" in fields:
            fields["options"] = json.dumps(fields["options"])
        self._update("sessions", session_id, fields, _SESSION_COLUMNS)
        return self.get_session(session_id)

    def list_sessions(self, limit: int | None = None, *, executor: str | None = None,
                      cwd: str | None = None) -> list[Session]:
        where: list[str] = []
        params: list[str | int] = []
        if executor is not None:
            where.append("executor = ?")
            params.append(executor)
        if cwd is not None:
            where.append("cwd = ?")
            params.append(cwd)
        sql = "SELECT * FROM sessions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_session(r) for r in self._read(sql, params)]

    # executions -----------------------------------------------------------------------

    def create_execution(self, execution: Execution) -> None:
        values = [getattr(execution, c) for c in _EXECUTION_COLUMNS]
        with self._write():
            self._db.execute(
                f"INSERT INTO executions ({', '.join(_EXECUTION_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(_EXECUTION_COLUMNS))})", values)

    def update_execution(self, execution_id: str, **fields: Any) -> Execution:
        self._update("executions", execution_id, fields, _EXECUTION_COLUMNS)
        row = self._read("SELECT * FROM executions WHERE id = ?", (execution_id,)).fetchone()
        if row is None:
            raise NotFound(f"no execution {execution_id!r}")
        return _execution(row)

    def list_executions(self, session_id: str) -> list[Execution]:
        rows = self._read("SELECT * FROM executions WHERE session = ? "
                          "ORDER BY started_at, rowid", (session_id,))
        return [_execution(r) for r in rows]

    def running_executions(self) -> list[Execution]:
        rows = self._read("SELECT * FROM executions WHERE status = ?",
                          (ExecutionStatus.RUNNING.value,))
        return [_execution(r) for r in rows]

    # transitions ----------------------------------------------------------------------

    def record_transition(self, transition: Transition) -> None:
        with self._write():
            self._db.execute(
                "INSERT INTO transitions (session, execution, src, dst, at, reason) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (transition.session, transition.execution, transition.src, transition.dst,
                 transition.at, transition.reason))
            self._db.execute("UPDATE sessions SET state = ?, updated_at = ? WHERE id = ?",
                             (transition.dst, transition.at, transition.session))

    def transitions(self, session_id: str) -> list[Transition]:
        rows = self._read("SELECT session, src, dst, at, reason, execution FROM transitions "
                          "WHERE session = ? ORDER BY id", (session_id,))
        return [_transition(r) for r in rows]

    # claims ---------------------------------------------------------------------------

    def claim_session(self, claim: Claim, from_states: Collection[str] | None = None
                      ) -> Claim | None:
        # One BEGIN IMMEDIATE holds the write lock across the check and the insert: of
        # two aura processes claiming at once, the second sees the first's row.
        with self._write():
            row = self._db.execute(f"SELECT {_CLAIM_COLUMNS} FROM session_claims "
                                   "WHERE session = ?", (claim.session,)).fetchone()
            if row is not None:
                return Claim(*row)
            check_claimable(self.get_session(claim.session), from_states)
            self._db.execute(f"INSERT INTO session_claims ({_CLAIM_COLUMNS}) "
                             "VALUES (?, ?, ?, ?, ?, ?)",
                             (claim.session, claim.token, claim.host, claim.pid,
                              claim.pid_started, claim.at))
        return None

    def release_session(self, session_id: str, token: str) -> None:
        with self._write():
            self._db.execute("DELETE FROM session_claims WHERE session = ? AND token = ?",
                             (session_id, token))

    def claims(self) -> list[Claim]:
        rows = self._read(f"SELECT {_CLAIM_COLUMNS} FROM session_claims ORDER BY at")
        return [Claim(*row) for row in rows]

    # entries --------------------------------------------------------------------------

    def append_entries(self, session_id: str, rows: Sequence[EntryRow]) -> None:
        """Store a batch as one row: the bodies joined by newlines (an entry's JSON never
        holds a raw newline). One row per batch instead of one per entry is what keeps
        ingest near the speed of merely parsing the agent's output.

        Entries at or below the session's last stored seq are skipped, so a batch sent
        again (a worker resending after a dropped connection) is stored once."""
        if not rows:
            return
        with self._write():
            last = self._last_seq(session_id)
            fresh = [row for row in rows if row[0] > last]
            if not fresh:
                return
            seqs = [row[0] for row in fresh]
            if any(b <= a for a, b in itertools.pairwise(seqs)):
                raise StoreError(f"entries of session {session_id} must have increasing seq")
            self._db.execute(
                "INSERT INTO entries (session, first_seq, last_seq, bodies) VALUES (?, ?, ?, ?)",
                (session_id, seqs[0], seqs[-1], "\n".join(row[3] for row in fresh)))

    def entries(self, session_id: str, after_seq: int = 0, limit: int | None = None
                ) -> list[Entry]:
        rows = self._read(
            "SELECT bodies FROM entries WHERE session = ? AND last_seq > ? ORDER BY first_seq",
            (session_id, after_seq))
        loads = json.loads
        out: list[Entry] = []
        for (bodies,) in rows:
            for body in bodies.split("\n"):
                try:
                    entry = loads(body)
                except ValueError:
                    raise StoreError(f"database {self.path} holds a damaged entry of session "
                                     f"{session_id}: {body[:60]!r}") from None
                if entry["seq"] > after_seq:
                    out.append(entry)
                    if limit is not None and len(out) >= limit:
                        return out
        return out

    def entry_texts(self, session_id: str) -> list[str]:
        """Every stored entry's JSON text as stored, in seq order, undecoded (so one that
        cannot be decoded is still there to show)."""
        rows = self._read("SELECT bodies FROM entries WHERE session = ? ORDER BY first_seq",
                          (session_id,))
        return [body for (bodies,) in rows for body in bodies.split("\n")]

    def last_seq(self, session_id: str) -> int:
        try:
            return self._last_seq(session_id)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot read database {self.path}: {exc}") from None

    def _last_seq(self, session_id: str) -> int:
        row = self._db.execute("SELECT last_seq FROM entries WHERE session = ? "
                               "ORDER BY first_seq DESC LIMIT 1", (session_id,)).fetchone()
        return row[0] if row else 0

    def appender(self, session_id: str | None = None) -> EntryAppender:
        # A recorder's queue is bounded (back-pressure on the reader); a writer for any
        # session serves an event loop, which must never block on it.
        target = self._target
        return ThreadedAppender(lambda: SQLiteStore(target), session_id,
                                depth=4 if session_id else 0)

    # board ----------------------------------------------------------------------------

    def board_columns(self) -> list[dict[str, Any]]:
        rows = self._read("SELECT name, position, state, wip_limit FROM board_columns "
                          "ORDER BY position, name")
        return [dict(r) for r in rows]

    def put_board_column(self, column: dict[str, Any]) -> None:
        with self._write():
            self._db.execute("DELETE FROM board_columns WHERE name = ?", (column["name"],))
            self._db.execute("INSERT INTO board_columns (name, position, state, wip_limit) "
                             "VALUES (?, ?, ?, ?)", (column["name"], column["position"],
                                                     column["state"], column.get("wip_limit")))

    def delete_board_column(self, name: str) -> None:
        with self._write():
            deleted = self._db.execute("DELETE FROM board_columns WHERE name = ?",
                                       (name,)).rowcount
        if not deleted:
            raise column_not_found(name)

    def close(self) -> None:
        self._db.close()

    # helpers --------------------------------------------------------------------------

    def _read(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, params)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot read database {self.path}: {exc}") from None

    def _update(self, table: str, key: str, fields: dict[str, Any],
                columns: Sequence[str]) -> None:
        unknown = set(fields) - set(columns)
        if unknown:
            raise ValueError(f"unknown {table} columns: {sorted(unknown)}")
        if not fields:
            return
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self._write():
            self._db.execute(f"UPDATE {table} SET {assignments} WHERE id = ?",
                             [*fields.values(), key])


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, with SQLite errors turned into StoreError.

    IMMEDIATE takes the write lock up front, so two writers queue on busy_timeout instead
    of one failing with SQLITE_BUSY when it upgrades a read lock."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self._path = path

    def __enter__(self) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot write database {self._path}: {exc}") from None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            try:
                self._db.execute("COMMIT")
                return
            except sqlite3.DatabaseError as error:
                self._db.execute("ROLLBACK")
                raise StoreError(f"cannot write database {self._path}: {error}") from None
        self._db.execute("ROLLBACK")
        if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.IntegrityError):
            raise StoreError(f"cannot write database {self._path}: {exc}") from None


def _private_files(path: Path) -> None:
    """The database and its -wal and -shm readable by their owner only (0600 in a new
    0700 directory), whatever the umask: they hold prompts, agent output and options.
    SQLite gives -wal and -shm the main file's mode; existing ones are tightened too."""
    from aura.paths import private_dir, private_file

    try:
        private_dir(path.parent)
        private_file(path)
    except PermissionError:
        return  # a database this user may only read: opened read-only below
    except OSError as exc:
        if exc.errno != errno.EROFS:
            raise
        return
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            with contextlib.suppress(PermissionError):
                private_file(companion)


def _read_only(exc: sqlite3.OperationalError) -> bool:
    message = str(exc)
    return "readonly" in message or "unable to open" in message


def _read_only_uri(path: Path) -> str:
    """A database this process may not write (a read-only file, directory or file
    system) can still be read: SQLite cannot make the -shm that WAL needs there, so it is
    opened as immutable, which is only right when no write-ahead log holds part of it."""
    from urllib.parse import quote

    wal = path.with_name(path.name + "-wal")
    if not path.is_file():
        raise StoreError(f"cannot open database {path}: it does not exist and cannot be made "
                         "here")
    if wal.exists() and wal.stat().st_size:
        raise StoreError(f"database {path} is read-only here and part of it is still in "
                         f"{wal.name}; reading it needs write access to its directory")
    return f"file:{quote(str(path.resolve()))}?immutable=1"


def open_store(path: Path | None = None) -> SQLiteStore:
    """The user's store (AURA_HOME / platformdirs location unless ``path`` is given)."""
    from aura.paths import db_path

    return SQLiteStore(path or db_path())
