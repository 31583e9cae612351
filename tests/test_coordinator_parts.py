"""The coordinator's parts without sockets: the run table, the feed's paging and fan-out,
the summary of a run, the store's writer for any session, and the token check."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aura.contracts import Execution, RunSummary, Session, Transition
from aura.errors import StoreError
from aura.remote.coordinator import feed
from aura.remote.coordinator.feed import Feeds, page
from aura.remote.coordinator.mirror import Mirror, summary_from_rows
from aura.remote.coordinator.runs import RunTable
from aura.remote.coordinator.server import check_token
from aura.store import MemoryStore, Store
from aura.store_sqlite import SQLiteStore

AT = "2026-01-01T00:00:00.000Z"


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "a.db")
    yield s
    s.close()


def body(seq: int, text: str = "x") -> str:
    return f'{{"seq":{seq},"session":"s1","kind":"raw","text":"{text}"}}'


def rows(first: int, last: int, text: str = "x") -> list[tuple[int, str, str, str]]:
    return [(q, "e1", "raw", body(q, text)) for q in range(first, last + 1)]


class Inbox:
    """A follower that keeps what it was sent."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.backlog = 0  # bytes not yet read (a test sets it to play a stalled client)

    def send_text(self, text: str) -> None:
        self.texts.append(text)

    def seqs(self) -> list[int]:
        import json

        messages = [json.loads(t) for t in self.texts if t != "finished"]
        return [e["seq"] for m in messages if m["method"] == "session.entries"
                for e in m["params"]["entries"]]

    def behind(self) -> list[dict[str, object]]:
        import json

        return [m["params"] for m in map(json.loads, self.texts)
                if isinstance(m, dict) and m["method"] == "session.behind"]


# the run table ----------------------------------------------------------------------------

def test_a_run_starts_running_and_finishing_it_keeps_its_summary() -> None:
    table = RunTable()
    run = table.start("e1", "s1", "w1")
    assert run.running and table.is_running("e1") and run.worker == "w1"
    summary = RunSummary("s1", "e1", "done", 0)
    table.finish("e1", "s1", summary)
    assert not table.is_running("e1")
    again = table.get("e1")
    assert again is not None and again.summary == summary and again.worker is None


def test_a_run_that_ended_here_does_not_start_running_again() -> None:
    table = RunTable()
    table.finish("e1", "s1", RunSummary("s1", "e1", "worker_lost", 1, error="gone"))
    run = table.start("e1", "s1", "w1")
    assert not run.running and run.worker == "w1"


def test_only_the_newest_finished_runs_are_kept() -> None:
    table = RunTable(keep_finished=2)
    for n in range(3):
        table.finish(f"e{n}", "s", RunSummary("s", f"e{n}", "done", 0))
    assert table.get("e0") is None
    assert [r.execution for r in table] == ["e1", "e2"]


# the feed ----------------------------------------------------------------------------------

def test_a_page_stops_at_its_limit_and_says_more_follow(store: Store) -> None:
    store.append_entries("s1", rows(1, 10))
    texts, more = page(store, "s1", 2, 5)
    assert [feed.seq_of(t) for t in texts] == [3, 4, 5, 6, 7] and more
    texts, more = page(store, "s1", 7, 5)
    assert [feed.seq_of(t) for t in texts] == [8, 9, 10] and not more


def test_a_page_is_cut_short_by_size(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store.append_entries("s1", rows(1, 4, "y" * 100))
    monkeypatch.setattr(feed, "PAGE_BYTES", 350)  # two entries fit, not three
    texts, more = page(store, "s1", 0, 10)
    assert [feed.seq_of(t) for t in texts] == [1, 2] and more


def test_a_follower_gets_stored_then_in_flight_then_new_entries_once(store: Store) -> None:
    feeds = Feeds(store)
    store.append_entries("s1", rows(1, 3))
    feeds.resume("s1", 3)
    feeds.received("s1", range(4, 6), 5, [body(4), body(5)])  # not yet committed
    inbox = Inbox()
    feeds.follow(inbox, "s1", 1)
    assert inbox.seqs() == [2, 3, 4, 5]
    # The same batch resent after a reconnect reaches nobody twice; what is new does.
    feeds.received("s1", range(4, 7), 6, [body(4), body(5), body(6)])
    assert inbox.seqs() == [2, 3, 4, 5, 6]
    feeds.leave(inbox)
    feeds.received("s1", range(7, 8), 7, [body(7)])
    assert inbox.seqs() == [2, 3, 4, 5, 6]


def test_every_follower_of_a_session_and_only_those_get_a_message(store: Store) -> None:
    feeds = Feeds(store)
    a, b, other = Inbox(), Inbox(), Inbox()
    feeds.follow(a, "s1", 0)
    feeds.follow(b, "s1", 0)
    feeds.follow(other, "s2", 0)
    feeds.send("s1", "hello")
    assert a.texts == b.texts == ["hello"] and other.texts == []


def test_a_follower_that_falls_behind_leaves_the_live_feed_and_is_told_its_last_seq(
        store: Store) -> None:
    feeds = Feeds(store)
    slow, quick = Inbox(), Inbox()
    assert feeds.follow(slow, "s1", 0) and feeds.follow(quick, "s1", 0)
    feeds.received("s1", range(1, 3), 2, [body(1), body(2)])
    slow.backlog = feed.LAG_BYTES + 1  # it stopped reading
    feeds.received("s1", range(3, 5), 4, [body(3), body(4)])
    feeds.received("s1", range(5, 6), 5, [body(5)])
    assert slow.seqs() == [1, 2] and slow.behind() == [{"session": "s1", "after_seq": 2}]
    assert quick.seqs() == [1, 2, 3, 4, 5] and quick.behind() == []
    feeds.send("s1", "finished")  # dropped: it learns the outcome when it follows again
    assert "finished" not in slow.texts


def test_following_a_long_history_stops_at_the_lag_limit_and_says_where(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store.append_entries("s1", rows(1, 10, "z" * 100))
    monkeypatch.setattr(feed, "PAGE_ENTRIES", 3)
    monkeypatch.setattr(feed, "LAG_BYTES", 400)

    class Stalled(Inbox):
        def send_text(self, text: str) -> None:
            super().send_text(text)
            self.backlog += len(text)

    stalled = Stalled()
    assert feeds_follow(store, stalled) is False
    assert stalled.seqs() == [1, 2, 3]  # one page, then no more while it does not read
    assert stalled.behind() == [{"session": "s1", "after_seq": 3}]
    reading = Inbox()
    assert feeds_follow(store, reading) is True and reading.seqs() == list(range(1, 11))


def feeds_follow(store: Store, follower: Inbox) -> bool:
    return Feeds(store).follow(follower, "s1", 0)


# the summary -------------------------------------------------------------------------------

def test_a_summary_has_the_keys_of_the_run_json_line_and_reads_back() -> None:
    summary = RunSummary("s1", "e1", "failed", 7, "n1", {"input_tokens": 5}, "exit 7")
    data = summary.to_json()
    assert list(data) == ["kind", "session", "execution", "state", "exit_code",
                          "native_session_id", "usage", "error"]
    assert data["kind"] == "summary" and RunSummary.from_json(data) == summary


def test_a_partial_summary_takes_defaults_and_a_malformed_one_is_refused() -> None:
    partial = RunSummary.from_json({"state": "cancelled", "exit_code": 130,
                                    "error": "cancelled", "session": "s", "execution": "e"})
    assert partial == RunSummary("s", "e", "cancelled", 130, error="cancelled")
    for bad in ({}, {"state": 1}, {"state": "done", "exit_code": "0"},
                {"state": "done", "usage": {"a": "b"}}, {"state": "done", "session": 3}):
        with pytest.raises(ValueError):
            RunSummary.from_json(bad)


def test_a_summary_from_rows_gives_aura_exit_codes() -> None:
    session = Session("s1", "codex", "cancelled", "/", AT, AT, native_session_id="n")
    executions = [Execution("e1", "s1", "coding_initial", "cancelled", exit_code=-2,
                            reason="interrupted")]
    summary = summary_from_rows(session, executions)
    assert (summary.exit_code, summary.error, summary.native_session_id) == \
        (130, "interrupted", "n")


def test_marking_a_run_lost_records_it_and_summarises_it(store: Store) -> None:
    store.create_session(Session("s1", "codex", "coding_initial", "/", AT, AT))
    store.record_transition(Transition("s1", None, "coding_initial", AT, "start", "e1"))
    store.create_execution(Execution("e1", "s1", "coding_initial", started_at=AT, host="w1"))
    summary = Mirror(store).mark_lost("s1", "e1", "w1", "worker w1 silent for 15 s")
    assert summary == RunSummary("s1", "e1", "worker_lost", 1,
                                 error="worker w1 silent for 15 s")
    assert store.get_session("s1").state == "worker_lost"
    assert [e.status for e in store.list_executions("s1")] == ["worker_lost"]


# the store's writer for any session ---------------------------------------------------------

def test_the_writer_commits_in_order_and_reports_each_batch(store: Store) -> None:
    writer = store.appender(None)
    outcomes: list[tuple[str, Exception | None]] = []
    done = threading.Event()
    writer.submit("s1", rows(1, 3), lambda e: outcomes.append(("a", e)))
    writer.submit("s1", rows(2, 4), lambda e: outcomes.append(("resent", e)))
    writer.submit("s1", rows(4, 4)[::-1] + rows(3, 3), lambda e: outcomes.append(("stale", e)))
    writer.submit("s1", [], lambda e: (outcomes.append(("marker", e)), done.set()))
    assert done.wait(10)
    writer.close()
    assert [(name, type(e).__name__) for name, e in outcomes] == [
        ("a", "NoneType"), ("resent", "NoneType"), ("stale", "NoneType"),
        ("marker", "NoneType")]
    assert [e["seq"] for e in store.entries("s1")] == [1, 2, 3, 4]


def test_a_failed_batch_reports_its_error_and_later_ones_still_commit(store: Store) -> None:
    writer = store.appender(None)
    outcomes: list[Exception | None] = []
    done = threading.Event()
    writer.submit("s1", [(5, "e", "raw", body(5)), (2, "e", "raw", body(2))], outcomes.append)
    writer.submit("s1", rows(1, 1), lambda e: (outcomes.append(e), done.set()))
    assert done.wait(10)
    writer.close()
    assert isinstance(outcomes[0], StoreError) and outcomes[1] is None
    assert [e["seq"] for e in store.entries("s1")] == [1]


# the token ---------------------------------------------------------------------------------

def test_only_the_bearer_token_opens_the_door() -> None:
    assert check_token("Bearer sekrit", b"sekrit") is None
    assert check_token("bearer  sekrit ", b"sekrit") is None
    assert check_token("Bearer wrong", b"sekrit") == "bad token"
    assert check_token(None, b"sekrit") == check_token("Basic sekrit", b"sekrit") == \
        check_token("Bearer", b"sekrit") == "no token"


# approvals of runs on workers -----------------------------------------------------------

def _approval_world(store: Store) -> tuple[Any, Any, Any]:
    from aura.remote.coordinator.approvals import RemoteApprovals
    from aura.remote.coordinator.registry import Registry

    runs = RunTable()
    for session_id, execution_id, host in (("s1", "e1", "w1"), ("s2", "e2", "w2")):
        store.create_session(Session(id=session_id, executor="custom", state="coding_initial",
                                     cwd="/w", created_at=AT, updated_at=AT, prompt="p"))
        store.create_execution(Execution(id=execution_id, session=session_id,
                                         stage="coding_initial", started_at=AT, host=host))
        runs.start(execution_id, session_id, host)
    approvals = RemoteApprovals(store, Mirror(store), runs, Registry())
    return approvals, runs.get("e1"), runs.get("e2")


def _approval_entry(seq: int, approval: Any) -> str:
    import json

    return json.dumps({"seq": seq, "session": approval.session, "kind": "approval",
                       "id": approval.id, "status": approval.state.value,
                       "data": approval.to_json()}, separators=(",", ":"))


def _asked(ident: str, session: str, execution: str) -> Any:
    from aura.store_approvals import Approval

    return Approval(id=ident, session=session, execution=execution, native_id="9",
                    kind="command", title="Run make", created_at=AT)


def test_relayed_approval_entries_make_and_settle_rows_and_replay_is_harmless(
        store: Store) -> None:
    from dataclasses import replace

    from aura.approvals import ApprovalState
    from aura.store_approvals import Approval

    approvals, run1, _ = _approval_world(store)
    asked = _asked("a1", "s1", "e1")
    assert Approval.from_json(asked.to_json()) == asked
    approvals.relayed(run1, [body(1), _approval_entry(2, asked)])
    assert [a.id for a in store.list_approvals(state=ApprovalState.PENDING)] == ["a1"]
    assert [a["worker"] for a in approvals.m_approvals_list(None, {})] == ["w1"]
    allowed = replace(asked, state=ApprovalState.ALLOWED, answered_by="bob", answered_at=AT,
                      choice="allow")
    approvals.relayed(run1, [_approval_entry(3, allowed)])
    # Sent again after a reconnect: the request and its outcome change nothing.
    approvals.relayed(run1, [_approval_entry(2, asked), _approval_entry(3, allowed)])
    assert store.get_approval("a1") == allowed
    assert approvals.m_approvals_list(None, {}) == []
    assert [a["state"] for a in approvals.m_approvals_list(None, {"all": True})] == ["allowed"]


def test_a_worker_cannot_make_or_settle_rows_of_another_run(store: Store) -> None:
    from dataclasses import replace

    from aura.approvals import ApprovalState

    approvals, run1, run2 = _approval_world(store)
    theirs = _asked("a1", "s1", "e1")
    approvals.relayed(run1, [_approval_entry(1, theirs)])
    forged = replace(theirs, state=ApprovalState.ALLOWED, answered_by="w2", answered_at=AT,
                     choice="allow")
    approvals.relayed(run2, [_approval_entry(1, forged),
                             _approval_entry(2, replace(forged, session="s2")),
                             _approval_entry(3, replace(forged, session="s2",
                                                        execution="e2")),
                             _approval_entry(4, _asked("a9", "s1", "e1")),
                             '{"seq":5,"kind":"approval","data":{"id":"x"}}'])
    assert store.get_approval("a1").state is ApprovalState.PENDING
    assert [a.id for a in store.list_approvals()] == ["a1"]


def test_pending_requests_of_a_run_that_ends_or_is_lost_are_lost(store: Store) -> None:
    import asyncio

    from aura.approvals import ApprovalState
    from aura.errors import ApprovalClosed

    approvals, run1, _ = _approval_world(store)
    approvals.relayed(run1, [_approval_entry(1, _asked("a1", "s1", "e1"))])
    approvals.lose("s1", "worker w1 silent for 15 s")
    lost = store.get_approval("a1")
    assert lost.state is ApprovalState.LOST and lost.answered_by == "worker w1 silent for 15 s"
    with pytest.raises(ApprovalClosed, match="a1 is lost"):
        asyncio.run(approvals.m_approvals_answer(None, {"approval": "a1", "choice": "allow"}))
    # A request whose run is no longer running here is lost when it is next read.
    approvals.relayed(run1, [_approval_entry(2, _asked("a2", "s1", "e1"))])
    store.update_execution("e1", status="done", ended_at=AT)
    assert approvals.m_approvals_list(None, {}) == []
    assert store.get_approval("a2").state is ApprovalState.LOST


def test_only_requests_of_remote_runs_are_listed_or_answered(store: Store) -> None:
    import asyncio

    from aura.errors import NotFound

    approvals, _, _ = _approval_world(store)
    store.create_execution(Execution(id="e3", session="s1", stage="coding_initial",
                                     started_at=AT, host="local"))
    store.create_approval(_asked("local1", "s1", "e3"))
    assert approvals.m_approvals_list(None, {}) == []
    with pytest.raises(NotFound):
        asyncio.run(approvals.m_approvals_answer(None, {"approval": "local1",
                                                        "choice": "allow"}))
