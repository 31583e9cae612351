"""The board: its pure rules (each allowed and refused), the stored columns, and moves
through the CLI on real sessions with real workspaces."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from aura import board
from aura.board import DEFAULT_COLUMNS, Column, MoveRefused, check_move
from aura.contracts import Execution, State
from aura.errors import UsageError
from aura.liveness import process_start_time
from aura.store import MemoryStore

from .conftest import run_aura
from .gitrepo import agent_base_command, git, git_env, make_repo

__all__ = ["git_env"]

COLS = list(DEFAULT_COLUMNS)


def col(name: str) -> Column:
    return board.find_column(name, COLS)


def move(state: str, column: str, *, in_target: int = 0, running: bool = False,
         git_state: str = "none", prompt: str | None = None) -> board.Move:
    return check_move(state, col(column), COLS, in_target=in_target, running=running,
                      git_state=git_state, prompt=prompt)


def refused(rule: str, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(MoveRefused) as info:
        move(*args, **kwargs)
    assert info.value.rule == rule
    assert f"({rule})" in str(info.value)


# columns and grouping ------------------------------------------------------------------------

def test_sessions_show_in_their_state_column_or_its_family() -> None:
    assert board.column_of("review", COLS).name == "In review"
    for state in ("prepare_workspace", "setup", "coding_initial", "coding_follow_up",
                  "cleanup"):
        assert board.column_of(state, COLS).name == "In progress"
    for state in ("failed", "cancelled", "worker_lost"):
        assert board.column_of(state, COLS).name == "Failed"
    follow = [*COLS, Column("Fixing", 9, "coding_follow_up")]
    assert board.column_of("coding_follow_up", follow).name == "Fixing"  # exact wins
    assert board.column_of("review", [c for c in COLS if c.state != "review"]) is None


def test_find_column_is_case_insensitive_and_lists_names_when_missing() -> None:
    assert board.find_column("in REVIEW", COLS).name == "In review"
    with pytest.raises(UsageError, match="'Todo', 'In progress'"):
        board.find_column("Nope", COLS)


def test_validate_column() -> None:
    board.validate_column("X", "review", 2)
    with pytest.raises(UsageError, match="not a pipeline state"):
        board.validate_column("X", "reviewing", None)
    with pytest.raises(UsageError, match="at least 1"):
        board.validate_column("X", "review", 0)
    with pytest.raises(UsageError, match="needs a name"):
        board.validate_column(" ", "review", None)


# every rule, allowed and refused -----------------------------------------------------------------

def test_same_column_rule() -> None:
    refused("same-column", "coding_follow_up", "In progress")
    assert move("review", "Done").dst is State.DONE


def test_running_rule() -> None:
    refused("running", "review", "Done", running=True)
    refused("running", "coding_initial", "Failed", running=True)
    assert move("review", "Failed").dst is State.FAILED


def test_transition_rule() -> None:
    refused("transition", "done", "Todo")
    refused("transition", "review", "Todo")
    refused("transition", "failed", "Done")
    refused("transition", "queued", "In progress", prompt="x")  # a new run starts itself
    assert move("coding_initial", "Done").dst is State.DONE  # stopped agent, skipped stages
    assert move("queued", "Failed").dst is State.FAILED


def test_prompt_rule_for_a_follow_up() -> None:
    refused("prompt", "review", "In progress")
    refused("prompt", "done", "In progress", prompt="  ")
    decided = move("review", "In progress", prompt="fix the tests")
    assert decided.follow_up and decided.dst is State.CODING_FOLLOW_UP
    assert move("failed", "In progress", prompt="try again").follow_up
    with pytest.raises(UsageError, match="--prompt only goes with"):
        move("review", "Done", prompt="why")


def test_wip_limit_rule() -> None:
    limited = [Column("Review", 1, "review", 2), *[c for c in COLS if c.state != "review"]]
    target = board.find_column("Review", limited)
    ok = check_move("cleanup", target, limited, in_target=1, running=False,
                    git_state="none", prompt=None)
    assert ok.dst is State.REVIEW
    with pytest.raises(MoveRefused, match=r"WIP limit \(2/2\)") as info:
        check_move("cleanup", target, limited, in_target=2, running=False,
                   git_state="none", prompt=None)
    assert info.value.rule == "wip-limit"


def test_git_rule_for_done() -> None:
    refused("git", "review", "Done", git_state="unsaved:/src/app")
    for state in ("clean", "saved", "none"):
        assert move("review", "Done", git_state=state).dst is State.DONE
    # Only done needs it.
    assert move("review", "Failed", git_state="unsaved:/src/app").dst is State.FAILED


# stored columns ---------------------------------------------------------------------------------

def test_column_editing_through_the_service() -> None:
    from aura.service import board as service_board

    store = MemoryStore()
    service_board.add_column(store, "Blocked", "review", wip_limit=1)
    with pytest.raises(UsageError, match="exists"):
        service_board.add_column(store, "blocked", "review")
    edited = service_board.edit_column(store, "Blocked", new_name="Waiting", no_limit=True,
                                       position=0)
    assert edited == Column("Waiting", 0, "review", None)
    assert service_board.columns(store)[0].name == "Waiting"
    with pytest.raises(UsageError, match="not a pipeline state"):
        service_board.edit_column(store, "Waiting", state="nope")
    service_board.remove_column(store, "waiting")
    assert [c.name for c in service_board.columns(store)] == [c.name for c in COLS]


def test_running_guard_sees_a_live_process() -> None:
    from aura.contracts import Session, Transition
    from aura.service import board as service_board

    store = MemoryStore()
    store.create_session(Session("s1", "custom", "queued", "/tmp", "t", "t", prompt="p"))
    store.record_transition(Transition("s1", "queued", "coding_initial", "t", "start"))
    pid = os.getpid()
    store.create_execution(Execution("e1", "s1", "coding_initial", started_at="t", pid=pid,
                                     pid_started=process_start_time(pid)))
    with pytest.raises(MoveRefused, match="running"):
        service_board.move(store, "s1", "Done")
    store.update_execution("e1", status="done")
    assert service_board.move(store, "s1", "Done").dst is State.DONE
    assert store.get_session("s1").state == "done"
    assert store.transitions("s1")[-1].reason == "moved to 'Done' on the board"


# through the CLI ------------------------------------------------------------------------------

REVIEWER = "print('not yet')\nprint('VERDICT: request_changes')\n"


def _session_in_review(tmp_path: Path) -> tuple[str, Path]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    reviewer = agent_base_command(tmp_path / "reviewer.py", REVIEWER)
    repo = make_repo(tmp_path / "repo", {
        ".aura.toml": f"[review]\nbase_command = {json.dumps(reviewer)}\n"})
    agent = agent_base_command(tmp_path / "agent.py")
    result = run_aura("run", "-e", "custom", "--base-command", agent, "--repo", str(repo),
                      "--review", "--prompt", "task", "--json")
    assert result.returncode == 0, result.stderr
    done = json.loads(result.stdout.splitlines()[-1])
    assert done["state"] == "review"
    return done["session"], repo


@pytest.mark.usefixtures("git_env")
def test_board_shows_and_moves_sessions_through_the_cli(tmp_path: Path) -> None:
    sid, repo = _session_in_review(tmp_path)
    shown = json.loads(run_aura("board", "--json").stdout)
    review = next(c for c in shown["columns"] if c["name"] == "In review")
    assert [s["id"] for s in review["sessions"]] == [sid]
    assert review["sessions"][0]["branches"][0].startswith(f"aura/{sid[:8]}-task")
    assert f"{sid[:8]}  review" in run_aura("board").stdout

    # No prompt: a move back to coding is refused, and says which rule refused it.
    no_prompt = run_aura("board", "move", sid[:8], "In progress")
    assert no_prompt.returncode == 1 and "move refused (prompt)" in no_prompt.stderr
    back = run_aura("board", "move", sid[:8], "todo")
    assert back.returncode == 1 and "move refused (transition)" in back.stderr

    # The work left uncommitted after the run is saved, so done is allowed ... unless
    # something new appears in the workspace.
    ws_path = Path(json.loads(run_aura("session", "show", sid, "--json").stdout)["cwd"])
    (ws_path / "late.txt").write_text("new\n")
    dirty = run_aura("board", "move", sid[:8], "Done")
    assert dirty.returncode == 1 and "move refused (git)" in dirty.stderr
    assert "aura workspace save" in dirty.stderr
    saved = run_aura("workspace", "save", sid[:8])
    assert saved.returncode == 0 and f"refs/aura/saved/{sid}" in saved.stdout
    assert git(repo, "show", f"refs/aura/saved/{sid}:late.txt") == "new"
    ok = run_aura("board", "move", sid[:8], "Done")
    assert ok.returncode == 0, ok.stderr
    assert "review → done" in ok.stdout
    data = json.loads(run_aura("session", "show", sid, "--json").stdout)
    assert data["state"] == "done"
    assert data["transitions"][-1]["reason"] == "moved to 'Done' on the board"


@pytest.mark.usefixtures("git_env")
def test_board_move_with_prompt_starts_a_follow_up(tmp_path: Path) -> None:
    sid, _repo = _session_in_review(tmp_path)
    run_aura("board", "columns", "edit", "In progress", "--wip", "1")
    follow = run_aura("board", "move", sid[:8], "In progress", "--prompt", "more")
    assert follow.returncode == 0, follow.stderr
    data = json.loads(run_aura("session", "show", sid, "--json").stdout)
    states = [t["to"] for t in data["transitions"]]
    assert states[3:] == ["review", "coding_follow_up", "review"]
    assert data["state"] == "review"


@pytest.mark.usefixtures("git_env")
def test_board_columns_cli_and_wip_limit(tmp_path: Path) -> None:
    sid, _repo = _session_in_review(tmp_path)
    added = run_aura("board", "columns", "add", "Shipped", "--state", "done", "--wip", "1",
                     "--position", "3")
    assert added.returncode == 0, added.stderr
    run_aura("board", "columns", "remove", "Done")
    listed = json.loads(run_aura("board", "columns", "--json").stdout)
    # Equal positions are ordered by name.
    assert [c["name"] for c in listed] == ["Todo", "In progress", "In review", "Shipped",
                                          "Failed"]
    assert run_aura("board", "move", sid, "Shipped").returncode == 0
    other, _ = _session_in_review(tmp_path / "second")
    full = run_aura("board", "move", other, "Shipped")
    assert full.returncode == 1 and "move refused (wip-limit)" in full.stderr
    bad = run_aura("board", "columns", "add", "X", "--state", "nope")
    assert bad.returncode == 2 and "not a pipeline state" in bad.stderr
