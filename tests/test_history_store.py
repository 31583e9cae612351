"""Search and removal of whole sessions, in both stores; the FTS5 index of migration 8."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from aura.approvals import ApprovalKind, ApprovalState
from aura.contracts import Execution, Session, Transition
from aura.store import MemoryStore, Store
from aura.store_approvals import Approval
from aura.store_attempts import Attempt, Group
from aura.store_history import MARK_END, MARK_START
from aura.store_schema import MIGRATIONS
from aura.store_sqlite import SQLiteStore
from aura.store_tasks import Task


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "a.db")
    yield s
    s.close()


def session(sid: str, executor: str = "custom", at: str = "2026-01-01T00:00:00.000Z"
            ) -> Session:
    return Session(id=sid, executor=executor, state="done", cwd="/tmp", created_at=at,
                   updated_at=at, prompt="p")


def row(seq: int, sid: str, kind: str = "assistant_message", **fields: object
        ) -> tuple[int, str, str, str]:
    body = {"seq": seq, "ts": f"2026-01-01T00:00:{seq:02d}.000Z", "session": sid,
            "execution": "e1", "kind": kind, **fields}
    return seq, "e1", kind, json.dumps(body)


def fill(store: Store) -> None:
    store.create_session(session("aaaa-1", "claude", "2026-01-01T00:00:00.000Z"))
    store.create_session(session("bbbb-2", "codex", "2026-02-01T00:00:00.000Z"))
    store.append_entries("aaaa-1", [row(1, "aaaa-1", text="The Flaky Test is fixed"),
                                    row(2, "aaaa-1", "tool_call", target="pytest -k flaky",
                                        output="1 passed")])
    store.append_entries("aaaa-1", [row(3, "aaaa-1", text="nothing here")])
    store.append_entries("bbbb-2", [row(1, "bbbb-2", text="a flaky network, again",
                                        ts="2026-01-20T00:00:00.000Z"),
                                    row(2, "bbbb-2", "error", text="timeout",
                                        data={"detail": "socket flaky"},
                                        ts="2026-02-01T00:00:00.000Z")])


def test_search_matches_every_word_in_any_case_newest_first(store: Store) -> None:
    fill(store)
    hits = store.search_entries("FLAKY")
    assert [(h.session, h.seq) for h in hits] == [("bbbb-2", 2), ("bbbb-2", 1),
                                                  ("aaaa-1", 2), ("aaaa-1", 1)]
    first = hits[-1]
    assert first.executor == "claude" and first.kind == "assistant_message"
    assert f"{MARK_START}Flaky{MARK_END}" in first.snippet
    assert first.to_json()["snippet"] == "The Flaky Test is fixed"
    assert [h.seq for h in store.search_entries("flaky test")] == [1]
    assert store.search_entries("flaky", executor="claude", limit=1)[0].seq == 2
    assert {h.session for h in store.search_entries("flaky", since="2026-01-15")} == {"bbbb-2"}
    # since: the entry's own time too, not only its session's
    assert [h.seq for h in store.search_entries("flaky", since="2026-01-25")] == [2]


def test_a_word_after_a_line_break_or_tab_is_found(store: Store) -> None:
    store.create_session(session("cccc-3"))
    store.append_entries("cccc-3", [row(1, "cccc-3", text="line one\nsecond\tthird\r\nend")])
    for word in ("second", "third", "end", "LINE"):
        assert [h.seq for h in store.search_entries(word)] == [1], word
    store.delete_sessions(["cccc-3"])
    assert store.search_entries("second") == []


def test_search_does_not_match_the_envelope_and_takes_fts_syntax_as_words(store: Store
                                                                          ) -> None:
    fill(store)
    assert store.search_entries("session") == []  # a key of every entry, not a word
    assert store.search_entries("e1") == [] and store.search_entries("aaaa") == []
    for hostile in ('"flaky', "flaky AND (", "NEAR(flaky", "*", "'; DROP TABLE entries"):
        store.search_entries(hostile)  # no FTS syntax error reaches the caller
    assert len(store.search_entries("flaky")) == 4


def test_delete_sessions_removes_every_row_of_theirs_and_nothing_else(store: Store) -> None:
    fill(store)
    for sid in ("aaaa-1", "bbbb-2"):
        store.record_transition(Transition(sid, "queued", "done", "t", "x"))
        store.create_execution(Execution(f"ex-{sid}", sid, "coding_initial", started_at="t"))
        store.create_approval(Approval(f"ap-{sid}", sid, f"ex-{sid}", "n1",
                                       ApprovalKind.COMMAND, "run ls", "t",
                                       state=ApprovalState.PENDING))
    store.create_task(Task("aaaa-1", "title", "t"))
    store.create_group(Group("g1", "p", "t", "/"))
    store.create_group(Group("g2", "p", "t", "/"))
    store.add_attempt(Attempt("g1", 1, "aaaa-1", "claude"))
    store.add_attempt(Attempt("g2", 1, "bbbb-2", "codex"))
    store.delete_sessions(["aaaa-1"])
    assert [g.id for g in store.groups()] == ["g2"]  # a group none of whose is left goes
    assert store.attempts("g1") == [] and len(store.attempts("g2")) == 1
    assert [s.id for s in store.list_sessions()] == ["bbbb-2"]
    assert store.entries("aaaa-1") == [] and store.transitions("aaaa-1") == []
    assert store.list_executions("aaaa-1") == [] and store.tasks() == []
    assert [a.id for a in store.list_approvals()] == ["ap-bbbb-2"]
    assert {h.session for h in store.search_entries("flaky")} == {"bbbb-2"}
    assert len(store.entries("bbbb-2")) == 2


def test_sqlite_index_documents_go_with_their_session(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    fill(store)
    count = "SELECT count(*) FROM entry_docs"
    assert store._db.execute(count).fetchone()[0] == 0  # indexed when searched, not before
    assert len(store.search_entries("flaky")) == 4
    assert store._db.execute(count).fetchone()[0] == 3  # one document a batch
    store.delete_sessions(["bbbb-2"])
    assert store._db.execute(count).fetchone()[0] == 2
    # The index forgot its words too: they match nothing, not a dangling document.
    assert store._db.execute("SELECT count(*) FROM entry_search WHERE entry_search "
                             "MATCH 'network'").fetchone()[0] == 0
    assert store._db.execute("SELECT count(*) FROM entry_search WHERE entry_search "
                             "MATCH 'fixed'").fetchone()[0] == 1
    store.close()


def test_migration_8_indexes_the_entries_already_stored(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    for number, migrate in enumerate(MIGRATIONS[:7], start=1):
        migrate(db)
        db.execute(f"PRAGMA user_version = {number}")
    db.execute("INSERT INTO sessions (id, executor, state, cwd, created_at, updated_at) "
               "VALUES ('old-1', 'custom', 'done', '/', 't', 't')")
    bodies = "\n".join(row(i, "old-1", text=f"entry {i} written before the index")[3]
                       for i in (1, 2))
    db.execute("INSERT INTO entries VALUES ('old-1', 1, 2, ?)", (bodies,))
    db.close()
    store = SQLiteStore(path)
    assert [h.seq for h in store.search_entries("before index")] == [2, 1]
    assert store._db.execute("SELECT count(*) FROM entry_docs").fetchone()[0] == 1
    store.append_entries("old-1", [row(3, "old-1", text="and one after")])
    assert [h.seq for h in store.search_entries("after")] == [3]  # caught up
    store.close()


def test_without_the_index_search_reads_the_entries_with_like(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    fill(store)
    store._db.execute("DROP TABLE entry_search")
    store._db.execute("DROP TABLE entry_docs")
    store._has_fts = None
    assert not store.fts
    hits = store.search_entries("flaky")
    assert [(h.session, h.seq) for h in hits] == [("bbbb-2", 2), ("bbbb-2", 1),
                                                  ("aaaa-1", 2), ("aaaa-1", 1)]
    assert f"{MARK_START}flaky{MARK_END}" in hits[1].snippet
    assert store.search_entries("50%_") == []  # LIKE's wildcards are literal
    store.append_entries("aaaa-1", [row(4, "aaaa-1", text="stored without an index")])
    store.delete_sessions(["aaaa-1"])
    assert {h.session for h in store.search_entries("flaky")} == {"bbbb-2"}
    store.close()


def test_a_database_opened_read_only_is_still_searched(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    store = SQLiteStore(path)
    fill(store)
    store.close()
    read_only = SQLiteStore(f"file:{path}?mode=ro")  # cannot bring the index up to date
    assert [(h.session, h.seq) for h in read_only.search_entries("flaky")] == [
        ("bbbb-2", 2), ("bbbb-2", 1), ("aaaa-1", 2), ("aaaa-1", 1)]
    read_only.close()
