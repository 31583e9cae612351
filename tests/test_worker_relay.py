"""The worker's relay against a fake coordinator and a real spool (sqlite in tmp_path):
what it sends, what an ack forgets, what a reconnect resends, the final state, and what a
restarted worker reads back from its spool."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aura.contracts import Execution, Session, Transition
from aura.recorder import encode
from aura.remote.worker import relay as relay_module
from aura.remote.worker.relay import Outgoing, Relay
from aura.store_sqlite import SQLiteStore

from .fake_peer import FakePeer

SESSION, EXECUTION = "s1", "e1"


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "spool.db")
    store.create_session(Session(SESSION, "custom", "coding_initial", str(tmp_path), "t0",
                                 "t0", prompt="go"))
    store.create_execution(Execution(EXECUTION, SESSION, "coding_initial", started_at="t1"))
    try:
        yield store
    finally:
        store.close()


def _records(spool: SQLiteStore, first: int, last: int, kind: str = "message"
             ) -> list[tuple[int, Any, str]]:
    """Entries seq first..last, stored in the spool as the recorder would, and handed to
    the watcher as the recorder does."""
    records = []
    for seq in range(first, last + 1):
        entry = {"seq": seq, "ts": "t", "session": SESSION, "execution": EXECUTION,
                 "stage": "coding_initial", "kind": kind, "text": f"line {seq}"}
        records.append((seq, entry, encode(entry)))  # type: ignore[arg-type]
    spool.append_entries(SESSION, [(s, EXECUTION, e["kind"], t) for s, e, t in records])
    return records


def _started(relay: Relay, spool: SQLiteStore, last: int) -> Outgoing:
    async def go() -> Outgoing:
        first: asyncio.Future[Outgoing] = asyncio.get_running_loop().create_future()
        relay.watcher(first)(_records(spool, 1, last))
        return first.result()

    return asyncio.run(go())


def test_entries_go_out_once_and_an_ack_forgets_them(spool: SQLiteStore, tmp_path: Path
                                                     ) -> None:
    relay = Relay(spool, tmp_path)
    out = _started(relay, spool, 3)
    assert (out.session, out.execution, out.started_at) == (SESSION, EXECUTION, "t1")
    peer = FakePeer()
    relay.pump(peer, out)
    relay.pump(peer, out)  # nothing new: nothing sent again
    assert peer.sent_seqs() == [1, 2, 3]
    relay.on_ack({"execution": EXECUTION, "seq": 2})
    assert out.acked == 2 and out.seqs == [3]


def test_a_reconnect_resends_after_what_the_coordinator_stored(spool: SQLiteStore,
                                                                tmp_path: Path) -> None:
    relay = Relay(spool, tmp_path)
    out = _started(relay, spool, 5)
    relay.pump(FakePeer(), out)  # sent on a line that then dropped, nothing acked
    peer = FakePeer()
    relay.connected({EXECUTION: 3}, 1 << 20)
    relay.pump(peer, out)
    assert peer.sent_seqs() == [4, 5]
    # A reconnect also refreshes the coordinator's view of the run.
    assert [s["final"] for s in peer.states()] == [False]


def test_a_full_queue_or_window_pauses_the_relay(spool: SQLiteStore, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    relay = Relay(spool, tmp_path)
    out = _started(relay, spool, 4)
    busy = FakePeer()
    busy.queued = relay_module.MAX_QUEUED
    relay.pump(busy, out)
    assert busy.texts == []
    monkeypatch.setattr(relay_module, "WINDOW", 2)
    monkeypatch.setattr(relay_module, "BATCH_ENTRIES", 2)
    peer = FakePeer()
    relay.pump(peer, out)
    assert peer.sent_seqs() == [1, 2]  # then the window is full until an ack
    relay.on_ack({"execution": EXECUTION, "seq": 2})
    relay.pump(peer, out)
    assert peer.sent_seqs() == [1, 2, 3, 4]


def test_the_outcome_goes_last_and_its_ack_ends_the_relaying(spool: SQLiteStore,
                                                              tmp_path: Path) -> None:
    relay = Relay(spool, tmp_path)
    out = _started(relay, spool, 2)
    relay.save()
    assert set(json.loads((tmp_path / "relay.json").read_text())) == {EXECUTION}
    relay.finish(out, {"state": "done", "exit_code": 0})
    peer = FakePeer()
    relay.pump(peer, out)
    assert peer.sent_seqs() == [1, 2]
    final = peer.states()[-1]
    assert final["final"] is True and final["summary"] == {"state": "done", "exit_code": 0}
    assert final["snapshot"]["session"]["id"] == SESSION
    relay.on_ack({"execution": EXECUTION, "seq": 2, "final": True})
    assert relay.outgoing == {}
    assert json.loads((tmp_path / "relay.json").read_text()) == {}


def test_a_restarted_worker_resends_from_its_spool(spool: SQLiteStore, tmp_path: Path
                                                    ) -> None:
    before = Relay(spool, tmp_path)
    _started(before, spool, 6)
    before.save()  # the worker process dies here
    spool.update_session(SESSION, state="failed")
    after = Relay(spool, tmp_path)
    after.recover()
    out = after.outgoing[EXECUTION]
    assert out.from_spool and out.seqs == []
    assert out.final is not None and out.final["summary"]["error"] == (
        "the worker restarted while the run was going on")
    peer = FakePeer()
    after.connected({EXECUTION: 2}, 1 << 20)
    after.pump(peer, out)
    assert peer.sent_seqs() == [3, 4, 5, 6]
    assert peer.states()[-1]["final"] is True


def test_an_entry_too_big_for_the_coordinator_is_replaced_by_a_notice(
        spool: SQLiteStore, tmp_path: Path) -> None:
    relay = Relay(spool, tmp_path)
    out = _started(relay, spool, 1)
    relay.connected({}, 4096 + 10)  # smaller than the entry
    peer = FakePeer()
    relay.pump(peer, out)
    sent = json.loads(peer.texts[0])["params"]["entries"]
    assert sent[0]["seq"] == 1 and sent[0]["kind"] == "system"
    assert "exceeds the coordinator's message limit" in sent[0]["text"]


def test_the_pump_runs_until_the_line_closes(spool: SQLiteStore, tmp_path: Path) -> None:
    relay = Relay(spool, tmp_path)
    peer = FakePeer()

    async def go() -> None:
        pump = asyncio.create_task(relay.run(peer))
        first: asyncio.Future[Outgoing] = asyncio.get_running_loop().create_future()
        relay.watcher(first)(_records(spool, 1, 2))  # wakes the pump
        await asyncio.sleep(0.05)
        assert peer.sent_seqs() == [1, 2]
        await peer.close()
        relay.wake.set()
        await asyncio.wait_for(pump, 5)

    asyncio.run(go())


def test_a_continued_session_is_imported_with_the_entries_the_spool_lacks(
        tmp_path: Path) -> None:
    spool = SQLiteStore(tmp_path / "spool.db")
    relay = Relay(spool, tmp_path)
    session = Session("s9", "custom", "review", "/w", "t0", "t2", prompt="go")
    entries = [{"seq": s, "ts": "t", "session": "s9", "execution": "x1",
                "stage": "coding_initial", "kind": "message", "text": str(s)}
               for s in (1, 2, 3)]
    peer = FakePeer({"session.entries": lambda p: {
        "entries": [e for e in entries if e["seq"] > p["after_seq"]][:2],
        "more": p["after_seq"] == 0}})
    snapshot = {"session": session.to_json(), "last_seq": 3,
                "transitions": [Transition("s9", None, "queued", "t0", "created").to_json()]}
    try:
        asyncio.run(relay.import_session(snapshot, peer))
        assert [e["seq"] for e in spool.entries("s9")] == [1, 2, 3]
        assert spool.get_session("s9").state == "review"
        assert [t.dst for t in spool.transitions("s9")] == ["queued"]
        assert [p["after_seq"] for _m, p in peer.requests] == [0, 2]
    finally:
        spool.close()
