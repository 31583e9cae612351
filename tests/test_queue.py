"""The queue without running agents: the planner's reasons (every way a task waits), the
task tables on both stores, an atomic claim across real processes, the restart rule,
and `aura task` refusing bad input with one line and nothing stored."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aura.board import DEFAULT_COLUMNS, Column
from aura.contracts import Session, State, WorkerInfo
from aura.service import tasks as task_service
from aura.service.queue_plan import BLOCKED, START, WAITING, Snapshot, plan
from aura.store import MemoryStore, Store
from aura.store_schema import MIGRATIONS
from aura.store_sqlite import SQLiteStore
from aura.store_tasks import Task

from .conftest import ROOT, run_aura

T0 = "2026-01-01T00:00:00.000Z"


def session(sid: str, state: str = "queued") -> Session:
    return Session(id=sid, executor="custom", state=State(state), cwd="/tmp", created_at=T0,
                   updated_at=T0, prompt=sid)


def decide(tasks: list[Task], sessions: list[Session], **kw: object) -> dict[str, tuple]:
    snap = Snapshot(tasks=tasks, states={s.id: s.state.value for s in sessions},
                    busy=kw.pop("busy", 0), limit=kw.pop("limit", 3),  # type: ignore[arg-type]
                    columns=kw.pop("columns", DEFAULT_COLUMNS), **kw)  # type: ignore[arg-type]
    return {d.task.session: (d.status, d.reason) for d in plan(snap)}


def test_dependencies_wait_block_and_release() -> None:
    tasks = [Task("a", "a", T0), Task("b", "b", T0, after=("a",)),
             Task("c", "c", T0, after=("x",)), Task("d", "d", T0, after=("x",), released=True)]
    got = decide(tasks, [session("a"), session("b"), session("c"), session("d"),
                         session("x", "failed")])
    assert got["a"] == (START, "")
    assert got["b"] == (WAITING, "dependency a not done (queued)")
    assert got["c"][0] == BLOCKED and "dependency x failed" in got["c"][1]
    assert "aura task release c" in got["c"][1]
    assert got["d"] == (START, "")  # released: the failed dependency no longer holds it
    cancelled = decide([Task("c", "c", T0, after=("x",))], [session("c"),
                                                             session("x", "cancelled")])
    assert cancelled["c"][0] == BLOCKED and "cancelled" in cancelled["c"][1]
    behind = decide([Task("c", "c", T0, after=("x",)), Task("e", "e", T0, after=("c",))],
                    [session("c"), session("e"), session("x", "failed")])
    assert behind["e"] == (BLOCKED, "dependency c is stuck (dependency x failed)")
    gone = decide([Task("c", "c", T0, after=("nope",))], [session("c")])
    assert gone["c"] == (BLOCKED, "dependency nope no longer exists")


def test_a_spent_budget_holds_the_tasks_of_its_executor_only() -> None:
    tasks = [Task("a", "a", T0), Task("b", "b", T0), Task("c", "c", T0, after=("a",))]
    sessions = [session("a"), session("b"), session("c")]
    spent = "budget exhausted: daily $2.00 of $1.00 for claude"
    got = decide(tasks, sessions, exhausted={"claude": spent},
                 executors={"a": "claude", "b": "codex", "c": "codex"})
    assert got["a"] == (WAITING, spent)
    assert got["b"] == (START, "")
    assert got["c"] == (BLOCKED, f"dependency a is stuck ({spent})")
    overall = "budget exhausted: daily $3.00 of $2.00"
    got = decide(tasks, sessions, exhausted={"": overall})
    assert {reason for _status, reason in got.values()} == {overall}


def test_slots_wip_limit_and_parking_each_name_their_reason() -> None:
    tasks = [Task(n, n, T0) for n in "abcd"]
    sessions = [session(n) for n in "abcd"]
    got = decide(tasks, sessions, busy=1, limit=3)
    assert [got[n][0] for n in "abcd"] == [START, START, WAITING, WAITING]
    assert got["c"][1] == "no free slot (3/3 running)"
    wip = [Column("Todo", 1, "queued"), Column("Doing", 2, "coding_initial", 1)]
    got = decide(tasks, sessions, columns=wip, counts={"setup": 1})
    assert got["a"] == (WAITING, "WIP limit of column 'Doing' (1/1)")
    parked = decide([Task("a", "a", T0, held=True)], [session("a")])
    assert parked["a"][0] == WAITING and "parked by hand" in parked["a"][1]


def test_worker_labels_and_capacity() -> None:
    gpu = WorkerInfo("box", "1", labels=("gpu",), capacity=1, state="online")
    tasks = [Task("a", "a", T0, target="label:gpu"), Task("b", "b", T0, target="label:gpu"),
             Task("c", "c", T0, target="label:tpu"), Task("d", "d", T0, target="box")]
    sessions = [session(n) for n in "abcd"]
    got = decide(tasks, sessions, workers=[gpu], busy=3, limit=3)  # local slots: no matter
    assert got["a"] == (START, "")
    assert got["b"] == (WAITING, "every worker for label:gpu is at capacity (box 1/1)")
    assert got["c"] == (WAITING, "no worker with label tpu online")
    assert got["d"][0] == WAITING
    offline = decide(tasks[:1], sessions, workers=[WorkerInfo("box", "1", labels=("gpu",))])
    assert offline["a"] == (WAITING, "no worker with label gpu online")
    nobody = decide(tasks[:1], sessions, workers=None)
    assert nobody["a"][0] == WAITING and "no coordinator" in nobody["a"][1]


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "a.db")
    yield s
    s.close()


def test_tasks_round_trip_and_claim_once(store: Store) -> None:
    store.create_session(session("a"))
    store.create_session(session("b"))
    store.create_task(Task("a", "first", T0))
    store.create_task(Task("b", "second", T0, target="label:gpu", after=("a", "a")))
    assert [(t.session, t.after, t.target) for t in store.tasks()] == \
        [("a", (), None), ("b", ("a",), "label:gpu")]
    assert store.claim_task("a", "1:x", T0) is True
    assert store.claim_task("a", "2:y", T0) is False
    assert store.unclaim_task("a", "2:y") is False  # only the holder gives it back
    assert store.unclaim_task("a", "1:x") is True
    store.update_session("b", state="done")
    assert store.claim_task("b", "1:x", T0) is False  # not queued: nothing to start
    store.update_task("a", released=True, child_pid=5)
    assert store.tasks()[0].released and store.tasks()[0].child_pid == 5
    store.delete_task("a")
    assert [t.session for t in store.tasks()] == ["b"]
    assert store.state_counts() == {"queued": 1, "done": 1}
    assert [t.session for t in store.tasks(pending=True)] == []
    store.create_session(session("c"))
    store.create_task(Task("c", "third", T0, after=("b",)))
    assert [t.session for t in store.tasks(pending=True)] == ["c"]
    assert store.task_states() == {"c": "queued", "b": "done"}
    store.update_session("c", state="setup")
    store.create_session(session("r", "coding_initial"))
    store.create_task(Task("r", "remote", T0, target="gpu1"))
    assert store.working_sessions() == ["c"]  # not the --on task's mirror


def test_migration_4_is_the_task_tables(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "a.db").close()
    import sqlite3

    db = sqlite3.connect(tmp_path / "a.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) >= 4
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"tasks", "task_deps"} <= names


CLAIMER = """
import sys, time
from aura.store_sqlite import SQLiteStore
store = SQLiteStore(sys.argv[1])
while time.time() < float(sys.argv[2]):
    pass
print(store.claim_task("t", sys.argv[3], "now"))
"""


def test_only_one_of_many_processes_claims_a_task(tmp_path: Path) -> None:
    import time

    db = tmp_path / "a.db"
    s = SQLiteStore(db)
    s.create_session(session("t"))
    s.create_task(Task("t", "t", T0))
    go = str(time.time() + 1.5)  # they all claim at the same moment
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, str(db), go, f"{i}:m"],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT) for i in range(6)]
    answers = [p.communicate(timeout=30)[0].strip() for p in procs]
    assert sorted(answers) == ["False"] * 5 + ["True"]
    assert s.tasks()[0].claimed_by in {f"{i}:m" for i in range(6)}


def test_a_claim_whose_starter_died_is_given_back_and_a_live_one_is_not(tmp_path: Path
                                                                          ) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    for sid in ("dead", "alive"):
        store.create_session(session(sid))
        store.create_task(Task(sid, sid, T0))
    gone = subprocess.Popen(["true"])
    gone.wait()
    from aura.liveness import own_mark

    store.claim_task("dead", f"{gone.pid}:1", T0)
    store.claim_task("alive", own_mark(), T0)
    states = store.task_states()
    recovered = [t.session for t in store.tasks() if task_service.recover(store, t,
                                                                         states[t.session])]
    assert recovered == ["dead"]
    states = {t.session: t.claimed_by for t in store.tasks()}
    assert states["dead"] is None and states["alive"] == own_mark()


def test_task_add_refuses_bad_input_with_one_line_and_stores_nothing() -> None:
    cases = [
        (["--prompt", "x", "--after", "nope"], "no session 'nope'"),
        (["--prompt", "x", "--session", "abc"], "--session does not go with"),
        (["--prompt", "  "], "--prompt is required"),
        (["--prompt", "x", "--on", "label:"], "--on needs a worker name"),
        (["--prompt", "x", "--cwd", "/definitely/not/here"], "not a directory"),
    ]
    for args, message in cases:
        result = run_aura("task", "add", "--executor", "custom", "--base-command", "true",
                          *args)
        assert result.returncode != 0, args
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, \
            result.stderr
    listed = run_aura("task", "list", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
    for verb in ("release", "hold", "rm", "start"):
        missing = run_aura("task", verb, "zzzz")
        assert missing.returncode != 0 and "no session 'zzzz'" in missing.stderr


def test_config_max_parallel_is_checked(aura_home: Path) -> None:
    from aura import config
    from aura.errors import ConfigError

    assert 1 <= config.max_parallel({}) <= 4
    assert config.max_parallel({"max_parallel": 7}) == 7
    for bad in (0, "3", True):
        with pytest.raises(ConfigError, match="max_parallel must be a whole number"):
            config.check({"max_parallel": bad}, Path("c.toml"))


def test_board_shows_why_a_task_waits_and_parks_or_starts_by_move() -> None:
    first = run_aura("task", "add", "--executor", "custom", "--base-command", "true",
                     "--prompt", "one", "--title", "The first").stdout.strip()
    second = run_aura("task", "add", "--executor", "custom", "--base-command", "true",
                      "--prompt", "two", "--after", first).stdout.strip()
    data = json.loads(run_aura("board", "--json").stdout)
    todo = {c["id"]: c for c in data["columns"][0]["sessions"]}
    assert todo[first]["title"] == "The first" and todo[first]["cost_usd"] is None
    assert todo[second]["waiting"] == f"dependency {first[:8]} not done (queued)"
    shown = run_aura("board", "--layout", "list").stdout
    assert f"waits: dependency {first[:8]} not done" in shown
    wide = run_aura("board", "--layout", "columns", env={"COLUMNS": "150"}).stdout
    assert wide.splitlines()[0].startswith("Todo (2)") and "In progress (0)" in \
        wide.splitlines()[0]
    early = run_aura("board", "move", second[:8], "In progress")
    assert early.returncode != 0 and "move refused (dependency)" in early.stderr
    parked = run_aura("board", "move", first[:8], "Todo")
    assert parked.returncode == 0 and "parked" in parked.stdout
    listed = {t["session"]: t for t in json.loads(run_aura("task", "list", "--json").stdout)}
    assert listed[first]["held"] and "parked by hand" in listed[first]["reason"]
