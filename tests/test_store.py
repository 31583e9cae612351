"""One suite, two stores: MemoryStore and SQLiteStore must behave the same."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from aura.contracts import Execution, Session, Transition
from aura.errors import NotFound, StoreError
from aura.store import MemoryStore, Store, session_history
from aura.store_schema import MIGRATIONS
from aura.store_sqlite import SQLiteStore


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "a.db")
    yield s
    s.close()


def make_session(sid: str, created: str = "2026-01-01T00:00:00.000Z", **kw: object) -> Session:
    fields: dict = dict(id=sid, executor="custom", state="queued", cwd="/tmp", created_at=created,
                        updated_at=created, prompt="p")
    fields.update(kw)
    return Session(**fields)


def body(seq: int, sid: str, text: str) -> str:
    return json.dumps({"seq": seq, "session": sid, "kind": "assistant_message", "text": text})


def test_sessions_round_trip_with_options(store: Store) -> None:
    session = make_session("s1", options={"params": ["-x"], "vars": {"A": "1"}})
    store.create_session(session)
    assert store.get_session("s1") == session


def test_unique_prefix_finds_a_session_and_ambiguous_or_unknown_does_not(store: Store) -> None:
    store.create_session(make_session("abcd-1"))
    store.create_session(make_session("abce-2"))
    assert store.get_session("abcd").id == "abcd-1"
    with pytest.raises(NotFound, match="'abc' is too short"):
        store.get_session("abc")
    store.create_session(make_session("abcx-1"))
    store.create_session(make_session("abcx-2"))
    with pytest.raises(NotFound, match="'abcx' matches several sessions \\(abcx-1, abcx-2\\)"):
        store.get_session("abcx")
    with pytest.raises(NotFound, match="aura session list"):
        store.get_session("zzzz")


def test_a_prefix_shorter_than_four_characters_is_refused_unless_whole(store: Store) -> None:
    store.create_session(make_session("abcdef"))
    store.create_session(make_session("s1"))
    assert store.get_session("s1").id == "s1"  # a whole id, however short
    for short in ("abc", "a", ""):
        with pytest.raises(NotFound, match="too short for a session id prefix: type at "
                                           "least 4 characters"):
            store.get_session(short)


def test_prefix_lookup_treats_like_wildcards_literally(store: Store) -> None:
    store.create_session(make_session("aaa_b"))
    store.create_session(make_session("aaaxb"))
    assert store.get_session("aaa_").id == "aaa_b"
    with pytest.raises(NotFound):
        store.get_session("%%%%")


def test_list_sessions_is_newest_first_with_filters_and_limit(store: Store) -> None:
    for i in range(5):
        store.create_session(make_session(f"s{i}", created=f"2026-01-0{i + 1}T00:00:00.000Z",
                                          executor="claude" if i % 2 else "custom",
                                          cwd=f"/w{i % 2}"))
    assert [s.id for s in store.list_sessions()] == ["s4", "s3", "s2", "s1", "s0"]
    assert [s.id for s in store.list_sessions(2)] == ["s4", "s3"]
    assert [s.id for s in store.list_sessions(executor="claude")] == ["s3", "s1"]
    assert [s.id for s in store.list_sessions(cwd="/w0", executor="custom")] == ["s4", "s2", "s0"]


def test_update_session_changes_only_the_given_fields(store: Store) -> None:
    store.create_session(make_session("s1"))
    updated = store.update_session("s1", native_session_id="n-1", options={"x": 1})
    assert updated.native_session_id == "n-1" and updated.options == {"x": 1}
    assert store.get_session("s1").prompt == "p"


def test_transitions_are_stored_in_order_and_move_the_session(store: Store) -> None:
    store.create_session(make_session("s1"))
    store.record_transition(Transition("s1", None, "queued", "t1", "created"))
    store.record_transition(Transition("s1", "queued", "coding_initial", "t2", "start", "e1"))
    assert [(t.src, t.dst, t.reason) for t in store.transitions("s1")] == [
        (None, "queued", "created"), ("queued", "coding_initial", "start")]
    session = store.get_session("s1")
    assert session.state == "coding_initial" and session.updated_at == "t2"


def test_executions_round_trip_and_running_ones_are_listed(store: Store) -> None:
    store.create_session(make_session("s1"))
    store.create_execution(Execution("e1", "s1", "coding_initial", started_at="t1", pid=42,
                                     pid_started="99", executor="custom"))
    store.create_execution(Execution("e2", "s1", "coding_follow_up", started_at="t2"))
    store.update_execution("e2", status="done", exit_code=0, ended_at="t3")
    assert [e.id for e in store.running_executions()] == ["e1"]
    executions = store.list_executions("s1")
    assert [(e.id, e.status, e.exit_code) for e in executions] == [
        ("e1", "running", None), ("e2", "done", 0)]
    assert executions[0].pid == 42 and executions[0].pid_started == "99"
    with pytest.raises(NotFound):
        store.update_execution("nope", status="done")


def test_entries_page_by_seq(store: Store) -> None:
    store.create_session(make_session("s1"))
    store.append_entries("s1", [(i, "e1", "assistant_message", body(i, "s1", f"t{i}"))
                                for i in range(1, 11)])
    assert store.last_seq("s1") == 10
    assert store.last_seq("other") == 0
    assert [e["seq"] for e in store.entries("s1")] == list(range(1, 11))
    assert [e["seq"] for e in store.entries("s1", after_seq=3, limit=4)] == [4, 5, 6, 7]
    assert store.entries("s1", after_seq=10) == []


def test_a_resent_batch_is_stored_once(store: Store) -> None:
    store.create_session(make_session("s1"))
    first = [(i, "e", "raw", body(i, "s1", f"t{i}")) for i in (1, 2, 3)]
    store.append_entries("s1", first)
    store.append_entries("s1", [*first[1:], (4, "e", "raw", body(4, "s1", "t4"))])
    store.append_entries("s1", first)
    assert [e["text"] for e in store.entries("s1")] == ["t1", "t2", "t3", "t4"]
    assert store.last_seq("s1") == 4


def test_a_batch_out_of_order_is_refused_whole(store: Store) -> None:
    store.create_session(make_session("s1"))
    with pytest.raises(StoreError, match="increasing seq"):
        store.append_entries("s1", [(2, "e", "raw", body(2, "s1", "b")),
                                    (1, "e", "raw", body(1, "s1", "a"))])
    assert store.entries("s1") == []


def test_entries_are_paged_across_batches(store: Store) -> None:
    store.create_session(make_session("s1"))
    for start in (1, 4, 7):
        store.append_entries("s1", [(i, "e", "raw", body(i, "s1", f"t{i}"))
                                    for i in range(start, start + 3)])
    assert [e["seq"] for e in store.entries("s1", after_seq=2, limit=5)] == [3, 4, 5, 6, 7]
    assert [e["seq"] for e in store.entries("s1", after_seq=8)] == [9]


def test_sessions_do_not_see_each_others_entries(store: Store) -> None:
    for sid in ("s1", "s2"):
        store.create_session(make_session(sid))
        store.append_entries(sid, [(1, "e", "raw", body(1, sid, sid))])
    assert [e["text"] for e in store.entries("s2")] == ["s2"]


def test_session_history_has_executions_transitions_and_entries(store: Store) -> None:
    store.create_session(make_session("s1"))
    store.record_transition(Transition("s1", None, "queued", "t1", "created"))
    store.create_execution(Execution("e1", "s1", "coding_initial", started_at="t1"))
    store.append_entries("s1", [(1, "e1", "assistant_message", body(1, "s1", "hi"))])
    data = session_history(store, "s1")
    assert data["executions"][0]["state"] == "running"
    assert data["transitions"] == [{"from": None, "to": "queued", "at": "t1",
                                    "reason": "created", "execution": None}]
    assert data["entries"][0]["text"] == "hi"


# SQLite only ------------------------------------------------------------------------------

def test_sqlite_uses_wal_and_records_its_schema_version(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    store.close()
    SQLiteStore(tmp_path / "a.db").close()  # reopening migrates nothing and keeps data


def test_a_corrupt_database_is_a_clear_error_and_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "aura.db"
    garbage = b"this is not a database" * 100
    path.write_bytes(garbage)
    with pytest.raises(StoreError, match=f"cannot open database {path}"):
        SQLiteStore(path)
    assert path.read_bytes() == garbage


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "aura.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 999")
    db.close()
    with pytest.raises(StoreError, match="upgrade aura"):
        SQLiteStore(path)


def test_two_processes_opening_a_new_database_at_once_both_succeed(tmp_path: Path) -> None:
    import subprocess
    import sys

    from .conftest import ROOT

    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
            "from aura.store_sqlite import SQLiteStore; "
            f"[SQLiteStore({str(tmp_path)!r} + f'/db{{i}}.db').close() for i in range(30)]")
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err


def test_board_columns_start_with_the_defaults_and_can_be_edited(store: Store) -> None:
    names = [c["name"] for c in store.board_columns()]
    assert names == ["Todo", "In progress", "In review", "Done", "Failed"]
    store.put_board_column({"name": "Blocked", "position": 3, "state": "review",
                            "wip_limit": 2})
    store.put_board_column({"name": "in progress", "position": 2, "state": "coding_follow_up",
                            "wip_limit": 3})  # same name, other case: replaced
    columns = {c["name"].lower(): c for c in store.board_columns()}
    assert columns["blocked"] == {"name": "Blocked", "position": 3, "state": "review",
                                  "wip_limit": 2}
    assert columns["in progress"]["wip_limit"] == 3 and len(columns) == 6
    store.delete_board_column("BLOCKED")
    with pytest.raises(NotFound, match="aura board columns"):
        store.delete_board_column("Blocked")
    assert len(store.board_columns()) == 5


def test_migration_2_adds_the_board_to_a_schema_1_database(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    MIGRATIONS[0](db)
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    store = SQLiteStore(path)
    assert [c["state"] for c in store.board_columns()] == ["queued", "coding_initial",
                                                           "review", "done", "failed"]
    store.close()


def test_executions_started_in_the_same_millisecond_keep_creation_order(store: Store) -> None:
    store.create_session(make_session("s1"))
    for eid in ("z", "m", "a"):
        store.create_execution(Execution(eid, "s1", "setup", started_at="2026-01-01T00:00:00.000Z"))
    assert [e.id for e in store.list_executions("s1")] == ["z", "m", "a"]


def test_damaged_rows_are_store_errors_not_tracebacks(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    store.create_session(make_session("s1"))
    store.append_entries("s1", [(1, "e", "raw", body(1, "s1", "a"))])
    store._db.execute("UPDATE entries SET bodies = '{\"seq\": 1, \"cut'")
    with pytest.raises(StoreError, match="damaged entry of session s1"):
        store.entries("s1")
    store._db.execute("UPDATE sessions SET options = '{bad'")
    with pytest.raises(StoreError, match="session s1 has damaged options"):
        store.get_session("s1")
