"""The pipeline state machine, pure: a table of allowed moves and nothing else.

    queued → prepare_workspace → setup → coding_initial → cleanup → review → done
                                            review → coding_follow_up → cleanup → review
    queued or any running state → failed        any non-final state → cancelled
    any running state (on a remote worker) → worker_lost

Stages a run does not need are skipped forward (a run with no repo goes straight from
queued to coding_initial; one with no cleanup script from coding to review or done), but
never backwards. A final session is reopened only by a follow-up (``coding_follow_up``),
which is how ``aura run --session ID`` continues a finished conversation.
"""

from __future__ import annotations

from aura.contracts import FINAL_STATES, RUNNING_STATES, State
from aura.errors import InvalidTransition

# The happy path in order; a move may skip forward over optional stages.
_PIPELINE = (
    State.QUEUED,
    State.PREPARE_WORKSPACE,
    State.SETUP,
    State.CODING_INITIAL,
    State.CLEANUP,
    State.REVIEW,
    State.DONE,
)


def _build_table() -> dict[State, frozenset[State]]:
    table: dict[State, set[State]] = {s: set() for s in State}
    for i, src in enumerate(_PIPELINE[:-1]):
        table[src].update(_PIPELINE[i + 1 :])
    # A follow-up behaves like a second coding stage: it may go on to cleanup, review, done.
    table[State.CODING_FOLLOW_UP].update({State.CLEANUP, State.REVIEW, State.DONE})
    table[State.REVIEW].add(State.CODING_FOLLOW_UP)
    for src in RUNNING_STATES:
        table[src].update({State.FAILED, State.CANCELLED, State.WORKER_LOST})
    table[State.QUEUED].update({State.CANCELLED, State.FAILED})
    for src in FINAL_STATES:
        table[src].add(State.CODING_FOLLOW_UP)
    return {src: frozenset(dsts) for src, dsts in table.items()}


TRANSITIONS: dict[State, frozenset[State]] = _build_table()


def allowed(src: State | str, dst: State | str) -> bool:
    """Whether the table allows moving from ``src`` to ``dst``."""
    return State(dst) in TRANSITIONS[State(src)]


def transition(src: State | str, dst: State | str) -> State:
    """Return ``dst`` as a State if the move is allowed, else raise InvalidTransition."""
    try:
        s, d = State(src), State(dst)
    except ValueError as exc:
        raise InvalidTransition(f"unknown state: {exc}") from None
    if d not in TRANSITIONS[s]:
        raise InvalidTransition(f"cannot move from {s} to {d}")
    return d


def is_final(state: State | str) -> bool:
    return State(state) in FINAL_STATES
