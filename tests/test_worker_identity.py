"""Worker identities in a real SQLite store: the numbered migration on an existing
database, enrolment, proving the key, impostors, revocation and re-enrolment."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from aura.errors import RpcError
from aura.remote.coordinator.identity import Identities
from aura.rpc_codec import IDENTITY_REFUSED, NOT_FOUND
from aura.store_schema import MIGRATIONS
from aura.store_sqlite import SQLiteStore


def test_a_database_of_the_previous_schema_gains_the_workers_table(tmp_path: Path) -> None:
    path = tmp_path / "aura.db"
    db = sqlite3.connect(path)
    for number, migration in enumerate(MIGRATIONS[:2], start=1):
        migration(db)
        db.execute(f"PRAGMA user_version = {number}")
    db.commit()
    db.close()
    store = SQLiteStore(path)
    assert store.worker_identities() == []
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    store.close()


def test_enrol_prove_refuse_revoke_and_re_enrol(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "aura.db")
    ids = Identities(store)
    identity, key = ids.prove("w1", None, "1.2.3.4:5")
    assert key is not None and identity.startswith("sha256:")
    assert key not in str(store.worker_identity("w1"))  # only its hash is kept
    assert ids.prove("w1", key, "x") == (identity, None)
    for forged in (None, "", "guess", 42):
        with pytest.raises(RpcError) as info:
            ids.prove("w1", forged, "x")
        assert info.value.code == IDENTITY_REFUSED

    ids.revoke("w1", re_enroll=False)
    assert ids.fingerprints() == {"w1": (identity, True)}
    with pytest.raises(RpcError, match="revoked"):
        ids.prove("w1", key, "x")
    with pytest.raises(RpcError) as info:
        ids.revoke("nobody", re_enroll=False)
    assert info.value.code == NOT_FOUND

    ids.revoke("w1", re_enroll=True)
    again, new_key = ids.prove("w1", None, "x")
    assert new_key is not None and again != identity
    with pytest.raises(RpcError):
        ids.prove("w1", key, "x")  # the old key stays refused
    store.close()
    # It survives a restart of the coordinator (a new store on the same file).
    reopened = Identities(SQLiteStore(tmp_path / "aura.db"))
    assert reopened.prove("w1", new_key, "x") == (again, None)
