"""The state machine table, checked pair by pair against the specification."""

from __future__ import annotations

import itertools

import pytest

from aura import engine
from aura.contracts import FINAL_STATES, State
from aura.errors import InvalidTransition

S = State
RUNNING = {S.PREPARE_WORKSPACE, S.SETUP, S.CODING_INITIAL, S.CODING_FOLLOW_UP, S.CLEANUP,
           S.REVIEW}
ENDINGS = {S.FAILED, S.CANCELLED, S.WORKER_LOST}

# Written out by hand from ARCHITECTURE.md, independently of engine.py's construction.
EXPECTED: dict[State, set[State]] = {
    S.QUEUED: {S.PREPARE_WORKSPACE, S.SETUP, S.CODING_INITIAL, S.CLEANUP, S.REVIEW, S.DONE,
               S.CANCELLED, S.FAILED},
    S.PREPARE_WORKSPACE: {S.SETUP, S.CODING_INITIAL, S.CLEANUP, S.REVIEW, S.DONE} | ENDINGS,
    S.SETUP: {S.CODING_INITIAL, S.CLEANUP, S.REVIEW, S.DONE} | ENDINGS,
    S.CODING_INITIAL: {S.CLEANUP, S.REVIEW, S.DONE} | ENDINGS,
    S.CODING_FOLLOW_UP: {S.CLEANUP, S.REVIEW, S.DONE} | ENDINGS,
    S.CLEANUP: {S.REVIEW, S.DONE} | ENDINGS,
    S.REVIEW: {S.CODING_FOLLOW_UP, S.DONE} | ENDINGS,
    S.DONE: {S.CODING_FOLLOW_UP},
    S.FAILED: {S.CODING_FOLLOW_UP},
    S.CANCELLED: {S.CODING_FOLLOW_UP},
    S.WORKER_LOST: {S.CODING_FOLLOW_UP},
}

ALL_PAIRS = list(itertools.product(State, State))


def test_the_expected_table_covers_every_state() -> None:
    assert set(EXPECTED) == set(State)


@pytest.mark.parametrize(("src", "dst"), [p for p in ALL_PAIRS if p[1] in EXPECTED[p[0]]])
def test_allowed_transition_returns_the_target(src: State, dst: State) -> None:
    assert engine.transition(src, dst) is dst
    assert engine.allowed(src.value, dst.value)


@pytest.mark.parametrize(("src", "dst"), [p for p in ALL_PAIRS if p[1] not in EXPECTED[p[0]]])
def test_forbidden_transition_raises(src: State, dst: State) -> None:
    with pytest.raises(InvalidTransition, match=f"from {src.value} to {dst.value}"):
        engine.transition(src, dst)
    assert not engine.allowed(src, dst)


def test_final_states_are_exactly_the_four_endings() -> None:
    assert {S.DONE, S.FAILED, S.CANCELLED, S.WORKER_LOST} == FINAL_STATES
    assert all(engine.is_final(s) for s in FINAL_STATES)
    assert not any(engine.is_final(s) for s in set(State) - FINAL_STATES)


def test_a_final_state_reopens_only_through_a_follow_up() -> None:
    for final in FINAL_STATES:
        assert engine.TRANSITIONS[final] == {S.CODING_FOLLOW_UP}


def test_every_running_state_can_fail_be_cancelled_or_lose_its_worker() -> None:
    for state in RUNNING:
        assert engine.TRANSITIONS[state] >= ENDINGS


def test_unknown_state_names_are_refused() -> None:
    with pytest.raises(InvalidTransition, match="unknown state"):
        engine.transition("queued", "flying")
