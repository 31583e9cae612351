"""The pure parts of best-of-N: the order of attempts, the ranking of `aura compare`,
two diffs side by side, the land message, and groups in both stores (a real SQLite
file and the memory store) with their ids found by prefix or attempt number."""

from __future__ import annotations

from pathlib import Path

import pytest

from aura.cli.compare import side_by_side
from aura.contracts import Session, State
from aura.errors import NotFound, UsageError
from aura.service import attempts
from aura.service.compare import rank_key
from aura.service.land import message_of
from aura.store import MemoryStore
from aura.store_attempts import Attempt, Group
from aura.store_sqlite import open_store


def test_attempts_take_every_executor_in_turn_and_a_limit() -> None:
    assert attempts.plan(("claude", "codex"), 2, "codex") == ["claude", "codex", "claude",
                                                              "codex"]
    assert attempts.plan((), 3, "custom") == ["custom"] * 3
    assert attempts.is_group_run(("a",), None) is False
    assert attempts.is_group_run(("a",), 1) is False
    assert attempts.is_group_run(("a", "b"), None) is True
    with pytest.raises(UsageError, match="more than 32 sessions"):
        attempts.plan(("claude", "codex"), 17, "codex")


def _row(number: int, state: str = "done", checks: tuple[int, ...] = (),
         review: str | None = None, cost: float | None = 0.0) -> dict:
    return {"number": number, "state": state, "review": review, "cost_usd": cost,
            "checks": [{"command": "c", "exit_code": code} for code in checks]}


def test_ranking_puts_passing_checks_first_then_fewer_failures_verdict_and_cost() -> None:
    rows = [
        _row(1, checks=(1, 1)),  # two failures
        _row(2, checks=(0, 1)),  # one failure
        _row(3, checks=(0, 0), cost=2.0),  # all pass, dearer
        _row(4, checks=(0, 0), cost=1.0),  # all pass, cheaper
        _row(5, checks=(0, 0), cost=None),  # all pass, cost unknown
        _row(6, state="failed", checks=(0,)),  # the attempt itself failed
        _row(7, checks=(0, 1), review="approve"),  # one failure, approved
        _row(8),  # no checks at all
    ]
    order = [r["number"] for r in sorted(rows, key=rank_key)]
    assert order == [4, 3, 5, 8, 7, 2, 6, 1]
    verdicts = [_row(1, review="request_changes"), _row(2), _row(3, review="approve")]
    assert [r["number"] for r in sorted(verdicts, key=rank_key)] == [3, 2, 1]


def test_two_diffs_side_by_side_fit_the_width() -> None:
    lines = side_by_side("+a\n+bb\n", "+x\n", 41, ("left", "right"))
    assert lines[0].startswith("left") and "| right" in lines[0]
    assert all(len(line) <= 41 for line in lines)
    assert lines[2].startswith("+a") and lines[2].endswith("| +x")
    assert lines[3].rstrip().endswith("|")  # the right side has no third line
    long = side_by_side("y" * 500, "z", 160, ("a", "b"))
    assert all(len(line) <= 160 for line in long)


def test_the_land_message_is_the_prompts_first_line_then_its_body() -> None:
    assert message_of("fix it\n\nthe parser drops lines\nsee #4") == \
        "fix it\n\nthe parser drops lines\nsee #4\n"
    assert message_of("  one line  ") == "one line\n"
    assert message_of("") == "aura: work of a session\n"


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
def test_groups_are_stored_and_one_attempt_is_chosen(tmp_path: Path, kind: str) -> None:
    store = open_store(tmp_path / "aura.db") if kind == "sqlite" else MemoryStore()
    group = Group("0a1b2c3d-group", "task", "2026-12-01T00:00:00.000Z", "/repo")
    other = Group("0a1bffff-group", "other", "2026-12-01T00:00:01.000Z", "/repo")
    store.create_group(group)
    store.create_group(other)
    for n in (1, 2, 3):
        sid = f"{n}{n}{n}-session"
        store.create_session(Session(id=sid, executor="custom", state=State.DONE, cwd="/",
                                     created_at="t", updated_at="t"))
        store.add_attempt(Attempt(group.id, n, sid, "custom"))
    assert [g.id for g in store.groups()] == [other.id, group.id]
    assert [a.chosen for a in store.attempts(group.id)] == [None, None, None]
    store.choose_attempt(group.id, "222-session")
    assert [a.chosen for a in store.attempts(group.id)] == [False, True, False]
    assert store.attempt_of("333-session") == Attempt(group.id, 3, "333-session", "custom",
                                                      False)
    assert store.attempt_of("nope") is None
    assert attempts.find_group(store, "0a1b2").id == group.id
    assert attempts.find_group(store, "333-").id == group.id  # an attempt's session
    with pytest.raises(NotFound, match="'333' is too short for a group id prefix"):
        attempts.find_group(store, "333")
    with pytest.raises(UsageError, match="ambiguous"):
        attempts.find_group(store, "0a1b")
    with pytest.raises(NotFound, match="no group"):
        attempts.find_group(store, "ffff")
    assert attempts.find_attempt(store, group, "2").session == "222-session"
    assert attempts.find_attempt(store, group, "111-").session == "111-session"  # a prefix
    with pytest.raises(NotFound, match=r"attempts 1\.\.3, not 11"):
        attempts.find_attempt(store, group, "11")  # too short to be a session prefix
    assert attempts.find_attempt(store, group, "333-").session == "333-session"
    with pytest.raises(NotFound, match=r"attempts 1\.\.3, not 4"):
        attempts.find_attempt(store, group, "4")
