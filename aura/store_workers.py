"""The coordinator's enrolled workers in the ``workers`` table (mixed into SQLiteStore):
each one's key is kept only as its SHA-256 (see aura.remote.coordinator.identity)."""

from __future__ import annotations

import sqlite3
from typing import Any, Protocol


class _Database(Protocol):
    _db: sqlite3.Connection

    def _read(self, sql: str, params: Any = ()) -> sqlite3.Cursor: ...
    def _write(self) -> Any: ...


def _identity(row: sqlite3.Row) -> dict[str, Any]:
    data = dict(row)
    data["re_enroll"] = bool(data["re_enroll"])
    return data


class SQLiteWorkers:
    """Worker identities: read one or all, put one."""

    def worker_identity(self: _Database, name: str) -> dict[str, Any] | None:
        row = self._read("SELECT * FROM workers WHERE name = ?", (name,)).fetchone()
        return _identity(row) if row is not None else None

    def worker_identities(self: _Database) -> list[dict[str, Any]]:
        return [_identity(r) for r in self._read("SELECT * FROM workers ORDER BY name")]

    def put_worker_identity(self: _Database, identity: dict[str, Any]) -> None:
        with self._write():
            self._db.execute(
                "INSERT OR REPLACE INTO workers (name, key_hash, enrolled_at, revoked_at, "
                "re_enroll) VALUES (:name, :key_hash, :enrolled_at, :revoked_at, :re_enroll)",
                {**identity, "re_enroll": int(bool(identity.get("re_enroll")))})
