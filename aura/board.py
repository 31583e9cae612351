"""The board, pure: columns that map to pipeline states, and the rules of a move.

A column has a name, a position, a canonical state and an optional WIP limit. A session
shows in the column whose state is its own, else in the column of the same *family*
(every coding-side state — prepare_workspace, setup, coding_initial, coding_follow_up,
cleanup — is one family; failed, cancelled and worker_lost another), else in no column.

``check_move`` decides a move and names the rule that refused it. The rules, in order:

- ``same-column``: the session already shows in that column.
- ``running``: a session whose process still runs cannot be moved at all.
- ``transition``: the engine's table must allow the move. Moving into a coding column from
  review or a final state means ``coding_follow_up`` (from anywhere else it is refused:
  coding means a running agent); any other column means its state.
- ``prompt``: a move that starts a follow-up needs the follow-up's prompt.
- ``wip-limit``: the target column must have room.
- ``git``: moving to done needs every repo of the workspace clean or its work saved.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aura import engine
from aura.contracts import FINAL_STATES, State
from aura.errors import MoveRefused, UsageError

CODING_FAMILY = frozenset({State.PREPARE_WORKSPACE, State.SETUP, State.CODING_INITIAL,
                           State.CODING_FOLLOW_UP, State.CLEANUP})
ENDED_FAMILY = frozenset({State.FAILED, State.CANCELLED, State.WORKER_LOST})


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    position: int
    state: str
    wip_limit: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "position": self.position, "state": self.state,
                "wip_limit": self.wip_limit}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Column:
        return cls(str(data["name"]), int(data["position"]), str(data["state"]),
                   data.get("wip_limit"))


# The board a new store starts with (the store seeds them; the user edits them).
DEFAULT_BOARD_COLUMNS: tuple[dict[str, Any], ...] = (
    {"name": "Todo", "position": 1, "state": "queued", "wip_limit": None},
    {"name": "In progress", "position": 2, "state": "coding_initial", "wip_limit": None},
    {"name": "In review", "position": 3, "state": "review", "wip_limit": None},
    {"name": "Done", "position": 4, "state": "done", "wip_limit": None},
    {"name": "Failed", "position": 5, "state": "failed", "wip_limit": None},
)


DEFAULT_COLUMNS = tuple(Column.from_json(c) for c in DEFAULT_BOARD_COLUMNS)


@dataclass(frozen=True, slots=True)
class Move:
    src: State
    dst: State
    column: Column
    follow_up: bool  # the move starts a coding_follow_up run with the given prompt


def family(state: State | str) -> frozenset[State]:
    s = State(state)
    if s in CODING_FAMILY:
        return CODING_FAMILY
    if s in ENDED_FAMILY:
        return ENDED_FAMILY
    return frozenset({s})


def validate_column(name: str, state: str, wip_limit: int | None) -> None:
    """UsageError for a column that cannot exist."""
    if not name.strip():
        raise UsageError("a column needs a name")
    try:
        State(state)
    except ValueError:
        raise UsageError(f"{state!r} is not a pipeline state (one of: "
                         f"{', '.join(s.value for s in State)})") from None
    if wip_limit is not None and wip_limit < 1:
        raise UsageError("a WIP limit is at least 1 (omit it for no limit)")


def column_of(state: str, columns: Sequence[Column]) -> Column | None:
    """The column a session in ``state`` shows in."""
    ordered = sorted(columns, key=lambda c: c.position)
    for column in ordered:
        if column.state == state:
            return column
    fam = family(state)
    for column in ordered:
        if State(column.state) in fam:
            return column
    return None


def find_column(name: str, columns: Iterable[Column]) -> Column:
    """The column called ``name`` (case-insensitive); UsageError listing them otherwise."""
    columns = list(columns)
    for column in columns:
        if column.name.lower() == name.lower():
            return column
    names = ", ".join(repr(c.name) for c in sorted(columns, key=lambda c: c.position))
    raise UsageError(f"no column {name!r} (columns: {names or 'none'})")


def group(sessions: Iterable[Any], columns: Sequence[Column]
          ) -> tuple[dict[str, list[Any]], list[Any]]:
    """Sessions (anything with ``.state``) by column name, and those in no column."""
    grouped: dict[str, list[Any]] = {c.name: [] for c in columns}
    other: list[Any] = []
    for session in sessions:
        column = column_of(session.state, columns)
        (grouped[column.name] if column else other).append(session)
    return grouped, other


def check_move(state: str, target: Column, columns: Sequence[Column], *,
               in_target: int, running: bool, git_state: str,
               prompt: str | None) -> Move:
    """Decide a move of a session in ``state`` to ``target``.

    ``in_target``: sessions already in the target column; ``running``: whether a process
    of the session still runs; ``git_state``: "none" (no workspace), "clean", "saved" or
    "unsaved:<repos>"; ``prompt``: the follow-up prompt, if one was given."""
    src = State(state)
    current = column_of(state, columns)
    if current is not None and current.name == target.name:
        raise MoveRefused("same-column", f"the session is already in {target.name!r}")
    if running:
        raise MoveRefused("running", "the session has a running process; wait for it to "
                          "finish or stop it (Ctrl-C in its terminal)")
    dst = State(target.state)
    follow_up = False
    if dst in CODING_FAMILY and (src is State.REVIEW or src in FINAL_STATES):
        dst, follow_up = State.CODING_FOLLOW_UP, True
    elif dst in CODING_FAMILY:
        # A coding state means a running agent: the board only starts one as a follow-up.
        raise MoveRefused("transition", f"{src} cannot be moved to {target.name!r}: the "
                          "board starts coding only as a follow-up of a reviewed or "
                          "finished session")
    if not engine.allowed(src, dst):
        raise MoveRefused("transition", f"the pipeline does not go from {src} to {dst}")
    if follow_up and not (prompt and prompt.strip()):
        raise MoveRefused("prompt", f"moving to {target.name!r} starts a follow-up; say what "
                          "to do with --prompt")
    if not follow_up and prompt:
        raise UsageError(f"--prompt only goes with a move that starts a follow-up "
                         f"({src} → {target.name!r} does not)")
    if target.wip_limit is not None and in_target >= target.wip_limit:
        raise MoveRefused("wip-limit", f"{target.name!r} is at its WIP limit "
                          f"({in_target}/{target.wip_limit})")
    if dst is State.DONE and git_state.startswith("unsaved"):
        repos = git_state.partition(":")[2] or "the workspace"
        raise MoveRefused("git", f"uncommitted work in {repos} is not saved; commit it or "
                          "run `aura workspace save SESSION` first")
    return Move(src, dst, target, follow_up)
