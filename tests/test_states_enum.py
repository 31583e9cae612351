"""States are enums end to end: built from names, stored as names, refused when unknown."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from aura.contracts import Execution, ExecutionStatus, Session, State, Transition
from aura.errors import StoreError
from aura.store_sqlite import SQLiteStore

AT = "2026-01-01T00:00:00.000Z"


def test_names_become_enums_and_json_keeps_the_names() -> None:
    session = Session("s1", "custom", "done", "/tmp", AT, AT)  # type: ignore[arg-type]
    assert session.state is State.DONE
    execution = Execution("e1", "s1", "review", "failed")  # type: ignore[arg-type]
    assert (execution.stage, execution.status) == (State.REVIEW, ExecutionStatus.FAILED)
    transition = Transition("s1", None, "queued", AT, "created")  # type: ignore[arg-type]
    assert transition.dst is State.QUEUED
    assert json.loads(json.dumps(session.to_json()))["state"] == "done"
    assert execution.to_json()["state"] == "failed" and type(execution.to_json()["state"]) is str
    assert transition.to_json()["to"] == "queued"


def test_an_unknown_name_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        Session("s1", "custom", "paused", "/tmp", AT, AT)  # type: ignore[arg-type]


def test_a_stored_unknown_state_is_a_one_line_store_error(tmp_path: Path) -> None:
    path = tmp_path / "aura.db"
    store = SQLiteStore(path)
    store.create_session(Session("s1", "custom", State.DONE, "/tmp", AT, AT))
    store.record_transition(Transition("s1", None, State.QUEUED, AT, "created"))
    store.create_execution(Execution("e1", "s1", State.CODING_INITIAL, ExecutionStatus.DONE))
    assert store.get_session("s1").state is State.QUEUED  # the transition moved it
    store.close()
    db = sqlite3.connect(path)
    db.execute("UPDATE sessions SET state = 'paused'")
    db.execute("UPDATE executions SET status = 'sleeping'")
    db.execute("UPDATE transitions SET dst = 'nowhere'")
    db.commit()
    db.close()
    store = SQLiteStore(path)
    for read in (lambda: store.get_session("s1"), lambda: store.list_executions("s1"),
                 lambda: store.transitions("s1")):
        with pytest.raises(StoreError, match="state this aura does not know"):
            read()
    store.close()
